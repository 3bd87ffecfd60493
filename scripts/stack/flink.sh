#!/usr/bin/env bash
# The local Flink session cluster that runs every stream processor against the local stack.
#
#   scripts/stack/flink.sh start|up|status|down  (or ./taskw flink:start, flink:up, flink:status, flink:down)
#
# start   starts the JobManager and the TaskManager only, no jobs (needs nothing of the stack)
# up      starts one JobManager and one TaskManager from the PyPI distribution of Flink (the
#         apache-flink wheel in .venv-flink ships Flink's jars under site-packages/pyflink),
#         then submits, from one client (scripts/stack/flink_launch.py), the jobs that are not
#         running yet: the SQL processors (flink_jobs/sql_runner.py with the six SQL files, one
#         job) and the PyFlink jobs credit check, TTL expiry, move saga and echo. It waits until
#         every task of all five runs.
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
# each profile resumes its own savepoints: they hold Kafka offsets of that profile's broker
if is_production; then FLINK_DATA="$DATA_DIR/flink-production"; else FLINK_DATA="$DATA_DIR/flink"; fi
SAVEPOINTS="$FLINK_DATA/savepoints"
CONNECTOR_JARS="$JARS_DIR/flink"
# the jobs' names on the cluster (pipeline.name); scripts/stack/flink_launch.py knows what each runs
JOB_NAMES=(sql-processors credit-check-processor ttl-expiry-processor move-saga-processor pyflink-echo-job)

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

# job_states : "name state jobid tasks" per job, newest first (RUNNING jobs before ended
# ones); tasks is "running/total", the job's tasks that process records
job_states() {
    rest /jobs/overview | "$FLINK_PY" -c '
import json, sys
jobs = json.load(sys.stdin)["jobs"]
active = ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING", "RECONCILING", "CANCELLING", "FAILING")
jobs.sort(key=lambda j: (j["state"] not in active, -j["start-time"]))
for job in jobs:
    tasks = job["tasks"]
    print(job["name"], job["state"], job["jid"], "%d/%d" % (tasks["running"], tasks["total"]))
'
}

# active_job NAME : the id of NAME's job that is running or about to, if any
active_job() {
    job_states 2>/dev/null | awk -v name="$1" '$1 == name && $2 ~ /^(RUNNING|CREATED|INITIALIZING|RESTARTING|RECONCILING)$/ { print $3; exit }'
}

