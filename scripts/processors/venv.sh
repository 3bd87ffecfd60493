#!/usr/bin/env bash
# Creates or updates .venv-flink (repository root), the stream processors' Python environment:
# apache-flink (whose wheel also carries Flink's jars and bin/ scripts, used by the local
# session cluster, scripts/stack/flink.sh), psycopg 3 and the test extras of pyproject.toml.
#
#   bash scripts/processors/venv.sh
#
# The venv is reinstalled only when those dependency lists change: their sha256 is kept in
# .venv-flink/.requirements.sha256 (scripts/lib/venv.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh

venv=.venv-flink
requirements=$(mktemp)
trap 'rm -f "$requirements" "$requirements.new"' EXIT

# The pinned dependencies and test extras of pyproject.toml, one requirement per line (tomllib is
# in the standard library of the interpreter that creates the venv).
"${PYTHON:-python3}" - >"$requirements.new" <<'PY'
import tomllib

with open("pyproject.toml", "rb") as handle:
    project = tomllib.load(handle)["project"]
for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
    print(requirement)
PY
mv "$requirements.new" "$requirements"
ensure_venv "$venv" "$requirements"
