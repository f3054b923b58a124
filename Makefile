# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates the virtual environment and installs what it needs when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Every dependency (runtime and dev), at the exact version and with the hashes CI installed:
# `make lock` rewrites it from pyproject.toml (see the README, "Dependencies").
LOCK := requirements.lock
UV_VERSION := 0.13.9
LOCK_FLAGS ?=

.PHONY: demo test lint format bench bench-scale migrate serve clean lock

# The venv is rebuilt from scratch (--clear) whenever the lock or pyproject.toml changes, so it
# holds exactly what the lock lists: nothing left over from an older lock.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Re-resolve requirements.lock from pyproject.toml (runtime + dev extra) for Python 3.11 on every
# platform, keeping the current pins that still fit; `make lock LOCK_FLAGS=--upgrade` moves
# everything to the newest allowed versions. Commit the new lock with the change that needed it.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
		--python-version 3.11 --quiet $(LOCK_FLAGS) -o $(LOCK)

demo: $(STAMP)
	$(BIN)/invoice-backups demo

test: $(STAMP)
	scripts/ensure-postgres
	scripts/ensure-test-tools
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	command -v qpdf >/dev/null || (apt-get update -qq && apt-get install -y -qq qpdf)
	$(BIN)/python bench/compile.py

bench-scale: $(STAMP)
	scripts/ensure-postgres
	$(BIN)/python bench/scale.py

migrate: $(STAMP)
	$(BIN)/invoice-backups migrate

serve: migrate
	$(BIN)/invoice-backups serve

clean:
	rm -rf $(VENV) data bench/_work
