# shellcheck shell=bash
# Environment for running Clone's Airflow locally on the embedded SQLite DB.
#
# Source it (bash or zsh), do not execute it:
#     source include/scripts/airflow_env.sh && airflow dags list
# `make up`, `make airflow ARGS=...` and the tests source this same file, so the three agree.
#
# Project-bound settings (DAG/plugins folders, the SQLite connect args) are always set.
# Tunables keep a value you exported before sourcing; every default is listed in the README.
# Values this file derived itself (_CLONE_DEFAULT_*) are re-derived when you re-source it after
# changing AIRFLOW_HOME or the port.

if [ -n "${BASH_SOURCE:-}" ]; then
    _clone_env_script="${BASH_SOURCE[0]}"
elif [ -n "${ZSH_VERSION:-}" ]; then
    eval '_clone_env_script="${(%):-%x}"'
else
    _clone_env_script="${CLONE_PROJECT_DIR:-$PWD}/include/scripts/airflow_env.sh"
fi
CLONE_PROJECT_DIR="$(cd "$(dirname "$_clone_env_script")/../.." && pwd -P)"
unset _clone_env_script
export CLONE_PROJECT_DIR

# The project venv first on PATH: `airflow standalone` starts its components as `airflow ...`.
case "${PATH}" in
    "${CLONE_PROJECT_DIR}/.venv/bin:"*) ;;
    *) export PATH="${CLONE_PROJECT_DIR}/.venv/bin:${PATH}" ;;
esac

# AIRFLOW_HOME: ./.airflow unless already set; always absolute (SQLite URLs must be).
export AIRFLOW_HOME="${AIRFLOW_HOME:-${CLONE_PROJECT_DIR}/.airflow}"
case "${AIRFLOW_HOME}" in
    /*) ;;
    *) export AIRFLOW_HOME="${PWD}/${AIRFLOW_HOME}" ;;
esac

export AIRFLOW__CORE__DAGS_FOLDER="${CLONE_PROJECT_DIR}/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="${CLONE_PROJECT_DIR}/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
# 32 (the default) pre-forks ~2 GB of workers and locks SQLite up under load; 4 holds.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
# clone_fleet maps its per-repo chain over the whole fleet; Airflow's default cap is 1,024.
export AIRFLOW__CORE__MAX_MAP_LENGTH="${AIRFLOW__CORE__MAX_MAP_LENGTH:-10000}"
# Notice new DAG files within 30 s instead of 300 s.
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
# A task process's calls to the execution API (start, heartbeat, XCom) wait this long; Airflow's 5 s
# default failed tasks before they ran on a loaded 2-core machine (load average 20-30).
export AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="${AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT:-30}"

# API server (UI + REST) on localhost only; tasks reach its execution API on the same port.
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
if [ -z "${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-}" ] \
    || [ "${AIRFLOW__CORE__EXECUTION_API_SERVER_URL}" = "${_CLONE_DEFAULT_EXECUTION_API_URL:-}" ]; then
    case "${AIRFLOW__API__HOST}" in
        0.0.0.0 | :: | localhost | 127.0.0.1) _clone_api_host=127.0.0.1 ;;
        *) _clone_api_host="${AIRFLOW__API__HOST}" ;;
    esac
    export _CLONE_DEFAULT_EXECUTION_API_URL="http://${_clone_api_host}:${AIRFLOW__API__PORT}/execution/"
    unset _clone_api_host
    export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${_CLONE_DEFAULT_EXECUTION_API_URL}"
fi

# Metadata DB: SQLite in AIRFLOW_HOME unless you point elsewhere. For SQLite, a 60 s busy
# timeout (plugins/clone/config/airflow_sqlite.py; the plugins folder is on sys.path before Airflow
# builds its engine). `make up` also switches the file to WAL.
if [ -z "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" ] \
    || [ "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN}" = "${_CLONE_DEFAULT_SQL_CONN:-}" ]; then
    export _CLONE_DEFAULT_SQL_CONN="sqlite:///${AIRFLOW_HOME}/airflow.db"
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${_CLONE_DEFAULT_SQL_CONN}"
fi
case "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN}" in
    sqlite*)
        export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="clone.config.airflow_sqlite.CONNECT_ARGS"
        export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC="clone.config.airflow_sqlite.ASYNC_CONNECT_ARGS"
        ;;
esac

# Where `airflow standalone` writes the generated admin password on first start.
export CLONE_ADMIN_PASSWORD_FILE="${AIRFLOW_HOME}/simple_auth_manager_passwords.json.generated"
