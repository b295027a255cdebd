#!/usr/bin/env bash
# The loop-penalty pilot of issue 37 (docs/RESULTS.md "The RL half"): RL of the SFT protégé alone
# (no expert) with lambda_loop = 0.1 against a lambda_loop = 0 control, same steps and seed, two
# seeds; each model evaluated alone, greedy, 20 steps, on the first 26 held-out bundled tasks, with
# the SFT protégé itself as the starting point. Paired comparisons with `protege compare`.
#
#   bash scripts/rl_loop_pilot.sh BASE_RUN_DIR [SEEDS]
#
# BASE_RUN_DIR holds 03_sft/merged (e.g. runs/small after `make small`). About 40 min per seed
# on 2 cores (the two RL runs side by side, one thread each), 5-8 min per evaluation.
# Artifacts go to runs/small-rl-pilot/, the small records to papermill_runs/small-rl-pilot/.
set -euo pipefail
BASE=${1:?usage: rl_loop_pilot.sh BASE_RUN_DIR [SEEDS]}
SEEDS=${2:-0 1}
BIN=${BIN:-.venv/bin}
OUT=runs/small-rl-pilot
REC=papermill_runs/small-rl-pilot
LIMIT=26
mkdir -p "$OUT" "$REC"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # two processes side by side on 2 cores

evaluate() {  # evaluate NAME CONDITION [--set ...]
  local name=$1 cond=$2; shift 2
  "$BIN/protege" evaluate --run-dir "$BASE" --preset small --out "$OUT/eval-$name" \
    --set "conditions=[\"$cond\"]" --set limit=$LIMIT --no-progress "$@" > "$OUT/eval-$name.log" 2>&1
  mkdir -p "$REC/eval-$name"
  cp "$OUT/eval-$name"/{metrics.csv,per_instance.csv,config.json} "$REC/eval-$name/"
}

evaluate sft sft
for seed in $SEEDS; do
  pids=()
  for lam in 0.1 0; do
    "$BIN/protege" rl --preset small --out "$OUT/rl-l$lam-s$seed" --set model="$BASE/03_sft/merged" \
      --set lambda_loop=$lam --set max_steps=8 --set tasks_per_step=2 --set expert=none \
      --set agent_overrides.repeat_limit=5 --set seed="$seed" > "$OUT/rl-l$lam-s$seed.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done  # a failed run stops the script (set -e)
  pids=()
  for lam in 0.1 0; do
    evaluate "rl-l$lam-s$seed" sft+rl --set rl_policy="transformers:$OUT/rl-l$lam-s$seed/final" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  for lam in 0.1 0; do
    mkdir -p "$REC/rl-l$lam-s$seed"
    cp "$OUT/rl-l$lam-s$seed"/{steps.csv,config.json} "$REC/rl-l$lam-s$seed/"
  done
  "$BIN/protege" compare "$OUT/eval-rl-l0-s$seed" "$OUT/eval-rl-l0.1-s$seed" --by none > "$REC/compare-s$seed-penalty-vs-control.md"
  "$BIN/protege" compare "$OUT/eval-sft" "$OUT/eval-rl-l0.1-s$seed" --by none > "$REC/compare-s$seed-penalty-vs-sft.md"
done

# Pooled over the seeds: each task's value is its mean over the seeds' evaluations (`protege compare`
# averages rows of one instance), so the sign test counts tasks, not (task, seed) pairs.
if [ "$(echo $SEEDS | wc -w)" -gt 1 ]; then
  for lam in 0.1 0; do
    first=1
    for seed in $SEEDS; do
      if [ $first = 1 ]; then cat "$OUT/eval-rl-l$lam-s$seed/per_instance.csv"; first=0
      else tail -n +2 "$OUT/eval-rl-l$lam-s$seed/per_instance.csv"; fi
    done > "$REC/pooled-rl-l$lam.csv"
  done
  "$BIN/protege" compare "$REC/pooled-rl-l0.csv" "$REC/pooled-rl-l0.1.csv" --by none > "$REC/compare-pooled-penalty-vs-control.md"
  "$BIN/protege" compare "$OUT/eval-sft" "$REC/pooled-rl-l0.1.csv" --by none > "$REC/compare-pooled-penalty-vs-sft.md"
fi

# The figure: how each model's episodes ended, with its loop rate (figures/small-rl-pilot_endings.png).
"$BIN/python" - "$REC" $SEEDS <<'PY'
import sys
from pathlib import Path

import pandas as pd

from protege.core.config import config_hash
from protege.stages.figures_eval import episode_endings

rec, seeds = Path(sys.argv[1]), sys.argv[2:]
runs = {"SFT": pd.read_csv(rec / "eval-sft" / "per_instance.csv")}
for lam, name in (("0", "RL, lambda_loop 0 (control)"), ("0.1", "RL, lambda_loop 0.1")):
    for seed in seeds:
        runs[f"{name}, seed {seed}"] = pd.read_csv(rec / f"eval-rl-l{lam}-s{seed}" / "per_instance.csv")
out = episode_endings(runs, Path("figures") / "small-rl-pilot_endings.png", "small-rl-pilot",
                      config_hash(rec / f"rl-l0.1-s{seeds[0]}" / "config.json"),  # the penalised run's settings
                      title="Protégé alone (SFT on ORACLE demonstrations), 26 held-out tasks, 20 steps")
print(out)
PY
