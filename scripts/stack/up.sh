#!/usr/bin/env bash
# Starts the Docker-free local stack on 127.0.0.1 and bootstraps it (ports: local-stack.env):
#
#   postgres          :54322  the stack's own cluster (.local/data/postgres), schema applied
#   kafka             :9092   Apache Kafka 4 (KRaft, one node), data in .local/data/kafka
#   rivven-schema     :8081   schema registry (in memory; re-filled by the bootstrap)
#   local-objectstore :9000   S3 with webhooks to the media-service, data in .local/data/objectstore
#   local-supabase    :54321  Supabase Auth, REST and Realtime stand-ins over that Postgres
#   pgnet-worker              delivers the requests queued by the local pg_net
#
# A component that is already running (live pid and open port) is left alone, so running
# this again is quick. Run scripts/stack/install.sh first (./taskw setup). Environment:
#   STACK_SKIP_BUILD=1   do not `cargo build` local-objectstore and local-supabase before starting them
#   MEDIA_WEBHOOK_TOKEN  bearer token of the object-store webhooks (default local-webhook-token)
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_venv
started_at=$SECONDS

# One profile at a time: the broker's listeners and Postgres' authentication differ.
running="$(running_profile)"
if [[ -n "$running" && "$running" != "$STACK_PROFILE" ]]; then
    for part in kafka rivven-schema registry-auth local-objectstore local-supabase pgnet-worker; do
        is_running "$part" && die "the running stack is the $running profile; stop it first (./taskw down), then start the $STACK_PROFILE profile"
    done
fi
record_profile
log "profile: $STACK_PROFILE"
if is_production; then
    ensure_tls
    ensure_secrets
fi

# start_service NAME PORT [start_bg options] -- COMMAND...
# Starts NAME unless it is already running; refuses if another process holds PORT.
start_service() {
    local name="$1" port="$2"
    shift 2
    if is_running "$name"; then
        if [[ -z "$port" ]] || port_open "$STACK_HOST" "$port"; then
            log "$name already running (pid $(pid_of "$name"))"
            return 0
        fi
        # Alive but not listening: probably still starting; wait for it below.
        log "$name running (pid $(pid_of "$name")) but not listening yet"
        return 0
    fi
    if [[ -n "$port" ]] && port_open "$STACK_HOST" "$port"; then
        die "port $STACK_HOST:$port is in use by a process this stack did not start; stop it before starting $name"
    fi
    start_bg "$name" "$@"
}

# --- Apache Kafka (broker) ----------------------------------------------------------------
# Started before the slower steps below so the JVM warms up while they run.
# The production profile's broker keeps its own data directory: a node keeps the security it
# was formatted with (its superuser's SCRAM credential).
if is_production; then
    start_service kafka "$KAFKA_PORT" -- \
        env KAFKA_JARS_DIR="$JARS_DIR/kafka" KAFKA_SECURITY=sasl_ssl KAFKA_TLS_DIR="$TLS_DIR" \
        KAFKA_SUPERUSER_PASSWORD="$(kafka_password superuser)" \
        scripts/stack/kafka-node.sh "$DATA_DIR/kafka-production" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
else
    start_service kafka "$KAFKA_PORT" -- \
        env KAFKA_JARS_DIR="$JARS_DIR/kafka" \
        scripts/stack/kafka-node.sh "$DATA_DIR/kafka" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
fi

# --- PostgreSQL ---------------------------------------------------------------------------
bash scripts/stack/postgres.sh start
log "applying the Supabase schema to database $POSTGRES_DB"
"$VENV_PYTHON" scripts/supabase_apply.py "$POSTGRES_URL" >>"$(log_file supabase-apply)" 2>&1 || {
    show_log_tail supabase-apply
    die "scripts/supabase_apply.py failed (log: $(log_file supabase-apply))"
}
# The auth triggers post to the vault's gateway_url, falling back to host.docker.internal (the
# containerised setup). Locally the gateway listens on 127.0.0.1, so the local database gets the
# secret unless someone set one already.
psql -X -q -v ON_ERROR_STOP=1 "$POSTGRES_URL" -c "
    select vault.create_secret('http://$STACK_HOST:8080', 'gateway_url', 'local stack api-gateway')
     where not exists (select 1 from vault.decrypted_secrets where name = 'gateway_url')" >/dev/null \
    || die "could not store the local gateway_url in the vault"

if is_production; then
    # the services' least-privilege roles log in with their passwords (over TLS only)
    bash scripts/stack/postgres.sh set-passwords
fi

