#!/usr/bin/env bash
# The local stack's database (LOCAL_DATABASE_URL of local-stack.env, on the stack's own PostgreSQL),
# for the db:* tasks. No confirmation is asked; each step is printed before it runs.
#
#   bash scripts/stack/db.sh drop [--if-up]   drop the database, terminating its connections;
#                                             --if-up: do nothing when PostgreSQL is not running
#   bash scripts/stack/db.sh reset            drop, then apply supabase/ again (bootstrap,
#                                             migrations, seed: scripts/supabase_apply.py)
#
# Roles created by the bootstrap belong to the server, not the database, and are kept (the
# bootstrap is idempotent). Services and the pg_net worker connected to the database lose their
# connections and reconnect; restart them if they do not.
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

postgres_up() {
    pg_isready -q -h "$STACK_HOST" -p "$POSTGRES_PORT" -U postgres
}

drop_database() {
    log "dropping database $POSTGRES_DB on $STACK_HOST:$POSTGRES_PORT (open connections are terminated)"
    psql -X -q -v ON_ERROR_STOP=1 "${POSTGRES_URL%/*}/postgres" \
        -c "drop database if exists \"$POSTGRES_DB\" with (force)"
}

case "${1:-}" in
drop)
    if ! postgres_up; then
        [[ "${2:-}" == --if-up ]] || die "PostgreSQL is not accepting connections on $STACK_HOST:$POSTGRES_PORT (start it with ./taskw stack:up)"
        log "PostgreSQL is not running on $STACK_HOST:$POSTGRES_PORT; database $POSTGRES_DB not dropped"
        exit 0
    fi
    drop_database
    ;;
reset)
    require_venv
    postgres_up || die "PostgreSQL is not accepting connections on $STACK_HOST:$POSTGRES_PORT (start it with ./taskw stack:up)"
    drop_database
    log "applying supabase/ to a new database $POSTGRES_DB: bootstrap, migrations, seed (scripts/supabase_apply.py)"
    "$VENV_PYTHON" scripts/supabase_apply.py "$POSTGRES_URL"
    log "database $POSTGRES_DB reset; connected services reconnect (restart them with ./taskw services:down services:up if not)"
    ;;
*)
    printf 'usage: bash scripts/stack/db.sh drop [--if-up] | reset\n' >&2
    exit 2
    ;;
esac