write_config() {
    mkdir -p "$CONF_DIR" "$FLINK_DATA/checkpoints" "$SAVEPOINTS" "$FLINK_DATA/tmp"
    cp "$FLINK_HOME/conf/log4j-console.properties" "$FLINK_HOME/conf/log4j-cli.properties" "$CONF_DIR/"
    # The classpath of the cluster and its client: the wheel's lib/, flink-python from opt/
    # (which a Flink distribution leaves for the operator to add; the PyFlink jobs' operators
    # live in it) and the connector jars. Shipped with each job instead (pipeline.jars, as a
    # Kubernetes deployment of one job does), five jobs would upload 33 MB each and load and
    # compile the Kafka, Avro and JDBC classes five times over.
    rm -rf "$LIB_DIR"
    mkdir -p "$LIB_DIR"
    ln -s "$FLINK_HOME"/lib/*.jar "$FLINK_HOME"/opt/flink-python-*.jar "$CONNECTOR_JARS"/*.jar "$LIB_DIR/"
    cat >"$CONF_DIR/config.yaml" <<EOF
# Written by scripts/stack/flink.sh on every start; edit the script, not this file.
# (JVM options are the script's too: it starts the JVMs itself, see flink_java.)
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
# the TaskManager starts beside the JobManager: retry reaching it after 0.5 s, not Flink's 10 s
cluster.registration.error-delay: 500
# the client retries a submission while the JobManager is still starting (flink.sh submits early)
rest.retry.delay: 500
rest.retry.max-attempts: 180
parallelism.default: 1
io.tmp.dirs: $FLINK_DATA/tmp
python:
  executable: $FLINK_PY
  client.executable: $FLINK_PY
state.backend.type: hashmap
# Every PyFlink job ships flink-python (the CLI adds it), whose Beam runtime would otherwise be
# loaded child-first and compiled once per job; the copy on the cluster's classpath is the same jar.
classloader.parent-first-patterns.additional: org.apache.beam.
execution.checkpointing.savepoint-dir: file://$SAVEPOINTS
EOF
}

flink_env() {
    # the jobs' settings (flink_jobs/README.md, pyflink_jobs/README.md) for the local stack
    export REDPANDA_BROKERS="$LOCAL_KAFKA_BROKERS"
    export SCHEMA_REGISTRY_URL="$LOCAL_SCHEMA_REGISTRY_URL"
    export SUPABASE_DB_JDBC_URL="jdbc:postgresql://$STACK_HOST:$POSTGRES_PORT/$POSTGRES_DB"
    export SUPABASE_DB_HOST="$STACK_HOST" SUPABASE_DB_PORT="$POSTGRES_PORT" SUPABASE_DB_NAME="$POSTGRES_DB"
    # the jobs' least-privilege role (migration 20261201000100_flink_writer_role.sql), as in
    # the chart; the stack's server trusts local connections: the password is never checked
    export SUPABASE_DB_USER="flink_writer" SUPABASE_DB_PASSWORD="local"
    if is_production; then
        # the production profile (scripts/stack/profile.sh): SASL_SSL as flink-processor, the
        # registry with credentials, Postgres over verified TLS with flink_writer's password
        # (libpq's PGSSL* for the credit check's psycopg, URL options for the JDBC sink)
        export KAFKA_SECURITY_PROTOCOL=SASL_SSL KAFKA_SASL_MECHANISM=SCRAM-SHA-256 \
            KAFKA_SASL_USERNAME=flink-processor KAFKA_SSL_CA_FILE="$TLS_DIR/ca.pem"
        KAFKA_SASL_PASSWORD="$(kafka_password flink-processor)"
        SCHEMA_REGISTRY_PASSWORD="$(registry_password flink-processor)"
        SUPABASE_DB_PASSWORD="$(pg_password flink_writer)"
        export KAFKA_SASL_PASSWORD SCHEMA_REGISTRY_PASSWORD SUPABASE_DB_PASSWORD \
            SCHEMA_REGISTRY_USERNAME=flink-processor
        export SUPABASE_DB_JDBC_URL="$SUPABASE_DB_JDBC_URL?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem"
        export PGSSLMODE=verify-full PGSSLROOTCERT="$TLS_DIR/ca.pem"
        # values-production.yaml: exactly-once sinks, checkpoints every 30 s. The saga steps'
        # sinks stay at-least-once, as in the chart (values.yaml flink.jobs): their consumers
        # are idempotent per key, and a transaction would hold each step's output back until
        # the next checkpoint (docs/benchmarks.md, saga latency per profile).
        # (Each can be overridden from the environment, to measure the alternatives.)
        export KAFKA_SINK_DELIVERY_GUARANTEE="${KAFKA_SINK_DELIVERY_GUARANTEE:-exactly-once}"
        export FLINK_CHECKPOINT_INTERVAL_MS="${FLINK_CHECKPOINT_INTERVAL_MS:-30000}"
        export CREDIT_CHECK_PROCESSOR__KAFKA_SINK_DELIVERY_GUARANTEE="${CREDIT_CHECK_PROCESSOR__KAFKA_SINK_DELIVERY_GUARANTEE:-at-least-once}"
        export MOVE_SAGA_PROCESSOR__KAFKA_SINK_DELIVERY_GUARANTEE="${MOVE_SAGA_PROCESSOR__KAFKA_SINK_DELIVERY_GUARANTEE:-at-least-once}"
    fi
    # the connector jars are on the cluster's classpath (write_config): none to ship per job
    export FLINK_CONNECTOR_JARS_DIR=""
    export FLINK_LIB_DIR="$LIB_DIR"
    export FLINK_CHECKPOINT_DIR="file://$FLINK_DATA/checkpoints"
    export FLINK_CONF_DIR="$CONF_DIR" FLINK_LOG_DIR="$LOG_DIR" FLINK_PID_DIR="$RUN_DIR"
    # what bin/config.sh exports for Flink's processes (the client finds flink-python in opt/)
    FLINK_HOME="$(flink_home)"
    export FLINK_HOME FLINK_BIN_DIR="$FLINK_HOME/bin" FLINK_OPT_DIR="$FLINK_HOME/opt" \
        FLINK_PLUGINS_DIR="$FLINK_HOME/plugins"
    export PATH="$FLINK_VENV/bin:$PATH"
}

# Flink's JVMs are started here, not by bin/jobmanager.sh, taskmanager.sh and flink: those
# run up to four helper JVMs first (the Java version, the configuration, the memory sizes),
# seconds of CPU each on a two-core laptop before the real process starts.

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

# flink_classpath : the classpath Flink's scripts build, LIB_DIR's jars with flink-dist last
flink_classpath() {
    local jar jars=() dist=""
    for jar in "$LIB_DIR"/*.jar; do
        if [[ "$jar" == */flink-dist-*.jar ]]; then dist="$jar"; else jars+=("$jar"); fi
    done
    [[ -n "$dist" ]] || die "no flink-dist jar in $LIB_DIR"
    local IFS=:
    printf '%s\n' "${jars[*]}:$dist"
}

