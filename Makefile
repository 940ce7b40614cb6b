# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@# Optional: builds only where libaugeas-dev is (.ci/run installs it); the augeas table needs it.
	$(BIN)/pip install --quiet -e '.[augeas]' || echo "python-augeas not installed: the augeas table will give no rows"
	touch $@

# The main job: the daemon on its embedded default config (no config file needed).
run: $(VENV)/.installed
	$(BIN)/streamq run

test: $(VENV)/.installed
	$(BIN)/ruff format --check streamq tests bench
	$(BIN)/ruff check streamq tests bench
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff format streamq tests bench
	$(BIN)/ruff check --fix streamq tests bench

docs: $(VENV)/.installed
	$(BIN)/streamq tables --markdown > docs/tables.md

bench: $(VENV)/.installed
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
