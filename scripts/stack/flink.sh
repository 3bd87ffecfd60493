#!/usr/bin/env bash
# The local Flink session cluster that runs every stream processor against the local stack.
#
#   scripts/stack/flink.sh up|status|down        (or ./taskw flink:up, flink:status, flink:down)
#
# up      starts one JobManager and one TaskManager from the PyPI distribution of Flink (the
#         apache-flink wheel in .venv-flink ships Flink's jars and bin/ scripts under
#         site-packages/pyflink), then submits the five jobs that are not running yet: the SQL
#         processors (flink_jobs/sql_runner.py with the six SQL files, one job) and the PyFlink
#         jobs credit check, TTL expiry, move saga and echo. It waits until all five run.
#         A job stopped by `down` resumes from its savepoint (keyed state, timers, offsets).
# status  the two processes and every job with its state (Flink REST API)
# down    stops every job with a savepoint (.local/data/flink/savepoints), then the cluster
#
# Needs the local stack up (./taskw stack:up: Kafka, schema registry, PostgreSQL, and the
# connector jars in .local/jars/flink resolved from scripts/stack/pom.xml). Addresses come from
# local-stack.env (via lib.sh); the JobManager's ports are LOCAL_FLINK_REST_PORT (default 8281:
# Flink's 8081 is the registry's, 8080/8090/8091 are the services') and LOCAL_FLINK_RPC_PORT
# (default 6123); the TaskManager's are ephemeral. Logs: .local/logs/flink-*.log; pid files: .local/run/flink-*.pid.
#
# Memory: JobManager 1 GiB, TaskManager 1.5 GiB (5 slots, one per job) plus the Python
# workers of the PyFlink jobs; FLINK_JM_MEMORY / FLINK_TM_MEMORY override the process sizes.
set -euo pipefail

# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FLINK_VENV="$REPO_ROOT/.venv-flink"
FLINK_PY="$FLINK_VENV/bin/python"
REST_PORT="$LOCAL_FLINK_REST_PORT"
RPC_PORT="$LOCAL_FLINK_RPC_PORT"
REST_URL="http://$STACK_HOST:$REST_PORT"
CONF_DIR="$LOCAL_DIR/flink/conf"
LIB_DIR="$LOCAL_DIR/flink/lib"
FLINK_DATA="$DATA_DIR/flink"
SAVEPOINTS="$FLINK_DATA/savepoints"
CONNECTOR_JARS="$JARS_DIR/flink"
SQL_FILES=(login_events signup_events signout_events unified_events credit_balance media_notification)

# job name (pipeline.name) -> script; the SQL runner's name is set by FLINK_JOB_NAME below
JOB_NAMES=(sql-processors credit-check-processor ttl-expiry-processor move-saga-processor pyflink-echo-job)
job_script() {
    case "$1" in
    sql-processors) echo flink_jobs/sql_runner.py ;;
    credit-check-processor) echo pyflink_jobs/credit_check_processor.py ;;
    ttl-expiry-processor) echo pyflink_jobs/ttl_expiry_processor.py ;;
    move-saga-processor) echo pyflink_jobs/move_saga_processor.py ;;
    pyflink-echo-job) echo pyflink_jobs/echo_processor.py ;;
    *) die "unknown job $1" ;;
    esac
}

flink_home() {
    "$FLINK_PY" -c 'import os, pyflink; print(os.path.dirname(os.path.abspath(pyflink.__file__)))'
}

# rest PATH : GET on the REST API, JSON on stdout (fails when the JobManager does not answer)
rest() {
    "$FLINK_PY" - "$REST_URL$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
    sys.stdout.write(response.read().decode())
PY
}

# job_states : "name state jobid" per job, newest first (RUNNING jobs before ended ones)
job_states() {
    rest /jobs/overview | "$FLINK_PY" -c '
import json, sys
jobs = json.load(sys.stdin)["jobs"]
active = ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING", "RECONCILING", "CANCELLING", "FAILING")
jobs.sort(key=lambda j: (j["state"] not in active, -j["start-time"]))
for job in jobs:
    print(job["name"], job["state"], job["jid"])
'
}