# resource_params JM|TM : the JVM memory options (line 1) and -D settings (line 2) Flink derives
# for a JobManager or TaskManager from config.yaml, computed by Flink's BashJavaUtils once per
# configuration (kept in CONF_DIR with the configuration's hash)
resource_params() {
    local role="$1" cache="$CONF_DIR/$1.params" hash output
    hash="$(sha256sum "$CONF_DIR/config.yaml")"
    hash="${hash%% *}"
    if [[ "$(head -n 1 "$cache" 2>/dev/null)" != "$hash" ]]; then
        output="$("$JAVA" -XX:TieredStopAtLevel=1 \
            -classpath "$FLINK_HOME/bin/bash-java-utils.jar:$(flink_classpath)" \
            org.apache.flink.runtime.util.bash.BashJavaUtils "GET_${role}_RESOURCE_PARAMS" \
            --configDir "$CONF_DIR" 2>&1)" || { printf '%s\n' "$output" >&2; die "Flink could not size the $role's memory"; }
        { echo "$hash"; sed -n 's/^BASH_JAVA_UTILS_EXEC_RESULT://p' <<<"$output"; } >"$cache.tmp"
        [[ "$(wc -l <"$cache.tmp")" -eq 3 ]] || { printf '%s\n' "$output" >&2; die "unexpected BashJavaUtils output for the $role"; }
        mv "$cache.tmp" "$cache"
    fi
    tail -n 2 "$cache"
}

# flink_java ROLE LOG4J_PROPERTIES JVM_OPTION... -- MAIN_CLASS ARG... : runs a Flink JVM (in the
# foreground) with the distribution's Java 17 options and the cluster's classpath.
# JIT: C1 only. A start (the client planning five jobs, the JobManager and TaskManager
# deploying them) is mostly compiling; C1 alone roughly halves that CPU on a two-core laptop,
# and a laptop's event rates never need C2's peak code.
flink_java() {
    local role="$1" log4j="$CONF_DIR/$2" options=() dist_options
    shift 2
    while [[ "$1" != "--" ]]; do
        options+=("$1")
        shift
    done
    shift
    # the --add-opens/--add-exports Flink needs on Java 17+, from the distribution's config
    dist_options="$(sed -n 's/^ *all: \(--add-.*\)$/\1/p' "$FLINK_HOME/conf/config.yaml")"
    [[ -n "$dist_options" ]] || die "no env.java.opts.all in $FLINK_HOME/conf/config.yaml"
    local command
    # shellcheck disable=SC2206 # a list of options
    command=("$JAVA" $dist_options -XX:TieredStopAtLevel=1 "${options[@]}"
        -Dlog.file="$LOG_DIR/flink-$role-main.log"
        -Dlog4j.configuration="file:$log4j" -Dlog4j.configurationFile="file:$log4j"
        -classpath "$(flink_classpath)" "$@")
    if [[ -n "${FLINK_JAVA_EXEC:-}" ]]; then
        exec "${command[@]}"
    fi
    "${command[@]}"
}

