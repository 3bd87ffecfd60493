#!/usr/bin/env bash
# Helpers of the Docker-based tasks (images:*, compose:*, clickhouse:apply). Source it; do not
# run it. After sourcing, the current directory is the repository root.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/docker.sh"

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# require_docker WHAT : exits 1 with a clear message unless a Docker daemon answers.
require_docker() {
    local what="$1"
    if ! command -v docker >/dev/null 2>&1; then
        printf '%s needs Docker, and there is no docker command on this machine.\n' "$what" >&2
    elif ! docker info >/dev/null 2>&1; then
        printf '%s needs a running Docker daemon, and "docker info" failed (is the daemon running, may this user use it?).\n' "$what" >&2
    else
        return 0
    fi
    printf 'The Docker-free local stack is ./taskw up; the offline deployment checks are ./taskw ops:lint.\n' >&2
    exit 1
}
