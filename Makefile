# The two commands of the README: `make demo` (the main job) and `make test`.
# Each builds .venv from constraints.txt on first use and reuses it afterwards.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYTHONWARNINGS ?= ignore::DeprecationWarning

.PHONY: demo test lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

## The main job: a quick, real comparison on the embedded default data.
demo: $(STAMP)
	$(BIN)/lnmdn bench --preset demo

## The test suite (fast tests; `-m slow` for the long ones), then lint and types.
test: $(STAMP)
	$(BIN)/python -m pytest
	$(MAKE) lint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
