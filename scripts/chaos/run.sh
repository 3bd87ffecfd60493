#!/usr/bin/env bash
# Runs the chaos driver (scripts/chaos/driver.py; ./taskw chaos, ./taskw test:chaos) in the
# processors' venv: the driver starts the processors with PyFlink and reuses the fleet of
# flink_jobs/tests/fleet.py.
#
#   bash scripts/chaos/run.sh [--duration SECONDS] [--no-record] [--keep] [...]   (--help lists all)
#
# Needs what the end-to-end scenarios need, and nothing of the running local stack: the Rust
# debug binaries in $CARGO_TARGET_DIR/debug (default target/debug; the Rust test run builds
# them), the Kafka and Flink connector jars in .local/jars and a PostgreSQL 15+ server
# installation (./taskw setup installs both), rivven-schema, and Java 17+.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash scripts/processors/venv.sh
if ! command -v java >/dev/null && [[ -z "${JAVA_HOME:-}" ]]; then
    echo "chaos: java is not on PATH and JAVA_HOME is not set (Kafka and PyFlink need Java 17+)" >&2
    exit 1
fi
# PyFlink starts its Python workers with the interpreter found on PATH
export PATH="$PWD/.venv-flink/bin:$PATH"
exec .venv-flink/bin/python -m scripts.chaos "$@"
