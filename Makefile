# One venv, made from scratch on a fresh clone; every target installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench bench-bulk bench-shared clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## the main job: the vendor's prepared-message procedure against the built-in sandbox
demo: $(STAMP)
	$(BIN)/engage-soap send-prepared --sandbox --message-id 23541 \
	    --email j.mcexample@example.com --param FIRSTNAME=Jo

## every test, then the linters. First the tests that need the machine to themselves
## (their collection also leaves pytest's rewritten modules cached for the next step:
## bytecode is written even where the environment says not to), then the rest on eight
## workers on two cores (the suite mostly waits on sockets, sleeps and subprocesses),
## each given whole modules, long ones first.
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -m serial
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 8 --dist loadfile --no-loadscope-reorder -m "not serial"
	$(MAKE) lint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## speed figures (not tests): prints a table, writes benchmarks/results/latest.json
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

## the bulk job: 500 recipients, 300 ms per call, at 10 calls/s (writes bulk-latest.json)
bench-bulk: $(STAMP)
	$(BIN)/python benchmarks/bulk.py --json benchmarks/results/bulk-latest.json

## many processes on one account: 8 x 100 calls through each rate store (writes shared-latest.json)
bench-shared: $(STAMP)
	$(BIN)/python benchmarks/shared.py --json benchmarks/results/shared-latest.json

clean:
	rm -rf $(VENV) build dist *.egg-info
