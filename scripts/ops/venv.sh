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

# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh

venv=.venv-ops

if [[ $# -eq 0 ]]; then
    echo "usage: bash scripts/ops/venv.sh COMMAND [ARGS...]" >&2
    exit 2
fi

# Wheels only: nothing is built or fetched from outside PyPI.
ensure_venv "$venv" scripts/ops/requirements.txt --only-binary=:all:

export PATH="$PWD/$venv/bin:$PATH"
exec "$@"
