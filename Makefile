# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install demo test test-fast bench-modes clean-runs

# torch first, from the CPU wheel pinned in constraints.txt; then rlint and every pinned dependency.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Bootstrap (reused when checkpoints/round=0 matches dvc.lock) and every round of params.yaml
# through the Prefect flow, then the per-round table.
demo: install
	$(BIN)/python -m flows.rounds
	$(BIN)/dvc status

# Every test, the slow end-to-end ones (DVC, Prefect) included.
test: install
	$(BIN)/python -m pytest -q

# Unit tests only.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# Internalized against outcome-only and oracle at equal generated tokens, 3 seeds (bench/modes/).
bench-modes: install
	$(BIN)/python scripts/bench_modes.py --jobs 2

# Remove the outputs of rounds (keeps the bootstrap checkpoint).
clean-runs:
	rm -rf data metrics/rollout metrics/mine metrics/correct metrics/archive metrics/credit metrics/optimize checkpoints/round=[1-9]* .prefect
