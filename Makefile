# Quorum: `make demo` and `make test` work on a fresh clone with only Python 3.11 and the package registries.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: venv demo test check lint typecheck imports unit bench clean redis

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Quorum needs Python 3.11 (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[ml,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: venv
	$(BIN)/quorum db upgrade
	$(BIN)/quorum backtest --months 6

redis:
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || { command -v redis-server >/dev/null && \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
	  --dir /tmp --logfile /tmp/quorum-redis.log && sleep 0.5; } || echo "redis not available: tests needing it will skip"

test: venv redis
	$(BIN)/pytest -q -p no:cacheprovider --timeout=600

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy domain application adapters entrypoints

imports:
	$(BIN)/lint-imports

unit:
	$(BIN)/pytest -q -p no:cacheprovider tests/unit

check: venv lint typecheck imports unit

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .quorum .mypy_cache .ruff_cache .pytest_cache
