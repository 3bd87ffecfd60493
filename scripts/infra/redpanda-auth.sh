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

# 3. ACLs (allow only). acl PRINCIPAL OPERATIONS RESOURCE-FLAGS...
# Grants of users this run does not manage (KAFKA_USERS_DIR without their file) are skipped:
# a principal without a user would only be a dormant grant for whoever creates that name later.
acl() {
    local principal="$1" operations="$2"
    shift 2
    [[ -n "${passwords[$principal]+set}" ]] || return 0
    super_rpk security acl create --allow-principal "User:$principal" \
        --operation "$operations" "$@" >/dev/null
}
prefixed=(--resource-pattern-type prefixed)
literal=(--resource-pattern-type literal)

# api-gateway: produces events and intents (idempotent producer).
acl api-gateway write,describe --topic public. "${prefixed[@]}"
acl api-gateway write,describe --topic internal.media. "${prefixed[@]}"
acl api-gateway idempotent_write --cluster

# message-consumer: one topic, its group, and its dead-letter topic.
acl message-consumer read,describe --topic public.user.message.events "${literal[@]}"
acl message-consumer read,describe --group "$message_group" "${literal[@]}"
acl message-consumer write,describe --topic internal.user.message.dead-letter "${literal[@]}"
acl message-consumer idempotent_write --cluster

# media-service: consumes and produces the media saga topics, dead-letters to
# internal.media.consumer.dead-letter.
acl media-service read,write,describe --topic public.media. "${prefixed[@]}"
acl media-service read,write,describe --topic internal.media. "${prefixed[@]}"
# groups media-service and media-service-delete-retry
acl media-service read,describe --group "$media_group" "${prefixed[@]}"
acl media-service idempotent_write --cluster

# flink-processor: Flink SQL and PyFlink jobs; exactly-once sinks use transactions.
acl flink-processor read,write,describe --topic public. "${prefixed[@]}"
acl flink-processor read,write,describe --topic internal. "${prefixed[@]}"
acl flink-processor read,describe --group flink- "${prefixed[@]}"
acl flink-processor read,describe --group pyflink- "${prefixed[@]}"
acl flink-processor write,describe --transactional-id "$txn_prefix" "${prefixed[@]}"
acl flink-processor idempotent_write --cluster

# schema-admin: the Schema Registry's backing topic and group.
acl schema-admin read,write,create,describe,describe_configs,alter --topic _schemas "${literal[@]}"
acl schema-admin describe --topic '*' "${literal[@]}"
acl schema-admin read,describe --group schema-registry "${prefixed[@]}"

# clickhouse-consumer: the unified events topic only.
acl clickhouse-consumer read,describe --topic internal.platform.unified.events "${literal[@]}"
acl clickhouse-consumer read,describe --group clickhouse-consumer "${literal[@]}"

# keda-scaler: reads the message-consumer's lag (offsets and group description only).
acl keda-scaler describe --topic public.user.message.events "${literal[@]}"
acl keda-scaler describe --group "$message_group" "${literal[@]}"

log "users and ACLs are in place"
