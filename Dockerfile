# Clone on the official Apache Airflow image: the DAGs, the `clone` package, git and the Codex CLI.
#     docker build -t clone .
# The image keeps Airflow's entrypoint and AIRFLOW_HOME=/opt/airflow; run it as the Airflow docs
# describe (docker compose, Helm). This Dockerfile is linted by tests/test_dockerfile.py (hadolint).

# Node.js (for the Codex CLI) comes from the official Node image at an exact version, rather than
# Debian's older nodejs/npm packages.
FROM node:22.14.0-bookworm-slim AS node

FROM apache/airflow:3.3.2-python3.11

# Users by name as in Airflow's docs: the base image defines `airflow` (uid 50000, gid 0), and
# docker compose / the Helm chart pass the numeric uid themselves.
# hadolint ignore=DL3066
USER root
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# git: Clone shells out to it for clones, commits and pushes. Not version-pinned on purpose: the
# available version is whatever the base image's Debian release ships (the FROM tag fixes the
# release) and we want its security updates; an exact pin breaks the build as soon as Debian
# publishes a point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && npm install --global --no-audit --no-fund @openai/codex@0.169.0 \
    && npm cache clean --force \
    && codex --version

# hadolint ignore=DL3066
USER airflow

# Every runtime pin from the lock; naming apache-airflow==3.3.2 too makes pip refuse any
# resolution that would move Airflow off the version this image ships.
COPY --chown=airflow:root requirements.lock /opt/airflow/requirements.lock
RUN pip install --no-cache-dir -r /opt/airflow/requirements.lock "apache-airflow==3.3.2"

ENV AIRFLOW__CORE__LOAD_EXAMPLES=False

COPY --chown=airflow:root airflow_settings.yaml /opt/airflow/airflow_settings.yaml
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root dags/ /opt/airflow/dags/
