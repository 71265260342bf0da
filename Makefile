# Clone: developer entry points. `make help` lists them.
# Recipes are bash with `set -eu -o pipefail` spelled out (GNU make 3.81, as on macOS, has no .SHELLFLAGS).

SHELL := /bin/bash
.DEFAULT_GOAL := help
STRICT := set -eu -o pipefail;
MAKEFLAGS += --no-print-directory

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON_VERSION := 3.11
UV_VERSION := 0.13.9
# Any Python 3 can bootstrap uv; uv then finds (or fetches) Python $(PYTHON_VERSION) for .venv.
BOOTSTRAP_PYTHON ?= python3
VENV := $(ROOT)/.venv
UV_BOOTSTRAP_VENV := $(ROOT)/.cache/uv-venv
# Inside .venv, so a deleted or recreated venv always re-syncs.
INSTALL_STAMP := $(VENV)/.clone-installed
DEV_LOCK := $(ROOT)/requirements-dev.lock
ENV_SCRIPT := $(ROOT)/include/scripts/airflow_env.sh
SETTINGS_FILE := $(ROOT)/airflow_settings.yaml
ARGS ?=
PYTEST_ARGS ?=

# Seconds since the epoch, to 1 µs where bash has EPOCHREALTIME (bash >= 5; its radix follows the locale).
NOW := $$(t="$${EPOCHREALTIME:-}"; if [ -n "$$t" ]; then echo "$${t/,/.}"; else date +%s; fi)
ELAPSED = $$(awk -v a="$$1" -v b="$(NOW)" 'BEGIN { printf "%.1f", b - a }')

# `uv` from PATH, else a pinned copy bootstrapped with pip into .cache/uv-venv (no curl, no Docker).
FIND_UV := uv="$$(command -v uv || true)"; \
	if [ -z "$$uv" ]; then \
	  uv="$(UV_BOOTSTRAP_VENV)/bin/uv"; \
	  if [ ! -x "$$uv" ]; then \
	    echo "install: uv not on PATH; bootstrapping uv==$(UV_VERSION) into $(UV_BOOTSTRAP_VENV)"; \
	    rm -rf "$(UV_BOOTSTRAP_VENV)"; \
	    $(BOOTSTRAP_PYTHON) -m venv "$(UV_BOOTSTRAP_VENV)" || { echo "install: '$(BOOTSTRAP_PYTHON) -m venv' failed;" \
	      "install python3-venv (Debian/Ubuntu) or put uv on PATH"; exit 1; }; \
	    "$(UV_BOOTSTRAP_VENV)/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; \
	  fi; \
	fi

# In recipes that run Airflow: the shared environment (also for `source` in your shell).
AIRFLOW_ENV := source "$(ENV_SCRIPT)"

