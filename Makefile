# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates the virtual environment and installs what it needs when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format bench bench-scale migrate serve clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

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
