#!/usr/bin/env bash
# Stops the services started by scripts/services/up.sh (SIGTERM, SIGKILL after 10 s).
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../stack/lib.sh"

for name in message-consumer media-service api-gateway; do
    stop_bg "$name"
done