# WAL lets readers and one writer work at once; the setting is stored in the DB file.
define ENABLE_WAL
import os, sqlite3
url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
if url.startswith("sqlite:///"):
    with sqlite3.connect(url[len("sqlite:///"):]) as db:
        print("up: SQLite journal_mode =", db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
endef
export ENABLE_WAL

.PHONY: help install lock test up airflow clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{ printf "  make %-8s %s\n", $$1, $$2 }'
	@echo "  Variables: PARALLEL_REPOS (clone_agent pool slots), AIRFLOW_HOME (default ./.airflow),"
	@echo "             ARGS (for make airflow), PYTEST_ARGS (for make test), UPGRADE=1 (for make lock)"

install: ## Create .venv (Python 3.11) and sync it to requirements-dev.lock; no-op when up to date
	@$(STRICT) set -- "$(NOW)"; \
	if [ -x "$(VENV)/bin/python" ] && [ -f "$(INSTALL_STAMP)" ] && [ "$(INSTALL_STAMP)" -nt "$(DEV_LOCK)" ]; then \
	  echo "install: .venv is up to date with requirements-dev.lock ($(ELAPSED) s)"; exit 0; \
	fi; \
	$(FIND_UV); \
	if ! "$(VENV)/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != ($(subst .,$(comma),$(PYTHON_VERSION))))' 2>/dev/null; then \
	  "$$uv" venv --quiet --clear --python "$(PYTHON_VERSION)" "$(VENV)"; \
	fi; \
	"$$uv" pip sync --quiet --compile-bytecode --python "$(VENV)/bin/python" "$(DEV_LOCK)"; \
	touch "$(INSTALL_STAMP)"; \
	echo "install: synced .venv to requirements-dev.lock in $(ELAPSED) s"

lock: ## Re-resolve requirements.lock and requirements-dev.lock (UPGRADE=1 to bump every pin)
	@$(STRICT) $(FIND_UV); \
	cd "$(ROOT)"; \
	"$$uv" pip compile --quiet -p $(PYTHON_VERSION) $(if $(UPGRADE),--upgrade) requirements.txt -o requirements.lock; \
	"$$uv" pip compile --quiet -p $(PYTHON_VERSION) $(if $(UPGRADE),--upgrade) requirements-dev.txt -c requirements.lock -o requirements-dev.lock; \
	echo "lock: wrote requirements.lock and requirements-dev.lock (run make install to apply)"

test: install ## Run the whole pytest suite (fails on any failure and when no test is collected)
	@$(STRICT) set -- "$(NOW)"; \
	cd "$(ROOT)"; \
	status=0; "$(VENV)/bin/python" -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ "$$status" -eq 5 ]; then echo "test: pytest collected no tests; that is a failure"; fi; \
	echo "test: pytest exited $$status; total wall time $(ELAPSED) s"; \
	exit "$$status"

up: install ## Migrate the DB, load airflow_settings.yaml, run every Airflow component (supervised) on localhost:8080
	@$(STRICT) $(AIRFLOW_ENV); \
	set -- "$(NOW)"; \
	umask 077; \
	mkdir -p "$$AIRFLOW_HOME"; \
	echo "up: AIRFLOW_HOME=$$AIRFLOW_HOME"; \
	airflow db migrate > "$$AIRFLOW_HOME/db-migrate.log" 2>&1 \
	  || { cat "$$AIRFLOW_HOME/db-migrate.log"; echo "up: airflow db migrate failed"; exit 1; }; \
	python -c "$$ENABLE_WAL"; \
	python "$(ROOT)/include/scripts/load_airflow_settings.py" "$(SETTINGS_FILE)" \
	  $${PARALLEL_REPOS:+--pool-slots "clone_agent=$$PARALLEL_REPOS"}; \
	echo "up: ready to start after $(ELAPSED) s"; \
	echo "up: UI and REST API: http://localhost:$$AIRFLOW__API__PORT (user admin)"; \
	echo "up: admin password: $$CLONE_ADMIN_PASSWORD_FILE (written on the first start)"; \
	echo "up: Ctrl-C stops every component; a component that dies is restarted"; \
	exec python "$(ROOT)/include/scripts/standalone.py"

# ARGS reaches the recipe through the environment, not pasted into it (make would expand `$`, and bash
# braces and quotes), and is split once by the shell's word rules with brace expansion and globbing off:
# quote an argument that holds spaces, as in a shell. --conf '{"repos": ["a", "b"]}' arrives intact.
airflow: export CLONE_AIRFLOW_ARGS := $(value ARGS)
airflow: install ## Run any airflow CLI command in the project env: make airflow ARGS="dags list"
	@$(STRICT) $(AIRFLOW_ENV); set +B -f; \
	eval "set -- $$CLONE_AIRFLOW_ARGS" \
	  || { echo "airflow: ARGS does not split into shell words: $$CLONE_AIRFLOW_ARGS"; exit 2; }; \
	exec airflow "$$@"

clean: ## Delete .venv, .airflow and .cache (the local Airflow DB and logs go with .airflow)
	rm -rf -- "$(ROOT)/.venv" "$(ROOT)/.airflow" "$(ROOT)/.cache"

comma := ,
