#!/usr/bin/env bash
# Installs the local-stack tools that are not part of this workspace: the tansu broker and the
# rivven-schema registry, with `cargo install`. Idempotent and quick when both are present:
# it reads `cargo install --list` and installs only what is missing or at another version.
# (The Python tooling in .venv is installed by ./taskw, not here.)
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v cargo >/dev/null || die "cargo is not on PATH; install Rust (rustup) first"

installed="$(cargo install --list)"

# ensure CRATE VERSION [EXTRA cargo install ARGS...]
ensure() {
    local crate="$1" version="$2"
    shift 2
    if grep -qxF "$crate v$version:" <<<"$installed"; then
        log "$crate $version is installed"
        return 0
    fi
    log "installing $crate $version (this compiles it and can take several minutes)"
    cargo install "$crate" --version "$version" --locked "$@"
}

ensure tansu 0.6.0 --features dynostore,libsql
ensure rivven-schema 0.0.22
