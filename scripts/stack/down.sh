#!/usr/bin/env bash
# Stops what scripts/stack/up.sh started, in reverse order, including the stack's own PostgreSQL;
# data in .local/data is kept.
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for name in pgnet-worker local-supabase local-objectstore registry-auth rivven-schema kafka; do
    stop_bg "$name"
done
bash scripts/stack/postgres.sh stop
rm -f "$RUN_DIR/profile"
log "stack stopped (data kept in $DATA_DIR)"
