#!/usr/bin/env bash
# SCRAM users and ACLs of the Redpanda cluster: the one set of principals and grants of the
# platform. Idempotent: users that exist get their password reset to the configured one, and
# creating an ACL that exists already is a no-op. Run by the `redpanda-auth-init` container of
# docker-compose.yml (from the host: `docker compose run --rm redpanda-auth-init`) and by the
# Helm chart's bootstrap Job (charts/event-substrate/templates/bootstrap-job.yaml, which mounts
# this file through a ConfigMap).
#
# Environment (no password has a default here: docker-compose.yml passes its local-development
# values, the chart mounts its Secret; a missing password stops the script):
#   RPK_BROKERS   Kafka listener(s) that enforce SASL, comma-separated   (redpanda:29092)
#   RPK_ADMIN     admin API used to manage users                          (redpanda:9644)
#   RPK_ADMIN_AUTH  true: the admin API requires authentication (admin_api_require_auth, as
#                 the Redpanda Helm chart sets it with SASL); calls then carry the superuser's
#                 credentials                                              (false)
#   <NAME>_PASSWORD for every user below, e.g. API_GATEWAY_PASSWORD, SUPERUSER_PASSWORD
#   KAFKA_USERS_DIR  a directory with one file per user, named after the user and holding
#                 its password (a mounted Secret). When set, only the users with a file are
#                 managed (and only their ACLs created), the <NAME>_PASSWORD variables and
#                 their development defaults are ignored, and a missing superuser file is an
#                 error: a cluster outside the local stack never gets a development password.
#   MESSAGE_CONSUMER_GROUP   consumer group of the message-consumer (go-message-consumer, the Go service's)
#   MEDIA_SERVICE_GROUP      prefix of the media-service's consumer groups (media-service)
#   FLINK_TRANSACTIONAL_ID_PREFIX  transactional.id prefix of the Flink Kafka sinks (event-substrate)
set -euo pipefail

brokers="${RPK_BROKERS:-redpanda:29092}"
admin="${RPK_ADMIN:-redpanda:9644}"
mechanism=SCRAM-SHA-256
message_group="${MESSAGE_CONSUMER_GROUP:-go-message-consumer}"
media_group="${MEDIA_SERVICE_GROUP:-media-service}"
txn_prefix="${FLINK_TRANSACTIONAL_ID_PREFIX:-event-substrate}"

# user name -> password; the superuser is listed in the cluster's `superusers` property.
declare -A passwords=(
    [superuser]="${SUPERUSER_PASSWORD:-}"
    [api-gateway]="${API_GATEWAY_PASSWORD:-}"
    [message-consumer]="${MESSAGE_CONSUMER_PASSWORD:-}"
    [media-service]="${MEDIA_SERVICE_PASSWORD:-}"
    [flink-processor]="${FLINK_PROCESSOR_PASSWORD:-}"
    [schema-admin]="${SCHEMA_ADMIN_PASSWORD:-}"
    [clickhouse-consumer]="${CLICKHOUSE_CONSUMER_PASSWORD:-}"
    [keda-scaler]="${KEDA_SCALER_PASSWORD:-}"
)

log() { printf 'redpanda-auth: %s\n' "$*" >&2; }

if [[ -n "${KAFKA_USERS_DIR:-}" ]]; then
    known=("${!passwords[@]}")
    passwords=()
    for name in "${known[@]}"; do
        if [[ -f "$KAFKA_USERS_DIR/$name" ]]; then
            # $(<file) drops trailing newlines, which `kubectl create secret --from-file` keeps
            passwords[$name]="$(<"$KAFKA_USERS_DIR/$name")"
        fi
    done
    if [[ -z "${passwords[superuser]:-}" ]]; then
        log "no superuser password in $KAFKA_USERS_DIR (every later step authenticates as superuser)"
        exit 1
    fi
    log "users from $KAFKA_USERS_DIR: ${!passwords[*]}"
fi

for name in "${!passwords[@]}"; do
    if [[ -z "${passwords[$name]}" ]]; then
        log "no password for user $name (its <NAME>_PASSWORD variable, or a file in KAFKA_USERS_DIR)"
        exit 1
    fi
done

admin_auth=()
if [[ "${RPK_ADMIN_AUTH:-false}" == true ]]; then
    admin_auth=(-X user=superuser -X "pass=${passwords[superuser]}")
fi
admin_rpk() { rpk "$@" -X "admin.hosts=$admin" "${admin_auth[@]}"; }
super_rpk() {
    rpk "$@" -X "brokers=$brokers" -X user=superuser -X "pass=${passwords[superuser]}" \
        -X "sasl.mechanism=$mechanism"
}

# 1. Users (admin API). The superuser first: every later step authenticates as it.
existing="$(admin_rpk security user list 2>/dev/null | tail -n +2 || true)"
ensure_user() {
    local name="$1"
    if grep -qx "$name" <<<"$existing"; then
        admin_rpk security user update "$name" --new-password "${passwords[$name]}" \
            --mechanism "$mechanism" >/dev/null
        log "user $name exists, password reset"
    else
        admin_rpk security user create "$name" -p "${passwords[$name]}" \
            --mechanism "$mechanism" >/dev/null
        log "user $name created"
    fi
}
ensure_user superuser
for name in "${!passwords[@]}"; do
    [[ "$name" == superuser ]] || ensure_user "$name"
done

# 2. Wait until the new credentials are accepted by the Kafka listener.
for attempt in $(seq 1 15); do
    if super_rpk cluster info >/dev/null 2>&1; then
        break
    fi
    if [[ "$attempt" == 15 ]]; then
        log "superuser cannot authenticate at $brokers after 15 attempts"
        exit 1
    fi
    sleep 2
done

# 3. ACLs (allow only), one per line of kafka-acls.txt beside this script (KAFKA_ACLS_FILE):
# the same file scripts/stack/bootstrap.py grants on the local production profile's broker.
# Grants of users this run does not manage (KAFKA_USERS_DIR without their file) are skipped:
# a principal without a user would only be a dormant grant for whoever creates that name later.
acls_file="${KAFKA_ACLS_FILE:-$(dirname "${BASH_SOURCE[0]}")/kafka-acls.txt}"
[[ -r "$acls_file" ]] || {
    log "no ACL file at $acls_file"
    exit 1
}
# shellcheck disable=SC2016 # the placeholders are literal text of the ACL file
expand() {
    local value="$1"
    value="${value//'${MESSAGE_CONSUMER_GROUP}'/$message_group}"
    value="${value//'${MEDIA_SERVICE_GROUP}'/$media_group}"
    value="${value//'${FLINK_TRANSACTIONAL_ID_PREFIX}'/$txn_prefix}"
    printf '%s' "$value"
}
granted=0
while read -r principal operations kind name pattern rest; do
    [[ -z "$principal" || "$principal" == \#* ]] && continue
    if [[ -z "$pattern" || -n "$rest" ]]; then
        log "malformed line in $acls_file: $principal $operations $kind $name $pattern $rest"
        exit 1
    fi
    [[ -n "${passwords[$principal]+set}" ]] || continue
    case "$kind" in
    cluster) resource=(--cluster) ;;
    topic | group | transactional-id)
        resource=("--$kind" "$(expand "$name")" --resource-pattern-type "$pattern")
        ;;
    *)
        log "unknown resource type $kind in $acls_file"
        exit 1
        ;;
    esac
    super_rpk security acl create --allow-principal "User:$principal" \
        --operation "$operations" "${resource[@]}" >/dev/null
    granted=$((granted + 1))
done <"$acls_file"

log "$granted grants from $acls_file"
log "users and ACLs are in place"
