# Two set-up commands: `make demo` (the offline demo) and `make test` (lint + the test suite).
# Each creates .venv on first use and installs the project into it, with the tested versions of
# constraints.txt (PyTorch 2.13.0).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow lint bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,export,tensorboard]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/rnnzoo demo

lint: $(BIN)/.installed
	$(BIN)/ruff check rnnzoo tests benchmarks

test: lint
	$(BIN)/pytest -q

# End-to-end trainings and the full real datasets (minutes; the data folder: docs/DEVELOPING.md).
test-slow: $(BIN)/.installed
	$(BIN)/pytest -q -m slow

# Against the Keras 3 peer: PEER_PYTHON is an interpreter with Keras (docs/SPEED.md), e.g.
# make bench PEER_PYTHON=.venv-peer/bin/python
PEER_PYTHON ?= $(BIN)/python
bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run.py --peer-python $(PEER_PYTHON)

clean:
	rm -rf $(VENV) build *.egg-info
