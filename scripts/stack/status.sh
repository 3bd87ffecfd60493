#!/usr/bin/env bash
# One line per local-stack component: name, running/stopped, address, pid.
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

line() {
    printf '%-18s %-8s %-16s %s\n' "$1" "$2" "$3" "$4"
}

# component NAME PORT : a process started by up.sh.
component() {
    local name="$1" port="$2" state=stopped address=- pid=-
    [[ -n "$port" ]] && address="$STACK_HOST:$port"
    if is_running "$name"; then
        pid="$(pid_of "$name")"
        if [[ -z "$port" ]] || port_open "$STACK_HOST" "$port"; then
            state=running
        else
            state=starting
        fi
    elif [[ -n "$port" ]] && port_open "$STACK_HOST" "$port"; then
        state=foreign # the port is held by a process this stack did not start
    fi
    line "$name" "$state" "$address" "$pid"
}

line COMPONENT STATE ADDRESS PID
read -r pg_state pg_pid < <(bash scripts/stack/postgres.sh status)
if [[ "$pg_state" == running ]] && ! pg_isready -q -h "$STACK_HOST" -p "$POSTGRES_PORT" -U postgres; then
    pg_state=starting
elif [[ "$pg_state" == stopped ]] && port_open "$STACK_HOST" "$POSTGRES_PORT"; then
    pg_state=foreign
fi
line postgres "$pg_state" "$STACK_HOST:$POSTGRES_PORT" "${pg_pid:--}"
component kafka "$KAFKA_PORT"
if [[ "$(running_profile)" == production ]]; then
    component registry-auth "$REGISTRY_PORT"
else
    component rivven-schema "$REGISTRY_PORT"
fi
component local-objectstore "$OBJECTSTORE_PORT"
component local-supabase "$SUPABASE_PORT"
component pgnet-worker ""

profile="$(running_profile)"
printf '\nprofile: %s\n' "${profile:-none recorded (stack not started by up.sh)}"
if [[ "$profile" == production ]] && is_running kafka; then
    # what the profile promises, shown: refused without TLS or credentials, let in with them
    "$VENV_PYTHON" scripts/stack/security_check.py || true
fi
