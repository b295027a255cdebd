"""Paired contrasts between sweep points (protege.stages.contrasts) on a sweep record written here."""

from __future__ import annotations

import csv
import json

from protege.stages.contrasts import CONTRAST_COLUMNS, write_contrasts
from protege.stages.evaluate import PER_INSTANCE_COLUMNS


def _point(sweep, pid, rows):
    folder = sweep / pid / "results" / "05_eval"
    folder.mkdir(parents=True)
    with (folder / "per_instance.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, PER_INSTANCE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _rows(condition, loops):
    return [{"condition": condition, "seed": 0, "instance_id": f"t{i}", "resolved": 0, "loop": loop, "repeats": 3 * loop,
             "expert_calls": 1, "format_errors": 0, "steps": 20 if loop else 4} for i, loop in enumerate(loops)]


def test_penalised_points_are_paired_with_their_control_per_seed_and_pooled(tmp_path):
    sweep = tmp_path / "small-rl"
    grid = {"lambda_loop": [0, 0.1], "04:overrides.seed": [0, 1]}
    points = [{"id": f"l{lam}-s{seed}", "params": {"lambda_loop": lam, "04:overrides.seed": seed}, "status": "done"}
              for lam in (0, 0.1) for seed in (0, 1)]
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"grid": grid, "points": points}))
    control = [1, 1, 1, 0, 0, 0]
    _point(sweep, "l0-s0", _rows("sft+rl", control))
    _point(sweep, "l0-s1", _rows("sft+rl", control))
    _point(sweep, "l0.1-s0", _rows("sft+rl", [0, 0, 1, 0, 0, 0]))
    _point(sweep, "l0.1-s1", _rows("sft+rl", [0, 1, 0, 0, 0, 0]))
    path = write_contrasts(sweep)
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(CONTRAST_COLUMNS)
    loops = {r["pair"]: r for r in rows if r["key"] == "lambda_loop" and r["metric"] == "loop"}
    assert set(loops) == {"04:overrides.seed=0", "04:overrides.seed=1", "pooled"}
    assert abs(float(loops["04:overrides.seed=0"]["diff"]) + 2 / 6) < 1e-5 and loops["04:overrides.seed=0"]["a_better"] == "2"
    pooled = loops["pooled"]
    assert pooled["n"] == "12" and pooled["a_better"] == "4" and pooled["b_better"] == "0"
    assert float(pooled["p_sign"]) == 0.125  # 4 discordant pairs, all one way
    # the seed is swept too: its contrast (seed 1 against seed 0) pairs points of equal lambda
    seeds = [r for r in rows if r["key"] == "04:overrides.seed" and r["metric"] == "loop"]
    assert {r["pair"] for r in seeds} == {"lambda_loop=0", "lambda_loop=0.1", "pooled"}
