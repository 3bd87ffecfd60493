#!/usr/bin/env bash
# Runs the stream-processor tests (flink_jobs/tests, pyflink_jobs/tests) in .venv-flink.
#
#   bash scripts/processors/test.sh [pytest arguments...]
#
# .venv-flink (repository root) holds apache-flink and the test dependencies listed in
# pyproject.toml; scripts/processors/venv.sh creates it when missing and reinstalls it only
# when those dependency lists change.
#
# Needs: python3 (3.11 or 3.12), Java 11+ on PATH or JAVA_HOME (PyFlink starts a local JVM), and
# the local stack (./taskw stack:up): its PostgreSQL for the credit-check and upsert tests
# (SUPABASE_TEST_SERVER_URL, default: the local stack's server, local-stack.env), and its Kafka
# broker, schema registry and connector jars (.local/jars/flink, resolved from
# scripts/stack/pom.xml) for the tests marked `kafka`, which run the jobs on their real
# connectors. `-m 'not kafka'` leaves those out.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash scripts/processors/venv.sh
venv=.venv-flink

log() { printf 'processors: %s\n' "$*" >&2; }

if ! command -v java >/dev/null && [[ -z "${JAVA_HOME:-}" ]]; then
    log "java is not on PATH and JAVA_HOME is not set; PyFlink needs a JVM (Java 11 or newer)"
    exit 1
fi

# PyFlink's Python workers are started with the interpreter found on PATH unless the job sets
# python.executable (the tests do); keep the venv first anyway.
export PATH="$PWD/$venv/bin:$PATH"
exec "$venv/bin/python" -m pytest -c pyproject.toml --rootdir . "$@"
