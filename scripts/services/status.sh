#!/usr/bin/env bash
# One line per Rust service of the local setup: running/stopped, pid, and the HTTP status of
# GET /healthz and GET /readyz (with the readiness body).
#
#   bash scripts/services/status.sh [--check]
#
# --check: exit 1 unless every service answers /healthz and /readyz with 200.
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../stack/lib.sh"

SERVICES=(api-gateway:8080 media-service:8090 message-consumer:8091)
check=0
[[ "${1:-}" == --check ]] && check=1

# http_code URL : the status code of a GET (000 when nothing answers).
http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" || true
}

failed=0
printf '%-17s %-8s %-8s %-22s %-7s %s\n' SERVICE STATE PID ADDRESS HEALTHZ READYZ
for entry in "${SERVICES[@]}"; do
    name="${entry%%:*}"
    port="${entry##*:}"
    state=stopped pid=-
    if is_running "$name"; then
        state=running
        pid="$(pid_of "$name")"
    elif port_open "$STACK_HOST" "$port"; then
        state=foreign # something this setup did not start holds the port
    fi
    health=- ready=-
    if port_open "$STACK_HOST" "$port"; then
        health="$(http_code "http://$STACK_HOST:$port/healthz")"
        body="$(curl -s --max-time 3 -w '\n%{http_code}' "http://$STACK_HOST:$port/readyz" || true)"
        text="$(printf '%s' "${body%$'\n'*}" | tr -s '[:space:]' ' ')"
        ready="${body##*$'\n'} ${text% }"
    fi
    printf '%-17s %-8s %-8s %-22s %-7s %s\n' "$name" "$state" "$pid" "http://$STACK_HOST:$port" "$health" "$ready"
    [[ "$health" == 200 && "$ready" == 200* ]] || failed=1
done

if ((check && failed)); then
    log "not every service is healthy and ready (start them with ./taskw services:up; logs: ./taskw services:logs)"
    exit 1
fi
