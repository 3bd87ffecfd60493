#!/usr/bin/env bash
# Builds one container image of the repository (./taskw images:build builds all of them).
#
#   bash scripts/ops/images.sh TARGET IMAGE
#
#   TARGET  api-gateway | message-consumer | media-service   the stage of docker/Dockerfile
#           pyflink                                         docker/Dockerfile.pyflink (Flink + the jobs)
#   IMAGE   the tag to give it, e.g. event-substrate-api-gateway:latest
#
# The build context is the repository root; BuildKit is required (the Dockerfiles use its
# syntax, and docker/Dockerfile.pyflink has its own .dockerignore). Needs a running Docker daemon.
set -euo pipefail
# shellcheck source=scripts/ops/docker.sh
source "$(dirname "${BASH_SOURCE[0]}")/docker.sh"

if [[ $# -ne 2 ]]; then
    printf 'usage: bash scripts/ops/images.sh TARGET IMAGE\n' >&2
    exit 2
fi
target="$1"
image="$2"

case "$target" in
api-gateway | message-consumer | media-service)
    args=(-f docker/Dockerfile --target "$target")
    ;;
pyflink)
    args=(-f docker/Dockerfile.pyflink)
    ;;
*)
    printf 'images: unknown target %s (api-gateway, message-consumer, media-service, pyflink)\n' "$target" >&2
    exit 2
    ;;
esac

require_docker "Building the image $image"
printf 'images: docker build %s -t %s .\n' "${args[*]}" "$image" >&2
DOCKER_BUILDKIT=1 docker build "${args[@]}" -t "$image" .
