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
# The tools live in .venv-ops (repository root), created when missing and reinstalled only
# when scripts/ops/requirements.txt changes (its sha256 is kept in .venv-ops/.requirements.sha256).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

venv=.venv-ops
requirements=scripts/ops/requirements.txt
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

log() { printf 'ops-lint: %s\n' "$*" >&2; }

# A venv restored from a cache may point at an interpreter that no longer exists.
if [[ -e "$venv" ]] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "$venv is broken, recreating it"
    rm -rf "$venv"
fi
if [[ ! -x "$venv/bin/python" ]]; then
    log "creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv"
fi

wanted="$(sha256sum "$requirements" | cut -d ' ' -f 1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$wanted" != "$have" ]]; then
    log "installing $requirements into $venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet --only-binary=:all: \
        -r "$requirements"
    printf '%s\n' "$wanted" >"$stamp"
fi

# The linters' binaries (hadolint, shellcheck, actionlint, docker-compose, yamllint) come first.
export PATH="$PWD/$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest -c tests/ops/pytest.ini --rootdir . tests/ops "$@"
