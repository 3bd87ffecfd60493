#!/usr/bin/env bash
# The local stack's own PostgreSQL cluster: initdb under .local/data/postgres, listening only on
# 127.0.0.1:$LOCAL_POSTGRES_PORT (local-stack.env; 54322, the Supabase CLI's port), trust
# authentication on loopback only, wal_level=logical (Realtime needs logical decoding). Nothing here
# touches a cluster the machine itself may run.
#
#   scripts/stack/postgres.sh start    initdb if needed, write the settings, start, wait until ready
#   scripts/stack/postgres.sh stop     fast shutdown (open sessions are rolled back)
#   scripts/stack/postgres.sh status   prints "running PID" or "stopped"; exit 0 either way
#   scripts/stack/postgres.sh bindir   prints the server binaries' directory (15 or newer)
#
# PostgreSQL refuses to run as root. Started by root (CI, containers), the cluster runs as the
# unprivileged "postgres" account (created when missing); if that account cannot reach the
# checkout (a clone under /root, say), the data lives in /var/tmp and .local/data/postgres is a
# symbolic link to it. scripts/stack/install.sh installs the server when no binaries are found.
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_MIN_VERSION=15
PG_DATA="$DATA_DIR/postgres"
PG_LOG="$(log_file postgres)"
# A cluster kept outside the checkout (see prepare_data_dir) is used through its real path.
if [[ -L "$PG_DATA" ]]; then
    PG_DATA="$(readlink -f "$PG_DATA")"
    PG_LOG="$(dirname "$PG_DATA")/server.log"
fi

# pg_bindir : the newest server installation of version >= 15, or nothing.
pg_bindir() {
    local dir version candidates=()
    # Debian/Ubuntu keep each major version apart; elsewhere initdb is usually on PATH.
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" ]] && candidates+=("$dir")
    done
    if command -v initdb >/dev/null; then
        candidates+=("$(dirname "$(readlink -f "$(command -v initdb)")")")
    fi
    for dir in $(printf '%s\n' "${candidates[@]}" | sort -u -V -r); do
        version="$("$dir/initdb" --version | awk '{print $NF}')"
        if [[ "${version%%.*}" =~ ^[0-9]+$ ]] && ((${version%%.*} >= PG_MIN_VERSION)); then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    return 1
}

# as_owner COMMAND... : runs COMMAND as the cluster's owner (ourselves unless we are root), from
# a working directory the owner can enter.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# prepare_data_dir : makes sure $PG_DATA is a directory the owner can use, then points PG_DATA
# and PG_LOG at paths the owner can reach (they differ from the checkout's when it cannot).
prepare_data_dir() {
    if [[ $EUID -ne 0 ]]; then
        mkdir -p "$PG_DATA"
        chmod 700 "$PG_DATA"
        return 0
    fi
    if ! id -u postgres >/dev/null 2>&1; then
        log "creating the unprivileged system account postgres (PostgreSQL refuses to run as root)"
        useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    fi
    if [[ ! -e "$PG_DATA" ]]; then
        if runuser -u postgres -- test -x "$DATA_DIR"; then
            mkdir -p "$PG_DATA"
        else
            # The account cannot traverse the path to the checkout: keep the cluster outside it.
            local outside
            outside="/var/tmp/event-substrate-$(printf '%s' "$REPO_ROOT" | sha256sum | cut -c1-12)/postgres"
            log "postgres cannot reach $DATA_DIR; keeping the cluster in $outside (linked from $PG_DATA)"
            mkdir -p "$outside"
            ln -sfn "$outside" "$PG_DATA"
        fi
    fi
    if [[ -L "$DATA_DIR/postgres" ]]; then
        PG_DATA="$(readlink -f "$PG_DATA")"
        # The server writes its log itself, so it goes beside the data, linked from the logs.
        PG_LOG="$(dirname "$PG_DATA")/server.log"
        ln -sfn "$PG_LOG" "$(log_file postgres)"
    fi
    chown -R postgres: "$PG_DATA"
    chmod 700 "$PG_DATA"
    touch "$PG_LOG"
    chown postgres: "$PG_LOG"
}

# write_settings : our settings, included by postgresql.conf and rewritten at every start so
# that a change here takes effect with the next restart.
write_settings() {
    as_owner tee "$PG_DATA/event-substrate.conf" >/dev/null <<SETTINGS
# Written by scripts/stack/postgres.sh at every start; edit that script, not this file.
listen_addresses = '$STACK_HOST'
port = $POSTGRES_PORT
# TCP only: socket paths under a deep checkout can exceed the 107-byte limit.
unix_socket_directories = ''
# Logical decoding for the Realtime stand-in (pgoutput, publication supabase_realtime).
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
# Tests run in parallel, each service and test with its own pool.
max_connections = 300
SETTINGS
    if is_production; then
        # the production profile: TLS with the stack's certificate (profile.sh ensure_tls),
        # copied into the data directory because the server reads its key as its owner
        install -m 600 -o "$(stat -c %U "$PG_DATA")" "$TLS_DIR/server.key" "$PG_DATA/server.key"
        install -m 644 -o "$(stat -c %U "$PG_DATA")" "$TLS_DIR/server.pem" "$PG_DATA/server.crt"
        as_owner tee -a "$PG_DATA/event-substrate.conf" >/dev/null <<SETTINGS
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
SETTINGS
    fi
}