# flink_cli ARG... : Flink's command-line client (what bin/flink runs)
flink_cli() {
    flink_java client log4j-cli.properties -XX:+UseSerialGC -- org.apache.flink.client.cli.CliFrontend "$@"
}

# start_process NAME JM|TM MAIN_CLASS [JVM_OPTION...] : a JobManager or TaskManager in the background
start_process() {
    local name="$1" role="$2" class="$3" params
    shift 3
    params="$(resource_params "$role")"
    local -a memory dynamic
    read -r -a memory <<<"${params%%$'\n'*}"
    read -r -a dynamic <<<"${params#*$'\n'}"
    # start_bg runs a command: this script again, in the mode that execs the JVM
    start_bg "$name" -- "$0" exec-java "$name" "$@" "${memory[@]}" -- "$class" --configDir "$CONF_DIR" "${dynamic[@]}"
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

# submit NAME... : one Flink client submits the jobs (scripts/stack/flink_launch.py); a job
# stopped by `down` resumes from its savepoint, whose file is removed once it is submitted
submit() {
    local name savepoint_file savepoint jobs=() log
    for name in "$@"; do
        savepoint_file="$SAVEPOINTS/$name.path"
        savepoint=""
        if [[ -s "$savepoint_file" ]]; then
            savepoint="$(cat "$savepoint_file")"
            [[ -d "${savepoint#file:}" ]] || savepoint=""
        fi
        jobs+=("$name${savepoint:+=$savepoint}")
    done
    log="$(log_file flink-submit)"
    log "submitting $* (log: $log)"
    local output="$RUN_DIR/flink-submit.out" status=0
    flink_cli run --detached --jobmanager "$STACK_HOST:$REST_PORT" \
        -pyexec "$FLINK_PY" -pyclientexec "$FLINK_PY" \
        --python scripts/stack/flink_launch.py "${jobs[@]}" >"$output" 2>&1 || status=$?
    { printf '\n===== %s submitting %s\n' "$(date '+%F %T')" "${jobs[*]}"; cat "$output"; } >>"$log"
    for name in "$@"; do
        ! grep -qxF "submitted $name" "$output" || rm -f "$SAVEPOINTS/$name.path"
    done
    rm -f "$output"
    ((status == 0)) || { show_log_tail flink-submit 40; die "submitting $* failed (log: $log)"; }
}

# start_cluster : starts the JobManager and the TaskManager unless they run
start_cluster() {
    local port
    if ! is_running flink-jobmanager && ! is_running flink-taskmanager; then
        # blob caches, Python job artifacts and RPC jars of processes that are gone
        rm -rf "$FLINK_DATA/tmp"
    fi
    if ! is_running flink-jobmanager; then
        for port in "$REST_PORT" "$RPC_PORT"; do
            ! port_open "$STACK_HOST" "$port" || die "port $port is in use by another process: set LOCAL_FLINK_REST_PORT / LOCAL_FLINK_RPC_PORT"
        done
        write_config
        start_process flink-jobmanager JM org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint
    fi
    # the TaskManager retries registering until the JobManager answers
    if ! is_running flink-taskmanager; then
        start_process flink-taskmanager TM org.apache.flink.runtime.taskexecutor.TaskManagerRunner -XX:+UseG1GC
    fi
}

cmd_start() {
    bash scripts/processors/venv.sh
    flink_env
    start_cluster
}

cmd_up() {
    bash scripts/processors/venv.sh
    compgen -G "$CONNECTOR_JARS/*.jar" >/dev/null \
        || die "no connector jars in $CONNECTOR_JARS: run ./taskw stack:up first (it resolves scripts/stack/pom.xml)"
    local host_port
    for host_port in "$LOCAL_KAFKA_BROKERS" "${LOCAL_SCHEMA_REGISTRY_URL#http://}" "$STACK_HOST:$POSTGRES_PORT"; do
        port_open "${host_port%%:*}" "${host_port##*:}" || die "$host_port is not reachable: run ./taskw stack:up first"
    done
    local name missing=()
    flink_env
    if is_running flink-jobmanager && port_open "$STACK_HOST" "$REST_PORT"; then
        for name in "${JOB_NAMES[@]}"; do
            if [[ -n "$(active_job "$name")" ]]; then
                log "$name is running"
            else
                missing+=("$name")
            fi
        done
    else
        # a JobManager that is not running, or still starting (flink.sh start), has run no
        # job yet
        missing=("${JOB_NAMES[@]}")
    fi
    # The client plans the first job while the JobManager may still be starting and retries
    # its submission until the REST endpoint answers; the JobManager schedules the jobs once
    # the TaskManager's slots are there.
    start_cluster
    ((${#missing[@]} == 0)) || submit "${missing[@]}"
    wait_for_slots
    local deadline=$((SECONDS + 120)) pending
    while true; do
        pending=()
        for name in "${JOB_NAMES[@]}"; do
            # ready: the job and every one of its tasks run (a task still deploying or
            # starting its Python worker would hold the first records back for seconds)
            job_states | awk -v name="$name" '$1 == name && $2 == "RUNNING" { split($4, t, "/"); if (t[1] == t[2]) found = 1 } END { exit !found }' \
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
    printf '\n%-24s %-10s %-6s %s\n' JOB STATE TASKS ID
    job_states | awk '!seen[$1]++ { printf "%-24s %-10s %-6s %s\n", $1, $2, $4, $3 }'
}

# stop_job NAME ID : stop-with-savepoint; the savepoint's path is kept for the next `up`
stop_job() {
    local name="$1" id="$2" output savepoint
    log "stopping $name ($id) with a savepoint"
    if output="$(flink_cli stop --jobmanager "$STACK_HOST:$REST_PORT" --type canonical \
        --savepointPath "file://$SAVEPOINTS" "$id" 2>&1)"; then
        savepoint="$(sed -n 's/^Savepoint completed\. Path: //p' <<<"$output" | tail -n 1)"
        [[ -z "$savepoint" ]] || printf '%s\n' "$savepoint" >"$SAVEPOINTS/$name.path"
    else
        printf '%s\n' "$output" >>"$(log_file flink-jobmanager)"
        log "$name: no savepoint (see $(log_file flink-jobmanager)), cancelling it"
        flink_cli cancel --jobmanager "$STACK_HOST:$REST_PORT" "$id" >/dev/null 2>&1 || true
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
        local name id
        flink_env
        for name in "${JOB_NAMES[@]}"; do
            id="$(active_job "$name")"
            [[ -z "$id" ]] || stop_job "$name" "$id"
        done
        prune_savepoints
    fi
    stop_bg flink-taskmanager
    stop_bg flink-jobmanager
}

case "${1:-}" in
exec-java)
    # exec-java NAME JVM_OPTION... -- CLASS ARG... (start_process's background command)
    flink_env
    role="${2#flink-}"
    shift 2
    exec_options=()
    while [[ "$1" != "--" ]]; do
        exec_options+=("$1")
        shift
    done
    shift
    FLINK_JAVA_EXEC=1 flink_java "$role" log4j-console.properties "${exec_options[@]}" -- "$@"
    ;;
start) cmd_start ;;
up) cmd_up ;;
status) cmd_status ;;
down) cmd_down ;;
*)
    echo "usage: $0 start|up|status|down" >&2
    exit 2
    ;;
esac
