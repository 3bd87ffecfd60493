#!/usr/bin/env bash
# The local trace viewer: Jaeger v2, one process with OTLP receivers, in-memory span storage and
# Jaeger's query API, on 127.0.0.1. The services export to it when scripts/services/up.sh starts
# them while it runs (or with TRACE=1). How to follow a record through it: docs/tracing.md.
#
#   scripts/stack/jaeger.sh install|up|status|down   (or ./taskw trace:install, trace:up, ...)
#
# install  builds the jaeger binary once per version from the Go module proxy (needs Go 1.24 or
#          newer; about 8 minutes on 2 cores, compiled under nice; 85 MB) and keeps it in
#          ${XDG_CACHE_HOME:-~/.cache}/event-substrate/jaeger-<version>/jaeger
# up       install, then start it (a running one is left alone):
#            OTLP/gRPC   127.0.0.1:LOCAL_OTLP_GRPC_PORT (4317)   what the services export to
#            OTLP/HTTP   127.0.0.1:LOCAL_OTLP_HTTP_PORT (4318)
#            HTTP API    http://127.0.0.1:LOCAL_JAEGER_UI_PORT (16686), /api/services, /api/traces
#            query gRPC  127.0.0.1, the port before the HTTP API's (16685)
#          Spans live in memory only: they are gone when it stops; it keeps the newest
#          JAEGER_MAX_TRACES traces (default 100000).
# status   running/stopped, pid and addresses
# down     stops it
#
# Which version: Jaeger tags every release twice on one commit, v1.x and v2.x. The module path
# github.com/jaegertracing/jaeger has no /v2 suffix, so only the v1.x tags are versions of the Go
# module; v1.76.0 is the release v2.13.0 and its cmd/jaeger is the v2 binary. `go install
# cmd/jaeger@v1.76.0` is refused because the module's go.mod has a replace directive, so the
# binary is built in a throwaway module that requires it (with the same replace).
#
# The web UI is not part of the Go module (it is a JavaScript project that Jaeger's release
# builds embed), so the page at http://127.0.0.1:16686 is Jaeger's placeholder; the HTTP API
# under /api/ is complete, and ./taskw trace:show prints a trace from it (scripts/stack/traces.py).
#
# Config: written to .local/jaeger/config.yaml at every start. Log: .local/logs/jaeger.log;
# pid file: .local/run/jaeger.pid.
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JAEGER_VERSION=2.13.0
JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_MODULE_VERSION=v1.76.0
# the replace directive of that version's go.mod, repeated in the module that builds it
JAEGER_REPLACE=github.com/Shopify/sarama=github.com/Shopify/sarama@v1.33.0
JAEGER_HOME="${XDG_CACHE_HOME:-$HOME/.cache}/event-substrate/jaeger-$JAEGER_VERSION"
JAEGER_BIN="$JAEGER_HOME/jaeger"
JAEGER_CONFIG="$LOCAL_DIR/jaeger/config.yaml"
UI_PORT="$LOCAL_JAEGER_UI_PORT"
QUERY_GRPC_PORT=$((UI_PORT - 1))
OTLP_GRPC_PORT="$LOCAL_OTLP_GRPC_PORT"
OTLP_HTTP_PORT="$LOCAL_OTLP_HTTP_PORT"
MAX_TRACES="${JAEGER_MAX_TRACES:-100000}"

