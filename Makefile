# The README's two commands: `make demo` (the whole journey on embedded
# defaults) and `make test` (the test suite, as CI runs it).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo demo-realms test lint bench bench-scale clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup-system.sh
	bash scripts/setup-system.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all,test]'
	touch $@

demo: setup
	$(BIN)/python scripts/demo.py

# The same journey with the key split over three vaults (threshold realms, 2 of 3).
demo-realms: setup
	$(BIN)/python scripts/demo.py --realms 3

test: setup lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench scripts examples
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench.run

bench-scale: setup
	$(BIN)/python -m bench.scale

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
