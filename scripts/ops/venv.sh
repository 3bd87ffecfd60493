#!/usr/bin/env bash
# Runs a command with the deployment tooling of .venv-ops first on PATH: hadolint, shellcheck,
# yamllint, actionlint, docker-compose (Compose v2 CLI), and a Python with the Helm SDK,
# kubernetes-validate and chdb (scripts/ops/requirements.txt). The command runs in the
# repository root.
#
#   bash scripts/ops/venv.sh COMMAND [ARGS...]
#   bash scripts/ops/venv.sh python scripts/ops/helm.py lint
#   bash scripts/ops/venv.sh docker-compose -f docker-compose.yml config -q
#
# .venv-ops is created when missing and reinstalled only when scripts/ops/requirements.txt
# changes (its sha256 is kept in .venv-ops/.requirements.sha256). Wheels only: nothing is built
# or fetched from outside PyPI. PYTHON picks the interpreter that creates it (default python3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

venv=.venv-ops
requirements=scripts/ops/requirements.txt
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

log() { printf 'ops-venv: %s\n' "$*" >&2; }

if [[ $# -eq 0 ]]; then
    log "usage: bash scripts/ops/venv.sh COMMAND [ARGS...]"
    exit 2
fi

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

export PATH="$PWD/$venv/bin:$PATH"
exec "$@"
