# The README's commands (make run, make test) and the rest. Each one sets up the virtualenv first, on a machine with only Python 3.11, git and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-long lint bench lock clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## run: the whole stack (API :3001, worker, Flower :5555) on an embedded Redis with the mock provider
run: $(STAMP)
	$(BIN)/python -m scripts.run_stack

## test: lint, then the whole suite (starts its own Redis unless TEST_REDIS_URL is set)
test: $(STAMP) lint
	$(BIN)/python -m pytest

## test-long: what is too long for every commit: 5 minutes of steady load at 1,000 requests/s, checked
## against its targets (p99 < 50 ms, no errors, memory growth < 10 %)
test-long: $(STAMP)
	$(BIN)/python -m bench.load 300 1000 --check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --no-cache
	$(BIN)/mypy

## bench: the figures quoted in docs/performance.md
bench: $(STAMP)
	$(BIN)/python -m bench.run_all

## lock: re-pin every package, the transitive ones too, to what requirements*.txt resolve to today
## (constraints.txt, which requirements.txt applies on every install, here and on Heroku)
lock:
	rm -rf var/lock && mkdir -p var/lock && $(PYTHON) -m venv var/lock/venv
	grep -v -e '^-c ' -e '^-e ' requirements.txt > var/lock/requirements.txt
	cp requirements-dev.txt var/lock/
	cd var/lock && venv/bin/python -m pip install --quiet -r requirements-dev.txt
	(echo "# Every package's exact version, the transitive ones too: made by \`make lock\`, applied by requirements.txt."; \
	 var/lock/venv/bin/python -m pip freeze --exclude-editable) > constraints.txt
	rm -rf var/lock

clean:
	rm -rf $(VENV) var .pytest_cache
