#!/usr/bin/env bash
# Docker Compose on docker-compose.yml (the production-like stack with Redpanda, MinIO,
# ClickHouse, the telemetry stack and the three services), for the compose:* tasks.
#
#   bash scripts/ops/compose.sh [--profile P]... config [ARGS...]
#                                   validate and print the resolved model; offline, no daemon
#                                   needed (Compose v2 CLI of .venv-ops)
#   bash scripts/ops/compose.sh [--profile P]... COMMAND [ARGS...]
#                                   up, down, ps, logs, exec, ...; needs a running Docker daemon
#                                   (`docker compose` when the plugin is installed, else the CLI
#                                   of .venv-ops)
# The three services are in the `services` profile (compose:up passes it; compose:infra does not).
set -euo pipefail
# shellcheck source=scripts/ops/docker.sh
source "$(dirname "${BASH_SOURCE[0]}")/docker.sh"

# global options before the command (only --profile is used by the tasks)
global=()
while [[ $# -gt 1 && "$1" == --profile ]]; do
    global+=("$1" "$2")
    shift 2
done

if [[ $# -eq 0 ]]; then
    printf 'usage: bash scripts/ops/compose.sh [--profile PROFILE]... COMMAND [ARGS...]\n' >&2
    exit 2
fi

if [[ "$1" == config ]]; then
    exec bash scripts/ops/venv.sh docker-compose -f docker-compose.yml "${global[@]}" "$@"
fi

require_docker "docker compose $1"
if docker compose version >/dev/null 2>&1; then
    exec docker compose -f docker-compose.yml "${global[@]}" "$@"
fi
exec bash scripts/ops/venv.sh docker-compose -f docker-compose.yml "${global[@]}" "$@"
