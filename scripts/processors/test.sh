#!/usr/bin/env bash
# Runs the stream-processor tests (flink_jobs/tests, pyflink_jobs/tests) in .venv-flink.
#
#   bash scripts/processors/test.sh [pytest arguments...]
#
# .venv-flink (repository root) holds apache-flink 2.3.0 and the test dependencies listed in
# pyproject.toml. It is created when missing and reinstalled only when those dependency lists
# change: their sha256 is kept in .venv-flink/.requirements.sha256.
#
# Needs: python3 (3.11 or 3.12), Java 11+ on PATH or JAVA_HOME (PyFlink starts a local JVM), and
# the PostgreSQL server of the local stack for the credit-check and upsert tests
# (SUPABASE_TEST_SERVER_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh

venv=.venv-flink
requirements=$(mktemp)
trap 'rm -f "$requirements" "$requirements.new"' EXIT

log() { printf 'processors: %s\n' "$*" >&2; }

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
rm -f "$requirements"

if ! command -v java >/dev/null && [[ -z "${JAVA_HOME:-}" ]]; then
    log "java is not on PATH and JAVA_HOME is not set; PyFlink needs a JVM (Java 11 or newer)"
    exit 1
fi

# PyFlink's Python workers are started with the interpreter found on PATH unless the job sets
# python.executable (the tests do); keep the venv first anyway.
export PATH="$PWD/$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest -c pyproject.toml --rootdir . "$@"
