#!/bin/sh
# Buckets, lifecycle and bucket notifications of MinIO. Idempotent. Run by the `minio-init`
# container (minio/mc image, POSIX sh) of docker-compose.yml.
#
# - buckets `media-uploads` (media) and `redpanda` (tiered storage / Iceberg), `flink-state`
#   (Flink checkpoints and savepoints);
# - NO anonymous access on media-uploads (the original made every object public, which made
#   presigned GETs and ownership checks moot): the policy is explicitly set to `none`;
# - lifecycle: objects under uploads/ (staging) expire after 1 day;
# - notifications: object-created events under uploads/ go to the MEDIASERVICE_UPLOADS webhook
#   target, under files/ to MEDIASERVICE_FILES. The targets themselves (endpoint and the
#   bearer token the media-service checks) are defined by the MINIO_NOTIFY_WEBHOOK_* variables
#   of the minio container.
# CORS for the browser uploads is MINIO_API_CORS_ALLOW_ORIGIN on the minio container.
#
# Environment: MINIO_URL (http://minio:9000), MINIO_ROOT_USER / MINIO_ROOT_PASSWORD,
# MEDIA_BUCKET (media-uploads).
set -eu

url="${MINIO_URL:-http://minio:9000}"
bucket="${MEDIA_BUCKET:-media-uploads}"

log() { printf 'minio-init: %s\n' "$*" >&2; }

attempt=0
until mc alias set local "$url" "${MINIO_ROOT_USER:-admin}" "${MINIO_ROOT_PASSWORD:-password}" >/dev/null 2>&1; do
    attempt=$((attempt + 1))
    if [ "$attempt" -ge 30 ]; then
        log "MinIO at $url did not answer"
        exit 1
    fi
    sleep 2
done

for name in "$bucket" redpanda flink-state; do
    mc mb --ignore-existing "local/$name" >/dev/null
done
log "buckets $bucket, redpanda, flink-state present"

mc anonymous set none "local/$bucket" >/dev/null
log "anonymous access on $bucket: none"

if mc ilm rule ls "local/$bucket" 2>/dev/null | grep -q 'uploads/'; then
    log "lifecycle rule for uploads/ exists"
else
    mc ilm rule add --prefix uploads/ --expire-days 1 "local/$bucket" >/dev/null
    log "lifecycle rule added: uploads/ expires after 1 day"
fi

# Replace the notification configuration as a whole, so re-runs never duplicate it.
mc event rm --force "local/$bucket" >/dev/null 2>&1 || true
mc event add "local/$bucket" arn:minio:sqs::MEDIASERVICE_UPLOADS:webhook --event put --prefix uploads/ >/dev/null
mc event add "local/$bucket" arn:minio:sqs::MEDIASERVICE_FILES:webhook --event put --prefix files/ >/dev/null
if [ "$(mc event ls "local/$bucket" | grep -c 'arn:minio:sqs::MEDIASERVICE_')" -ne 2 ]; then
    log "expected 2 bucket notifications on $bucket"
    mc event ls "local/$bucket" >&2
    exit 1
fi
log "notifications: uploads/ -> MEDIASERVICE_UPLOADS, files/ -> MEDIASERVICE_FILES"
