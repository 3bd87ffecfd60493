#!/usr/bin/env bash
# Helpers shared by the local-stack scripts. Source it; do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# After sourcing, the current directory is the repository root and these are set:
#   REPO_ROOT, LOCAL_DIR (.local), LOG_DIR (.local/logs), RUN_DIR (.local/run),
#   DATA_DIR (.local/data), VENV_PYTHON (.venv/bin/python), TARGET_DIR (cargo's target dir).
#
# Background processes are started in a session of their own (setsid), so they outlive the
# shell (and go-task) that started them. Each one has .local/run/<name>.pid and logs to
# .local/logs/<name>.log.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="$REPO_ROOT/.local"
LOG_DIR="$LOCAL_DIR/logs"
RUN_DIR="$LOCAL_DIR/run"
DATA_DIR="$LOCAL_DIR/data"
VENV_PYTHON="$REPO_ROOT/.venv/bin/python"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
export REPO_ROOT LOCAL_DIR LOG_DIR RUN_DIR DATA_DIR VENV_PYTHON TARGET_DIR

# Binaries from `cargo install` (rivven-schema; cargo-nextest where a developer installed it) live here.
case ":$PATH:" in
*":${CARGO_HOME:-$HOME/.cargo}/bin:"*) ;;
*) PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" ;;
esac
export PATH

# The stack's addresses are defined once, in local-stack.env (plain KEY=value lines).
set -a
# shellcheck source=../../local-stack.env
source "$REPO_ROOT/local-stack.env"
set +a
STACK_HOST="$LOCAL_STACK_HOST"
KAFKA_PORT="${LOCAL_KAFKA_BROKERS##*:}"
KAFKA_CONTROLLER_PORT="$LOCAL_KAFKA_CONTROLLER_PORT"
REGISTRY_PORT="${LOCAL_SCHEMA_REGISTRY_URL##*:}"
OBJECTSTORE_PORT="${LOCAL_S3_ENDPOINT##*:}"
POSTGRES_PORT="$LOCAL_POSTGRES_PORT"
POSTGRES_URL="$LOCAL_DATABASE_URL"
POSTGRES_DB="${POSTGRES_URL##*/}"
SUPABASE_PORT="${LOCAL_SUPABASE_URL##*:}"
# JVM components' jars (scripts/stack/pom.xml) are copied here by install.sh.
JARS_DIR="$LOCAL_DIR/jars"
export STACK_HOST KAFKA_PORT KAFKA_CONTROLLER_PORT REGISTRY_PORT OBJECTSTORE_PORT POSTGRES_PORT \
    POSTGRES_URL POSTGRES_DB SUPABASE_PORT JARS_DIR

mkdir -p "$LOG_DIR" "$RUN_DIR" "$DATA_DIR"
cd "$REPO_ROOT"

# The profile (development or production, from PROFILE) and its secrets and certificates.
# shellcheck source=scripts/stack/profile.sh
source "$REPO_ROOT/scripts/stack/profile.sh"

# log MESSAGE... : timestamped line on stderr.
log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

# die MESSAGE... : log and exit 1.
die() {
    log "ERROR: $*"
    exit 1
}

# port_open HOST PORT : true if something accepts TCP connections there.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

pid_file() {
    printf '%s/%s.pid' "$RUN_DIR" "$1"
}

log_file() {
    printf '%s/%s.log' "$LOG_DIR" "$1"
}

# pid_of NAME : prints the recorded pid of NAME (empty if none).
pid_of() {
    local file
    file="$(pid_file "$1")"
    if [[ -s "$file" ]]; then
        tr -d '[:space:]' <"$file"
    fi
}

# is_running NAME : true if NAME's recorded process is alive (and not a zombie).
is_running() {
    local pid state
    pid="$(pid_of "$1")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ "$state" != "Z" ]]
}

# show_log_tail NAME [LINES] : last lines of NAME's log on stderr.
show_log_tail() {
    local file
    file="$(log_file "$1")"
    if [[ -f "$file" ]]; then
        printf -- '----- last lines of %s -----\n' "$file" >&2
        tail -n "${2:-30}" "$file" >&2
        printf -- '-----\n' >&2
    fi
}

