#!/usr/bin/env bash
# Topics, their Iceberg settings and the Avro schemas of the platform. Idempotent: existing
# topics are kept (their settings re-applied), and registering an identical schema again
# returns its existing id. Run by the `redpanda-topics-init` container of docker-compose.yml
# (after redpanda-auth.sh and once the Schema Registry is up) and by the Helm chart's bootstrap
# Job, which mounts this file and the schemas (flattened: avro/a/b/c.avsc as a.b.c.avsc, which
# names the same topic) through ConfigMaps.
#
# Every avro/**/*.avsc is one topic: its path under avro/ with / replaced by . and without
# .avsc; its schema is registered under <topic>-value. Topics without a schema: the echo
# topic (Flink registers its own schema) and the consumers' dead-letter topics, which hold
# the original bytes of records that could not be processed.
#
# Environment:
#   AVRO_DIR            the avro/ directory                     (/avro)
#   RPK_BROKERS         Kafka listener                           (redpanda:29092)
#   REGISTRY_HOSTS      Schema Registry host:port                (schema-registry:8081)
#   SUPERUSER_PASSWORD  password of `superuser`                  (required)
#   TOPIC_PARTITIONS    partitions of a new topic                (1)
#   MESSAGE_TOPIC_PARTITIONS  partitions of public.user.message.events, the topic the
#                       message-consumer scales out on           (3)
#   TOPIC_REPLICAS      replication factor of a new topic        (1, the single compose broker)
#   ICEBERG_MODE        true: set redpanda.iceberg.mode on every topic; needs a cluster with
#                       iceberg_enabled (an enterprise feature)  (true)
#   REGISTRY_AUTH       true: the registry requires HTTP basic auth (Redpanda's built-in
#                       registry with SASL); requests carry the superuser's credentials (false)
#   REGISTRY_TLS        true: the registry is served over https   (false)
set -euo pipefail
shopt -s globstar nullglob

avro_dir="${AVRO_DIR:-/avro}"
brokers="${RPK_BROKERS:-redpanda:29092}"
registry="${REGISTRY_HOSTS:-schema-registry:8081}"
partitions="${TOPIC_PARTITIONS:-1}"
message_partitions="${MESSAGE_TOPIC_PARTITIONS:-3}"
replicas="${TOPIC_REPLICAS:-1}"
superuser_password="${SUPERUSER_PASSWORD:?SUPERUSER_PASSWORD is required (the password of superuser)}"
iceberg="${ICEBERG_MODE:-true}"
message_topic=public.user.message.events

# Subjects whose schemas may change in any way: Flink registers its own schema for the
# topics it writes (spec 1.3, plus the two Flink-written subjects the original missed).
compatibility_none=(
    internal.platform.unified.events
    public.media.upload.approved
    public.media.upload.rejected
    public.media.download.rejected
    public.media.upload.confirmed
    internal.media.upload.dead-letter
    internal.media.delete.dead-letter
    public.media.expired.events
    internal.media.upload.retry
)

log() { printf 'redpanda-topics: %s\n' "$*" >&2; }

krpk() {
    rpk "$@" -X "brokers=$brokers" -X user=superuser \
        -X "pass=$superuser_password" -X sasl.mechanism=SCRAM-SHA-256
}
registry_flags=(-X "registry.hosts=$registry")
if [[ "${REGISTRY_AUTH:-false}" == true ]]; then
    registry_flags+=(-X user=superuser -X "pass=$superuser_password")
fi
if [[ "${REGISTRY_TLS:-false}" == true ]]; then
    registry_flags+=(-X registry.tls.enabled=true)
fi
rrpk() { rpk "$@" "${registry_flags[@]}"; }

declare -A schema_of=()
for file in "$avro_dir"/**/*.avsc; do
    relative="${file#"$avro_dir"/}"
    topic="${relative%.avsc}"
    schema_of["${topic//\//.}"]="$file"
done
if [[ ${#schema_of[@]} -eq 0 ]]; then
    log "no .avsc files under $avro_dir"
    exit 1
fi

existing="$(krpk topic list 2>/dev/null | awk 'NR > 1 { print $1 }')"
ensure_topic() {
    local topic="$1" count="$2"
    if grep -qx "$topic" <<<"$existing"; then
        log "topic $topic exists"
    else
        krpk topic create "$topic" --partitions "$count" --replicas "$replicas" >/dev/null
        log "topic $topic created ($count partition(s))"
    fi
}

# Iceberg: Confluent-framed Avro topics are translated with their registered schema; the
# dead-letter topics hold raw (possibly malformed) bytes, so they are stored as key/value.
# iceberg_mode TOPIC SETTING: applies the topic's Iceberg setting unless ICEBERG_MODE is false.
iceberg_mode() {
    [[ "$iceberg" == true ]] || return 0
    krpk topic alter-config "$1" --set "$2" >/dev/null
}
for topic in "${!schema_of[@]}" internal.identity.login.echo; do
    count="$partitions"
    [[ "$topic" == "$message_topic" ]] && count="$message_partitions"
    ensure_topic "$topic" "$count"
    iceberg_mode "$topic" redpanda.iceberg.mode=value_schema_id_prefix
done
for topic in internal.user.message.dead-letter internal.media.consumer.dead-letter; do
    ensure_topic "$topic" "$partitions"
    iceberg_mode "$topic" redpanda.iceberg.mode=key_value
done

for topic in $(printf '%s\n' "${!schema_of[@]}" | sort); do
    rrpk registry schema create "$topic-value" --schema "${schema_of[$topic]}" --type avro >/dev/null
    log "schema $topic-value registered"
done
for topic in "${compatibility_none[@]}"; do
    rrpk registry compatibility-level set "$topic-value" --level NONE >/dev/null
done
log "compatibility NONE on ${#compatibility_none[@]} subject(s)"