# --- the schema registry: rivven-schema; with basic auth in the production profile ----------
if is_production; then
    [[ -x "$REGISTRY_AUTH_BIN" ]] || die "$REGISTRY_AUTH_BIN is not installed; run ./taskw setup"
    start_service registry-auth "$REGISTRY_PORT" -- \
        env NO_COLOR=1 "$REGISTRY_AUTH_BIN" --host "$STACK_HOST" --port "$REGISTRY_PORT" \
        --users-file "$REGISTRY_USERS_FILE"
else
    command -v rivven-schema >/dev/null || die "rivven-schema is not installed; run ./taskw setup"
    start_service rivven-schema "$REGISTRY_PORT" -- \
        env NO_COLOR=1 rivven-schema serve --host "$STACK_HOST" --port "$REGISTRY_PORT"
fi
registry_name="$(is_production && echo registry-auth || echo rivven-schema)"

# --- the dev-only Rust parts: built together (one cargo run) -----------------------------------
objectstore_bin="$TARGET_DIR/debug/local-objectstore"
supabase_bin="$TARGET_DIR/debug/local-supabase"
if ! is_running local-objectstore || ! is_running local-supabase; then
    if [[ "${STACK_SKIP_BUILD:-0}" != 1 ]]; then
        log "building local-objectstore and local-supabase (STACK_SKIP_BUILD=1 skips this)"
        cargo build -p local-objectstore -p local-supabase
    fi
    for bin in "$objectstore_bin" "$supabase_bin"; do
        [[ -x "$bin" ]] || die "$bin is missing; build it with cargo build -p ${bin##*/}"
    done
fi

# --- local-objectstore (S3) ---------------------------------------------------------------
mkdir -p "$DATA_DIR/objectstore"
start_service local-objectstore "$OBJECTSTORE_PORT" -- \
    "$objectstore_bin" \
    --root "$DATA_DIR/objectstore" \
    --host "$STACK_HOST" --port "$OBJECTSTORE_PORT" \
    --access-key admin --secret-key password \
    --bucket media-uploads \
    --webhook "uploads/=http://$STACK_HOST:8090/webhooks/media-upload" \
    --webhook "files/=http://$STACK_HOST:8090/webhooks/file-ready" \
    --webhook-token "${MEDIA_WEBHOOK_TOKEN:-local-webhook-token}"

# --- local-supabase (Auth, REST, Realtime) ---------------------------------------------------
start_service local-supabase "$SUPABASE_PORT" -- \
    env RUST_LOG="${LOCAL_SUPABASE_LOG:-info,sqlx=warn}" NO_COLOR=1 "$supabase_bin" \
    --host "$STACK_HOST" --port "$SUPABASE_PORT" --database-url "$POSTGRES_URL"

# --- pg_net delivery worker ---------------------------------------------------------------
start_service pgnet-worker "" -- \
    env PGNET_DATABASE_URL="$POSTGRES_URL" PYTHONUNBUFFERED=1 "$VENV_PYTHON" scripts/pgnet_worker.py

# --- wait, then bootstrap -----------------------------------------------------------------
wait_for_port "$STACK_HOST" "$KAFKA_PORT" 90 kafka
wait_for_port "$STACK_HOST" "$REGISTRY_PORT" 60 "$registry_name"
wait_for_port "$STACK_HOST" "$OBJECTSTORE_PORT" 60 local-objectstore
wait_for_port "$STACK_HOST" "$SUPABASE_PORT" 60 local-supabase
sleep 0.2
is_running pgnet-worker || {
    show_log_tail pgnet-worker
    die "pgnet-worker exited (log: $(log_file pgnet-worker))"
}

log "bootstrapping topics and schemas"
bootstrap_security=() registry_password_env=()
if is_production; then
    bootstrap_security=(--sasl-ssl --ca-file "$TLS_DIR/ca.pem" --users-dir "$KAFKA_USERS_DIR"
        --acls-file "$KAFKA_ACLS_FILE" --registry-user schema-admin)
    registry_password_env=(SCHEMA_REGISTRY_PASSWORD="$(registry_password schema-admin)")
fi
env "${registry_password_env[@]}" "$VENV_PYTHON" scripts/stack/bootstrap.py \
    --brokers "$STACK_HOST:$KAFKA_PORT" --registry "http://$STACK_HOST:$REGISTRY_PORT" \
    "${bootstrap_security[@]}"

log "stack is up in $((SECONDS - started_at)) s; logs: $LOG_DIR/*.log (./taskw stack:logs), status: ./taskw stack:status"
