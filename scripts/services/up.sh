#!/usr/bin/env bash
# Starts the three Rust services in the background against the local stack:
#
#   api-gateway       http://127.0.0.1:8080
#   media-service     http://127.0.0.1:8090  (object-store webhooks)
#   message-consumer  http://127.0.0.1:8091  (health only)
#
# Binaries come from ${CARGO_TARGET_DIR:-target}/debug and are built first with
# `cargo build --workspace --bins` unless STACK_SKIP_BUILD=1; SERVICES_PROFILE=release takes
# the release build instead (what ./taskw bench measures). A service that is already
# running is left alone. Waits until each answers GET /healthz with 200, then reports /readyz.
# Logs: .local/logs/<service>.log. Start the stack first (scripts/stack/up.sh).
#
# Traces: the services export spans over OTLP/gRPC to the local Jaeger (scripts/stack/jaeger.sh,
# ./taskw trace:up) when it is running as they start, or always with TRACE=1; TRACE=0 never.
# An APP__TELEMETRY__OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT of the caller's environment
# reaches them as it is and wins. Without an endpoint nothing is exported (docs/tracing.md).
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../stack/lib.sh"

SERVICES=(api-gateway:8080 media-service:8090 message-consumer:8091)
HEALTH_TIMEOUT="${SERVICES_HEALTH_TIMEOUT:-60}"
BUILD_PROFILE="${SERVICES_PROFILE:-debug}"
case "$BUILD_PROFILE" in
    debug) build_flags=() ;;
    release) build_flags=(--release) ;;
    *) die "SERVICES_PROFILE must be debug or release, not '$BUILD_PROFILE'" ;;
esac

otlp_env=()
case "${TRACE:-auto}" in
    1) trace=1 ;;
    0) trace=0 ;;
    auto) if is_running jaeger; then trace=1; else trace=0; fi ;;
    *) die "TRACE must be 1, 0 or unset, not '$TRACE'" ;;
esac
if [[ -n "${APP__TELEMETRY__OTLP_ENDPOINT:-}${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ]]; then
    log "traces go to ${APP__TELEMETRY__OTLP_ENDPOINT:-$OTEL_EXPORTER_OTLP_ENDPOINT} (from the environment)"
elif ((trace)); then
    otlp_env=(APP__TELEMETRY__OTLP_ENDPOINT="http://$STACK_HOST:$LOCAL_OTLP_GRPC_PORT")
    is_running jaeger || log "TRACE=1 but the local jaeger is not running (./taskw trace:up); spans are dropped until it is"
    log "traces go to http://$STACK_HOST:$LOCAL_OTLP_GRPC_PORT (API and UI: http://$STACK_HOST:$LOCAL_JAEGER_UI_PORT)"
fi

if [[ "${STACK_SKIP_BUILD:-0}" != 1 ]]; then
    log "building the $BUILD_PROFILE service binaries (STACK_SKIP_BUILD=1 skips this)"
    cargo build "${build_flags[@]}" --workspace --bins
fi

# security_env NAME : the settings NAME connects with under the stack's profile. Production:
# Kafka over SASL_SSL as its own user, the registry with its own credentials, Postgres over
# verified TLS as its own least-privilege role (scripts/stack/profile.sh).
security_env() {
    local name="$1" role="${1//-/_}"
    if ! is_production; then
        printf '%s\n' "APP__POSTGRES__URL=postgres://postgres@$STACK_HOST:$POSTGRES_PORT/$POSTGRES_DB"
        return 0
    fi
    printf '%s\n' \
        "APP__KAFKA__TLS=true" \
        "APP__KAFKA__SSL_CA_FILE=$TLS_DIR/ca.pem" \
        "APP__KAFKA__SASL_MECHANISM=SCRAM-SHA-256" \
        "APP__KAFKA__SASL_USERNAME=$name" \
        "APP__KAFKA__SASL_PASSWORD=$(kafka_password "$name")" \
        "APP__REGISTRY__USERNAME=$name" \
        "APP__REGISTRY__PASSWORD=$(registry_password "$name")" \
        "APP__POSTGRES__URL=postgres://$role:$(pg_password "$role")@$STACK_HOST:$POSTGRES_PORT/$POSTGRES_DB?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem"
}
log "profile: $STACK_PROFILE"

for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}"
    port="${entry##*:}"
    mapfile -t security < <(security_env "$name")
    binary="$TARGET_DIR/$BUILD_PROFILE/$name"
    if is_running "$name"; then
        log "$name already running (pid $(pid_of "$name"))"
        continue
    fi
    [[ -x "$binary" ]] || die "$binary is missing; build it with cargo build ${build_flags[*]} --workspace --bins"
    if port_open "$STACK_HOST" "$port"; then
        die "port $STACK_HOST:$port is in use by a process this script did not start; stop it before starting $name"
    fi
    start_bg "$name" -- env \
        APP__HTTP__HOST="$STACK_HOST" \
        APP__HTTP__PORT="$port" \
        APP__KAFKA__BROKERS="$STACK_HOST:$KAFKA_PORT" \
        APP__REGISTRY__URL="http://$STACK_HOST:$REGISTRY_PORT" \
        "${security[@]}" \
        APP__S3__ENDPOINT="$STACK_HOST:$OBJECTSTORE_PORT" \
        APP__S3__PUBLIC_ENDPOINT="$STACK_HOST:$OBJECTSTORE_PORT" \
        MEDIA_WEBHOOK_TOKEN="${MEDIA_WEBHOOK_TOKEN:-local-webhook-token}" \
        WEBHOOK_SECRET="${WEBHOOK_SECRET:-super-secret-webhook-key}" \
        SUPABASE_JWT_SECRET="${SUPABASE_JWT_SECRET:-super-secret-jwt-token-with-at-least-32-characters-long}" \
        NO_COLOR=1 \
        "${otlp_env[@]}" \
        "$binary"
done

# healthy NAME PORT : waits for GET /healthz == 200.
healthy() {
    local name="$1" port="$2" deadline=$((SECONDS + HEALTH_TIMEOUT)) code
    while :; do
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$STACK_HOST:$port/healthz" || true)"
        [[ "$code" == 200 ]] && return 0
        if ! is_running "$name"; then
            show_log_tail "$name"
            die "$name exited before it became healthy (log: $(log_file "$name"))"
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail "$name"
            die "$name did not answer GET /healthz with 200 within ${HEALTH_TIMEOUT} s (last: ${code:-none})"
        fi
        sleep 0.3
    done
}

for entry in "${SERVICES[@]}"; do
    healthy "${entry%%:*}" "${entry##*:}"
done

for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}"
    port="${entry##*:}"
    body="$(curl -s --max-time 5 -w '\n%{http_code}' "http://$STACK_HOST:$port/readyz" || true)"
    code="${body##*$'\n'}"
    body="${body%$'\n'*}"
    printf '%-17s http://%s:%s  healthz 200, readyz %s %s\n' "$name" "$STACK_HOST" "$port" "$code" "$body"
done
log "services are up; logs in $LOG_DIR"