# write_hba : who may connect, and how; only loopback TCP and the local socket are listed.
# Development: anyone, no password. Production: TCP over TLS only; the services' and Flink's
# roles with their passwords (set-passwords), the stack's own tools (migrations, the pg_net
# worker, local-supabase, the tests) as postgres.
write_hba() {
    if is_production; then
        as_owner tee "$PG_DATA/pg_hba.conf" >/dev/null <<'HBA'
# TYPE     DATABASE     USER      ADDRESS       METHOD
local      all          all                     trust
hostssl    all          postgres  127.0.0.1/32  trust
hostssl    replication  postgres  127.0.0.1/32  trust
hostssl    all          all       127.0.0.1/32  scram-sha-256
hostnossl  all          all       0.0.0.0/0     reject
HBA
    else
        as_owner tee "$PG_DATA/pg_hba.conf" >/dev/null <<'HBA'
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
host    all          all   127.0.0.1/32   trust
host    replication  all   127.0.0.1/32   trust
HBA
    fi
}

# set_passwords : the production profile's roles log in with their passwords (.local/secrets),
# through the script compose and a deployment use.
set_passwords() {
    DATABASE_URL="$POSTGRES_URL" \
        API_GATEWAY_DB_PASSWORD="$(pg_password api_gateway)" \
        MESSAGE_CONSUMER_DB_PASSWORD="$(pg_password message_consumer)" \
        MEDIA_SERVICE_DB_PASSWORD="$(pg_password media_service)" \
        FLINK_WRITER_DB_PASSWORD="$(pg_password flink_writer)" \
        bash scripts/infra/postgres-roles.sh >/dev/null || die "could not set the roles' passwords"
    log "postgres: login passwords set for ${PG_ROLES[*]} (files in $PG_PASSWORDS_DIR)"
}

init_cluster() {
    local bindir="$1"
    log "initdb: a new cluster in $PG_DATA (superuser postgres, trust on loopback only)"
    as_owner "$bindir/initdb" --pgdata="$PG_DATA" --username=postgres --encoding=UTF8 \
        --locale=C.UTF-8 --auth=trust >>"$PG_LOG" 2>&1 || {
        show_log_tail postgres
        die "initdb failed (log: $PG_LOG)"
    }
    write_hba
    printf "\ninclude_if_exists = 'event-substrate.conf'\n" | as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

ready() {
    pg_isready -q -h "$STACK_HOST" -p "$POSTGRES_PORT" -U postgres
}

# server_pid : the postmaster's pid if our cluster runs, else nothing.
server_pid() {
    local pid
    [[ -r "$PG_DATA/postmaster.pid" ]] || return 1
    pid="$(head -n 1 "$PG_DATA/postmaster.pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}

start() {
    local bindir
    bindir="$(pg_bindir)" || die "no PostgreSQL $PG_MIN_VERSION+ server binaries found; run scripts/stack/install.sh (./taskw setup)"
    if server_pid >/dev/null; then
        ready || sleep 1
        ready || die "our PostgreSQL (pid $(server_pid)) runs but does not answer on $STACK_HOST:$POSTGRES_PORT (log: $PG_LOG)"
        # the profile may have changed: its TLS settings and pg_hba.conf take effect on a reload
        write_settings
        write_hba
        as_owner "$bindir/pg_ctl" reload --pgdata="$PG_DATA" --silent
        log "postgres already running (pid $(server_pid)), $STACK_PROFILE settings reloaded"
        return 0
    fi
    if ready; then
        die "port $STACK_HOST:$POSTGRES_PORT is held by a PostgreSQL this stack did not start; stop it or change LOCAL_POSTGRES_PORT in local-stack.env"
    fi
    prepare_data_dir
    [[ -f "$PG_DATA/PG_VERSION" ]] || init_cluster "$bindir"
    write_settings
    write_hba
    log "starting postgres on $STACK_HOST:$POSTGRES_PORT ($bindir, data $PG_DATA)"
    as_owner "$bindir/pg_ctl" start --pgdata="$PG_DATA" --log="$PG_LOG" --wait --timeout=60 \
        --silent || {
        show_log_tail postgres
        die "postgres did not start (log: $PG_LOG)"
    }
    ready || die "postgres started but does not answer on $STACK_HOST:$POSTGRES_PORT"
}

stop() {
    local bindir
    if ! server_pid >/dev/null; then
        log "postgres is not running"
        return 0
    fi
    bindir="$(pg_bindir)" || die "no PostgreSQL server binaries found to stop the cluster with"
    log "stopping postgres (pid $(server_pid))"
    as_owner "$bindir/pg_ctl" stop --pgdata="$PG_DATA" --mode=fast --wait --timeout=60 --silent
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
    if pid="$(server_pid)"; then
        echo "running $pid"
    else
        echo stopped
    fi
    ;;
bindir) pg_bindir ;;
set-passwords) set_passwords ;;
*)
    echo "usage: $0 start|stop|status|bindir|set-passwords" >&2
    exit 2
    ;;
esac
