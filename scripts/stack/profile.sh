#!/usr/bin/env bash
# The local stack's two profiles. Sourced by lib.sh; do not run it.
#
#   development (default)  plaintext Kafka without users, an open registry, Postgres trusting
#                          loopback; the services connect as postgres. Fast to start and to debug.
#   production             PROFILE=production: the settings of charts/event-substrate's
#                          values-production.yaml, on loopback:
#                            Kafka: SASL_SSL only (SCRAM-SHA-256), one user per service and for
#                              Flink, the ACLs of scripts/infra/kafka-acls.txt (the chart's
#                              bootstrap Job grants the same file), no anonymous access
#                            registry: HTTP basic auth on every endpoint (registry-auth)
#                            Postgres: TLS only over TCP, one password role per service
#                            Flink: exactly-once Kafka sinks, read_committed sources
#
# The profile of a running stack is recorded in .local/run/profile, and tasks run without PROFILE
# use it; starting the other profile while parts of the stack still run is refused (./taskw down
# first), since the broker's listeners and the registry differ.
#
# Secrets of the production profile are made once per clone under .local/secrets (random
# passwords, one file per user, as the chart's Secrets mount them) and the certificates under
# .local/tls (a local CA, and one server certificate for 127.0.0.1 and localhost).

# Without PROFILE, the profile of the running stack (so `./taskw services:restart` or a second
# `./taskw up` keeps it), else development.
STACK_PROFILE="${PROFILE:-$( [[ -s "$RUN_DIR/profile" ]] && tr -d '[:space:]' <"$RUN_DIR/profile" || echo development)}"
case "$STACK_PROFILE" in
development | dev) STACK_PROFILE=development ;;
production | prod) STACK_PROFILE=production ;;
*)
    printf 'PROFILE must be development or production, not %s\n' "$STACK_PROFILE" >&2
    exit 2
    ;;
esac
TLS_DIR="$LOCAL_DIR/tls"
SECRETS_DIR="$LOCAL_DIR/secrets"
KAFKA_USERS_DIR="$SECRETS_DIR/kafka-users"
REGISTRY_USERS_FILE="$SECRETS_DIR/registry-users"
PG_PASSWORDS_DIR="$SECRETS_DIR/postgres"
KAFKA_ACLS_FILE="$REPO_ROOT/scripts/infra/kafka-acls.txt"
export STACK_PROFILE TLS_DIR SECRETS_DIR KAFKA_USERS_DIR REGISTRY_USERS_FILE PG_PASSWORDS_DIR \
    KAFKA_ACLS_FILE

# The Kafka users of scripts/infra/redpanda-auth.sh (the chart's bootstrap), and the registry's
# (roles of scripts/stack/registry-auth): schema-admin registers the contracts, the services only
# read, Flink also registers, on its sinks' subjects only (an avro-confluent sink registers its
# schema whenever it starts; a missing subject here fails that job with 403).
KAFKA_USERS=(superuser api-gateway message-consumer media-service flink-processor schema-admin
    clickhouse-consumer keda-scaler)
FLINK_SINK_SUBJECTS=internal.platform.unified.events-value,internal.identity.login.echo-value,public.media.upload.approved-value,public.media.upload.rejected-value,public.media.upload.confirmed-value,public.media.expired.events-value,internal.media.upload.retry-value,internal.media.upload.dead-letter-value
REGISTRY_USERS=(schema-admin:admin api-gateway:reader message-consumer:reader
    media-service:reader "flink-processor:writer=$FLINK_SINK_SUBJECTS")
# The services' Postgres roles (supabase/migrations) and Flink's.
PG_ROLES=(api_gateway message_consumer media_service flink_writer)

is_production() {
    [[ "$STACK_PROFILE" == production ]]
}

# secret_of FILE : the password stored in FILE.
secret_of() {
    tr -d '\n' <"$1"
}

# kafka_password USER / pg_password ROLE / registry_password USER
kafka_password() { secret_of "$KAFKA_USERS_DIR/$1"; }
pg_password() { secret_of "$PG_PASSWORDS_DIR/$1"; }
registry_password() {
    awk -F: -v user="$1" '$1 == user { print $2 }' "$REGISTRY_USERS_FILE"
}
REGISTRY_AUTH_BIN="${CARGO_HOME:-$HOME/.cargo}/registry-auth/bin/registry-auth"
export REGISTRY_AUTH_BIN

# new_password : 32 random characters from [A-Za-z0-9] (safe in URLs, JAAS and the users file).
new_password() {
    head -c 256 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 32
}

# ensure_secrets : the production profile's passwords, made once per clone.
ensure_secrets() {
    local name entry user
    mkdir -p "$KAFKA_USERS_DIR" "$PG_PASSWORDS_DIR"
    chmod 700 "$SECRETS_DIR"
    for name in "${KAFKA_USERS[@]}"; do
        [[ -s "$KAFKA_USERS_DIR/$name" ]] || (umask 077 && new_password >"$KAFKA_USERS_DIR/$name")
    done
    for name in "${PG_ROLES[@]}"; do
        [[ -s "$PG_PASSWORDS_DIR/$name" ]] || (umask 077 && new_password >"$PG_PASSWORDS_DIR/$name")
    done
    if [[ ! -s "$REGISTRY_USERS_FILE" ]]; then
        (
            umask 077
            for entry in "${REGISTRY_USERS[@]}"; do
                user="${entry%%:*}"
                # rivven refuses passwords without a digit, both cases and a special character
                printf '%s:%s_0aZ:%s\n' "$user" "$(new_password)" "${entry#*:}"
            done >"$REGISTRY_USERS_FILE"
        )
    fi
}

# ensure_tls : a local CA and a server certificate for 127.0.0.1/localhost, made once per clone
# (valid 825 days). Kafka, Postgres and their clients all use them; clients trust ca.pem only.
ensure_tls() {
    [[ -s "$TLS_DIR/server.pem" && -s "$TLS_DIR/server.key" && -s "$TLS_DIR/ca.pem" ]] && return 0
    command -v openssl >/dev/null || die "openssl is needed for the production profile's certificates"
    mkdir -p "$TLS_DIR"
    chmod 700 "$TLS_DIR"
    log "making a local CA and a server certificate in $TLS_DIR"
    (
        cd "$TLS_DIR"
        umask 077
        openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=event-substrate local CA" \
            -keyout ca.key -out ca.pem -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        # PKCS#8 key: what Kafka's PEM key store reads
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key \
            -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
            -extfile server.ext -out server.pem 2>/dev/null
        rm -f server.csr server.ext ca.srl
        # one file with the key and the chain: Kafka's ssl.keystore.location (type PEM)
        cat server.key server.pem ca.pem >server-keystore.pem
        chmod 644 ca.pem
    ) || die "could not make the certificates in $TLS_DIR"
}

# record_profile : remember which profile the running stack uses.
record_profile() {
    printf '%s\n' "$STACK_PROFILE" >"$RUN_DIR/profile"
}

# running_profile : the profile of the running stack ("" if none was recorded).
running_profile() {
    [[ -s "$RUN_DIR/profile" ]] && tr -d '[:space:]' <"$RUN_DIR/profile"
    return 0
}