# active_job NAME : the id of NAME's job that is running or about to, if any
active_job() {
    job_states 2>/dev/null | awk -v name="$1" '$1 == name && $2 ~ /^(RUNNING|CREATED|INITIALIZING|RESTARTING|RECONCILING)$/ { print $3; exit }'
}

write_config() {
    local home="$1" java_opts
    # the distribution's JVM options for Java 17+ (--add-opens/--add-exports Flink needs)
    java_opts="$(sed -n 's/^ *all: \(--add-.*\)$/\1/p' "$home/conf/config.yaml")"
    [[ -n "$java_opts" ]] || die "no env.java.opts.all in $home/conf/config.yaml"
    mkdir -p "$CONF_DIR" "$FLINK_DATA/checkpoints" "$SAVEPOINTS" "$FLINK_DATA/tmp"
    cp "$home/conf/log4j-console.properties" "$home/conf/log4j-cli.properties" "$CONF_DIR/"
    # the cluster's classpath: the wheel's lib/ plus flink-python from opt/ (which a Flink
    # distribution leaves for the operator to add; the PyFlink jobs' operators live in it)
    rm -rf "$LIB_DIR"
    mkdir -p "$LIB_DIR"
    ln -s "$home"/lib/*.jar "$home"/opt/flink-python-*.jar "$LIB_DIR/"
    cat >"$CONF_DIR/config.yaml" <<EOF
# Written by scripts/stack/flink.sh on every start; edit the script, not this file.
env.java.opts.all: $java_opts
jobmanager:
  rpc: {address: $STACK_HOST, port: $RPC_PORT}
  bind-host: $STACK_HOST
  memory: {process.size: ${FLINK_JM_MEMORY:-1024m}}
taskmanager:
  host: $STACK_HOST
  bind-host: $STACK_HOST
  numberOfTaskSlots: ${#JOB_NAMES[@]}
  memory:
    process.size: ${FLINK_TM_MEMORY:-1536m}
    # the PyFlink jobs' Python workers are accounted in managed memory
    managed.fraction: 0.35
rest:
  address: $STACK_HOST
  bind-address: $STACK_HOST
  port: $REST_PORT
blob.server.port: 0
parallelism.default: 1
io.tmp.dirs: $FLINK_DATA/tmp
python:
  executable: $FLINK_PY
  client.executable: $FLINK_PY
state.backend.type: hashmap
execution.checkpointing.savepoint-dir: file://$SAVEPOINTS
EOF
}

flink_env() {
    # the jobs' settings (flink_jobs/README.md, pyflink_jobs/README.md) for the local stack
    local db_user="${POSTGRES_URL#*://}"
    db_user="${db_user%%@*}"
    export REDPANDA_BROKERS="$LOCAL_KAFKA_BROKERS"
    export SCHEMA_REGISTRY_URL="$LOCAL_SCHEMA_REGISTRY_URL"
    export SUPABASE_DB_JDBC_URL="jdbc:postgresql://$STACK_HOST:$POSTGRES_PORT/$POSTGRES_DB"
    export SUPABASE_DB_HOST="$STACK_HOST" SUPABASE_DB_PORT="$POSTGRES_PORT" SUPABASE_DB_NAME="$POSTGRES_DB"
    # the stack's server trusts local connections: the password is never checked
    export SUPABASE_DB_USER="$db_user" SUPABASE_DB_PASSWORD="local"
    export FLINK_CONNECTOR_JARS_DIR="$CONNECTOR_JARS"
    export FLINK_CHECKPOINT_DIR="file://$FLINK_DATA/checkpoints"
    export FLINK_CONF_DIR="$CONF_DIR" FLINK_LOG_DIR="$LOG_DIR" FLINK_PID_DIR="$RUN_DIR"
    export PATH="$FLINK_VENV/bin:$PATH"
}

wait_for_slots() {
    local deadline=$((SECONDS + 90)) slots
    while true; do
        slots="$(rest /overview 2>/dev/null | "$FLINK_PY" -c 'import json, sys; print(json.load(sys.stdin)["slots-total"])' 2>/dev/null || echo 0)"
        [[ "$slots" -ge "${#JOB_NAMES[@]}" ]] && return 0
        is_running flink-jobmanager || { show_log_tail flink-jobmanager; die "the JobManager exited"; }
        is_running flink-taskmanager || { show_log_tail flink-taskmanager; die "the TaskManager exited"; }
        ((SECONDS < deadline)) || { show_log_tail flink-taskmanager; die "no TaskManager slots after 90 s"; }
        sleep 1
    done
}

submit() {
    local name="$1" home="$2" script savepoint_file savepoint args=()
    script="$(job_script "$name")"
    args=(run --detached --jobmanager "$STACK_HOST:$REST_PORT" -pyexec "$FLINK_PY" -pyclientexec "$FLINK_PY")
    savepoint_file="$SAVEPOINTS/$name.path"
    if [[ -s "$savepoint_file" ]]; then
        savepoint="$(cat "$savepoint_file")"
        if [[ -d "${savepoint#file:}" ]]; then
            log "$name resumes from $savepoint"
            # state of operators the changed job code no longer has is dropped, not an error
            args+=(--fromSavepoint "$savepoint" --allowNonRestoredState)
        fi
    fi
    args+=(--python "$script")
    if [[ "$name" == sql-processors ]]; then
        local file
        for file in "${SQL_FILES[@]}"; do
            args+=("flink_jobs/${file}_processor.sql")
        done
    fi
    log "submitting $name"
    printf '\n===== %s submitting %s\n' "$(date '+%F %T')" "$name" >>"$(log_file "flink-submit-$name")"
    FLINK_JOB_NAME="$name" "$home/bin/flink" "${args[@]}" >>"$(log_file "flink-submit-$name")" 2>&1 || {
        show_log_tail "flink-submit-$name" 40
        die "submitting $name failed (log: $(log_file "flink-submit-$name"))"
    }
    rm -f "$savepoint_file"
}

cmd_up() {
    bash scripts/processors/venv.sh
    compgen -G "$CONNECTOR_JARS/*.jar" >/dev/null \
        || die "no connector jars in $CONNECTOR_JARS: run ./taskw stack:up first (it resolves scripts/stack/pom.xml)"
    local host_port
    for host_port in "$LOCAL_KAFKA_BROKERS" "${LOCAL_SCHEMA_REGISTRY_URL#http://}" "$STACK_HOST:$POSTGRES_PORT"; do
        port_open "${host_port%%:*}" "${host_port##*:}" || die "$host_port is not reachable: run ./taskw stack:up first"
    done
    local home
    home="$(flink_home)"
    flink_env
    if ! is_running flink-jobmanager; then
        local port
        for port in "$REST_PORT" "$RPC_PORT"; do
            ! port_open "$STACK_HOST" "$port" || die "port $port is in use by another process: set LOCAL_FLINK_REST_PORT / LOCAL_FLINK_RPC_PORT"
        done
        write_config "$home"
        start_bg flink-jobmanager -- env FLINK_LIB_DIR="$LIB_DIR" "$home/bin/jobmanager.sh" start-foreground
    fi
    wait_for_port "$STACK_HOST" "$REST_PORT" 90 flink-jobmanager
    if ! is_running flink-taskmanager; then
        start_bg flink-taskmanager -- env FLINK_LIB_DIR="$LIB_DIR" "$home/bin/taskmanager.sh" start-foreground
    fi
    wait_for_slots
    # Submissions run side by side: each is a Flink client JVM plus the job's Python planning,
    # tens of seconds of mostly single-threaded work, so one after another would take minutes.
    local name pids=() failed=0
    for name in "${JOB_NAMES[@]}"; do
        if [[ -n "$(active_job "$name")" ]]; then
            log "$name is running"
        else
            submit "$name" "$home" &
            pids+=("$!")
        fi
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=1
    done
    ((failed == 0)) || die "a job submission failed (logs: $LOG_DIR/flink-submit-*.log)"
    local deadline=$((SECONDS + 120)) pending
    while true; do
        pending=()
        for name in "${JOB_NAMES[@]}"; do
            job_states | awk -v name="$name" '$1 == name && $2 == "RUNNING" { found = 1 } END { exit !found }' \
                || pending+=("$name")
        done
        [[ ${#pending[@]} -eq 0 ]] && break
        ((SECONDS < deadline)) || { cmd_status; die "not running after 120 s: ${pending[*]}"; }
        sleep 1
    done
    log "Flink session cluster at $REST_URL runs ${#JOB_NAMES[@]} jobs"
    cmd_status
}

cmd_status() {
    local name
    printf '%-20s %-9s %s\n' PROCESS STATE PID
    for name in flink-jobmanager flink-taskmanager; do
        if is_running "$name"; then
            printf '%-20s %-9s %s\n' "$name" running "$(pid_of "$name")"
        else
            printf '%-20s %-9s %s\n' "$name" stopped -
        fi
    done
    if ! is_running flink-jobmanager || ! rest /overview >/dev/null 2>&1; then
        return 0
    fi
    printf '\n%-24s %-10s %s\n' JOB STATE ID
    job_states | awk '!seen[$1]++ { printf "%-24s %-10s %s\n", $1, $2, $3 }'
}

# stop_job NAME ID : stop-with-savepoint; the savepoint's path is kept for the next `up`
stop_job() {
    local name="$1" id="$2" home="$3" output savepoint
    log "stopping $name ($id) with a savepoint"
    if output="$("$home/bin/flink" stop --jobmanager "$STACK_HOST:$REST_PORT" --type canonical \
        --savepointPath "file://$SAVEPOINTS" "$id" 2>&1)"; then
        savepoint="$(sed -n 's/^Savepoint completed\. Path: //p' <<<"$output" | tail -n 1)"
        [[ -z "$savepoint" ]] || printf '%s\n' "$savepoint" >"$SAVEPOINTS/$name.path"
    else
        printf '%s\n' "$output" >>"$(log_file flink-jobmanager)"
        log "$name: no savepoint (see $(log_file flink-jobmanager)), cancelling it"
        "$home/bin/flink" cancel --jobmanager "$STACK_HOST:$REST_PORT" "$id" >/dev/null 2>&1 || true
    fi
}

# prune_savepoints : removes the savepoints no job will resume from (all jobs are stopped, so
# only those named by a .path file are still needed)
prune_savepoints() {
    local dir keep
    keep="$(cat "$SAVEPOINTS"/*.path 2>/dev/null || true)"
    for dir in "$SAVEPOINTS"/savepoint-*; do
        [[ -d "$dir" ]] || continue
        grep -qxF "file:$dir" <<<"$keep" || rm -rf "$dir"
    done
}

cmd_down() {
    if is_running flink-jobmanager && rest /overview >/dev/null 2>&1; then
        local home name id
        home="$(flink_home)"
        flink_env
        for name in "${JOB_NAMES[@]}"; do
            id="$(active_job "$name")"
            [[ -z "$id" ]] || stop_job "$name" "$id" "$home"
        done
        prune_savepoints
    fi
    stop_bg flink-taskmanager
    stop_bg flink-jobmanager
}

case "${1:-}" in
up) cmd_up ;;
status) cmd_status ;;
down) cmd_down ;;
*)
    echo "usage: $0 up|status|down" >&2
    exit 2
    ;;
esac
