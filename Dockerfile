# Clone on the official Apache Airflow image: the DAGs, the `clone` package, git, the Codex and Claude Code CLIs.
#     docker build -t clone .
# The image keeps Airflow's entrypoint and AIRFLOW_HOME=/opt/airflow; run it as the Airflow docs
# describe (docker compose, Helm). This Dockerfile is linted by tests/test_dockerfile.py (hadolint).

# Node.js (for the Codex and Claude Code CLIs) comes from the official Node image at an exact version, rather than
# Debian's older nodejs/npm packages.
FROM node:22.14.0-bookworm-slim AS node
# The toolchains the repos' setup and checks use (README "Toolchains on the workers"): uv from its
# official image, Go and Rust from theirs, each at an exact version. Drop the ones your fleet does not need.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv
FROM golang:1.23.4-bookworm AS go
FROM rust:1.83.0-slim-bookworm AS rust

FROM apache/airflow:3.3.2-python3.11

# Users by name as in Airflow's docs: the base image defines `airflow` (uid 50000, gid 0), and
# docker compose / the Helm chart pass the numeric uid themselves.
# hadolint ignore=DL3066
USER root
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# git: Clone shells out to it for clones, commits and pushes. bubblewrap: the sandbox every agent run and
# every check run goes through (README "Security model"). Not version-pinned on purpose: the
# available version is whatever the base image's Debian release ships (the FROM tag fixes the
# release) and we want its security updates; an exact pin breaks the build as soon as Debian
# publishes a point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git make cmake g++ bubblewrap \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && npm install --global --no-audit --no-fund @openai/codex@0.169.0 @anthropic-ai/claude-code@2.1.331 \
    && npm cache clean --force \
    && codex --version && claude --version

COPY --from=uv /uv /uvx /usr/local/bin/
COPY --from=go /usr/local/go /usr/local/go
COPY --from=rust /usr/local/rustup /usr/local/rustup
COPY --from=rust /usr/local/cargo /usr/local/cargo
# poetry, tox, nox and pre-commit as uv tools: their own venvs under /opt/tools, never in Airflow's Python.
ENV UV_TOOL_DIR=/opt/tools UV_TOOL_BIN_DIR=/usr/local/bin RUSTUP_HOME=/usr/local/rustup \
    PATH="/usr/local/go/bin:/usr/local/cargo/bin:${PATH}"
RUN uv tool install poetry==2.1.3 \
    && uv tool install tox==4.23.2 \
    && uv tool install nox==2024.10.9 \
    && uv tool install pre-commit==4.0.1 \
    && uv --version && poetry --version && tox --version && nox --version && pre-commit --version && go version && cargo --version && cmake --version

# hadolint ignore=DL3066
USER airflow
# Caches the setup phase fills, writable by the airflow user (registries, module cache).
ENV CARGO_HOME=/home/airflow/.cargo GOPATH=/home/airflow/go

# Every runtime pin from the lock; naming apache-airflow==3.3.2 too makes pip refuse any
# resolution that would move Airflow off the version this image ships.
COPY --chown=airflow:root requirements.lock /opt/airflow/requirements.lock
RUN pip install --no-cache-dir -r /opt/airflow/requirements.lock "apache-airflow==3.3.2"

ENV AIRFLOW__CORE__LOAD_EXAMPLES=False

COPY --chown=airflow:root airflow_settings.yaml /opt/airflow/airflow_settings.yaml
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root dags/ /opt/airflow/dags/
