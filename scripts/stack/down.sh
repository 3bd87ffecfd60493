#!/usr/bin/env bash
# Stops what scripts/stack/up.sh started, in reverse order. The machine's PostgreSQL is left
# running (it is shared with other users of the machine); data in .local/data is kept.
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for name in pgnet-worker local-objectstore rivven-schema tansu; do
    stop_bg "$name"
done
log "stack stopped (PostgreSQL left running; data kept in $DATA_DIR)"