cmd_install() {
    if [[ -x "$JAEGER_BIN" ]]; then
        log "jaeger $JAEGER_VERSION is installed ($JAEGER_BIN)"
        return 0
    fi
    command -v go >/dev/null || die "go is not on PATH; install Go 1.24 or newer to build Jaeger"
    local build started=$SECONDS
    build="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: the directory of this call
    trap "rm -rf '$build'" EXIT
    log "building jaeger $JAEGER_VERSION ($JAEGER_MODULE@$JAEGER_MODULE_VERSION, cmd/jaeger) into $JAEGER_HOME; once per version, about 8 minutes"
    mkdir -p "$JAEGER_HOME"
    (
        cd "$build"
        export GOFLAGS=-mod=mod
        go mod init event-substrate.local/jaeger-build
        go mod edit -replace="$JAEGER_REPLACE"
        go get "$JAEGER_MODULE/cmd/jaeger@$JAEGER_MODULE_VERSION"
        nice -n 19 go build -trimpath \
            -ldflags "-s -w -X $JAEGER_MODULE/internal/version.latestVersion=v$JAEGER_VERSION" \
            -o "$JAEGER_BIN.part" "$JAEGER_MODULE/cmd/jaeger"
    ) >>"$(log_file jaeger-build)" 2>&1 || {
        show_log_tail jaeger-build
        die "building jaeger failed (log: $(log_file jaeger-build))"
    }
    mv "$JAEGER_BIN.part" "$JAEGER_BIN"
    log "built $JAEGER_BIN in $((SECONDS - started)) s"
}

write_config() {
    mkdir -p "$(dirname "$JAEGER_CONFIG")"
    cat >"$JAEGER_CONFIG" <<CONFIG
# Written by scripts/stack/jaeger.sh at every start; edit that script, not this file.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    logs:
      level: info
    # no Prometheus endpoint of its own
    metrics:
      level: none

extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: $MAX_TRACES
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: $STACK_HOST:$UI_PORT
    grpc:
      endpoint: $STACK_HOST:$QUERY_GRPC_PORT

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: $STACK_HOST:$OTLP_GRPC_PORT
      http:
        endpoint: $STACK_HOST:$OTLP_HTTP_PORT

processors:
  batch:

exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
CONFIG
}

cmd_up() {
    if is_running jaeger; then
        log "jaeger already running (pid $(pid_of jaeger))"
    else
        cmd_install
        local port
        for port in "$OTLP_GRPC_PORT" "$OTLP_HTTP_PORT" "$UI_PORT" "$QUERY_GRPC_PORT"; do
            if port_open "$STACK_HOST" "$port"; then
                die "port $STACK_HOST:$port is in use by a process this script did not start; stop it before starting jaeger"
            fi
        done
        write_config
        start_bg jaeger -- "$JAEGER_BIN" --config "$JAEGER_CONFIG"
    fi
    wait_for_port "$STACK_HOST" "$OTLP_GRPC_PORT" 30 jaeger
    wait_for_port "$STACK_HOST" "$UI_PORT" 30 jaeger
    log "jaeger $JAEGER_VERSION is up: OTLP/gRPC $STACK_HOST:$OTLP_GRPC_PORT, API http://$STACK_HOST:$UI_PORT/api/services"
    if is_running api-gateway || is_running media-service || is_running message-consumer; then
        log "services started before jaeger export nothing: ./taskw services:restart makes them export to it"
    fi
}

cmd_status() {
    local state=stopped pid=-
    if is_running jaeger; then
        pid="$(pid_of jaeger)"
        if port_open "$STACK_HOST" "$UI_PORT" && port_open "$STACK_HOST" "$OTLP_GRPC_PORT"; then
            state=running
        else
            state=starting
        fi
    elif port_open "$STACK_HOST" "$UI_PORT"; then
        state=foreign # the port is held by a process this script did not start
    fi
    printf '%-8s %-8s %-8s %s\n' COMPONENT STATE PID ADDRESSES
    printf '%-8s %-8s %-8s %s\n' jaeger "$state" "$pid" \
        "api http://$STACK_HOST:$UI_PORT, otlp grpc $STACK_HOST:$OTLP_GRPC_PORT, http $STACK_HOST:$OTLP_HTTP_PORT"
    if [[ -x "$JAEGER_BIN" ]]; then
        printf 'binary   %s (%s)\n' "$JAEGER_BIN" "$JAEGER_VERSION"
    else
        printf 'binary   not built yet (./taskw trace:install or trace:up)\n'
    fi
}

case "${1:-}" in
install) cmd_install ;;
up) cmd_up ;;
status) cmd_status ;;
down) stop_bg jaeger ;;
*)
    echo "usage: $0 install|up|status|down" >&2
    exit 2
    ;;
esac
