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

.PHONY: venv demo chat test check lint typecheck imports unit bench evals evals-gate evals-baseline clean redis chromium

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Quorum needs Python 3.11 (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[ml,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# The last 6 months of the shipped real S&P 500 bars (2017-08-08 .. 2018-02-07, data/PROVENANCE.md), 20 stocks:
# the summary against SPY and the equal-weight universe, then the path of report.html (`--synthetic` for a fake market).
demo: venv
	$(BIN)/quorum db upgrade
	$(BIN)/quorum backtest --months 6

# The chat over the latest recorded backtest run (after `make demo`): http://127.0.0.1:8001, login printed at start.
chat: venv
	$(BIN)/quorum chat --backtest latest

redis:
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || { command -v redis-server >/dev/null && \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
	  --dir /tmp --logfile /tmp/quorum-redis.log && sleep 0.5; } || echo "redis not available: tests needing it will skip"

# Debian's chromium for the chat's browser test (tests/e2e/test_chat_browser.py): installed when missing and this
# user may (root, or password-less sudo); otherwise that test skips, and fails under CI=true.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	    echo "chromium is missing and this user cannot install it: the chat's browser test will skip"; exit 0; fi; \
	  $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq >/dev/null 2>&1 && $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1; }; \
	} || echo "chromium could not be installed: the chat's browser test will skip (and fail under CI=true)"

test: venv redis chromium
	$(BIN)/pytest -q -p no:cacheprovider --timeout=600 --durations=15

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

evals: venv
	$(BIN)/quorum evals run --llm offline --out .quorum/evals/latest.json

# The regression gate of CI (no API keys): the offline policy on the committed datasets against evals/baseline.json,
# then every evals/cassettes/NAME/ holding a baseline.json replayed from its cassettes against that baseline.
# Exit 1 on a real regression (a score drop over 10% whose paired bootstrap interval excludes zero), 2 when the
# runs cannot be compared. Refresh the baseline on purpose with `make evals-baseline`.
EVALS_OUT := .quorum/evals
evals-gate: venv
	@mkdir -p $(EVALS_OUT)
	$(BIN)/quorum evals run --llm offline --json --out $(EVALS_OUT)/offline.json > /dev/null
	$(BIN)/quorum evals gate --baseline evals/baseline.json --candidate $(EVALS_OUT)/offline.json
	@for dir in evals/cassettes/*/; do \
	  [ -f "$$dir/baseline.json" ] || continue; \
	  name=$$(basename "$$dir"); \
	  llm=$$($(BIN)/python -c 'import json, sys; llm = json.load(open(sys.argv[1])).get("llm"); print(llm if isinstance(llm, str) else "")' "$$dir/baseline.json"); \
	  if [ -z "$$llm" ] || [ "$$llm" = offline ]; then echo "evals-gate: $$dir: baseline.json names no single model, skipped"; continue; fi; \
	  echo "evals-gate: $$name: $$llm replayed from $$dir"; \
	  $(BIN)/quorum evals run --llm "$$llm" --cassettes "$$dir" --replay --no-memorisation --json --out "$(EVALS_OUT)/$$name.json" > /dev/null || exit $$?; \
	  $(BIN)/quorum evals gate --baseline "$$dir/baseline.json" --candidate "$(EVALS_OUT)/$$name.json" || exit $$?; \
	done

evals-baseline: venv
	$(BIN)/quorum evals run --llm offline --json --out evals/baseline.json > /dev/null

# Tools and caches only: Quorum's data (QUORUM_DATA_DIR, default .quorum/: the embedded database, backups, chat
# files, reports) is never deleted by make. To start over: `quorum db stop`, then remove that directory by hand.
clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