# redacted ARGS... : the words joined by spaces, with secrets (the value of a *PASSWORD=
# assignment, the password of a URL) replaced by ***, for the logs.
redacted() {
    local word out=()
    for word in "$@"; do
        if [[ "$word" =~ ^([A-Za-z0-9_]*PASSWORD[A-Za-z0-9_]*=) ]]; then
            word="${BASH_REMATCH[1]}***"
        elif [[ "$word" =~ ^(.*://[^:/@]+:)[^@]*(@.*)$ ]]; then
            word="${BASH_REMATCH[1]}***${BASH_REMATCH[2]}"
        fi
        out+=("$word")
    done
    printf '%s' "${out[*]}"
}

# start_bg NAME [--cwd DIR] -- COMMAND [ARGS...]
# Starts COMMAND in the background in a new session, stdin from /dev/null, stdout and stderr
# appended to .local/logs/NAME.log, pid in .local/run/NAME.pid. Extra environment can be given
# with `env VAR=value ... COMMAND`.
start_bg() {
    local name="$1" cwd="$REPO_ROOT"
    shift
    while [[ $# -gt 0 && "$1" != "--" ]]; do
        case "$1" in
        --cwd)
            cwd="$2"
            shift 2
            ;;
        *) die "start_bg $name: unknown option $1" ;;
        esac
    done
    [[ "${1:-}" == "--" ]] || die "start_bg $name: missing -- before the command"
    shift
    [[ $# -gt 0 ]] || die "start_bg $name: no command"

    local pidfile logfile
    pidfile="$(pid_file "$name")"
    logfile="$(log_file "$name")"
    rm -f "$pidfile"
    printf '\n===== %s starting %s: %s\n' "$(date '+%F %T')" "$name" "$(redacted "$@")" >>"$logfile"
    # The inner shell records its own pid and then execs the command, so the pid file names
    # the real process, which also leads its own process group (for stop_bg).
    # shellcheck disable=SC2016 # expanded by the inner shell
    setsid bash -c 'echo "$$" >"$1"; cd "$2" || exit 1; shift 2; exec "$@"' \
        start_bg "$pidfile" "$cwd" "$@" </dev/null >>"$logfile" 2>&1 &
    local waited=0
    until [[ -s "$pidfile" ]]; do
        sleep 0.05
        waited=$((waited + 1))
        [[ $waited -lt 100 ]] || die "start_bg $name: no pid file after 5 s"
    done
    log "started $name (pid $(pid_of "$name"), log $logfile)"
}

# stop_bg NAME : SIGTERM to NAME's process group, wait up to 10 s, then SIGKILL.
stop_bg() {
    local name="$1" pid
    pid="$(pid_of "$name")"
    if ! is_running "$name"; then
        rm -f "$(pid_file "$name")"
        log "$name is not running"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        is_running "$name" || break
        sleep 0.1
    done
    if is_running "$name"; then
        log "$name did not stop within 10 s, sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$(pid_file "$name")"
    log "stopped $name"
}

# wait_for_port HOST PORT TIMEOUT_SECONDS NAME
# Waits until HOST:PORT accepts connections. Fails early (with the log tail) if NAME was started
# by start_bg and its process has died.
wait_for_port() {
    local host="$1" port="$2" timeout="$3" name="$4"
    local deadline=$((SECONDS + timeout))
    until port_open "$host" "$port"; do
        if [[ -e "$(pid_file "$name")" ]] && ! is_running "$name"; then
            show_log_tail "$name"
            die "$name exited before listening on $host:$port (log: $(log_file "$name"))"
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail "$name"
            die "$name is not listening on $host:$port after ${timeout} s (log: $(log_file "$name"))"
        fi
        sleep 0.2
    done
}

# require_venv : the Python tooling must exist (./taskw creates it).
require_venv() {
    [[ -x "$VENV_PYTHON" ]] || die "$VENV_PYTHON is missing; run the tasks through ./taskw, which creates .venv"
}
