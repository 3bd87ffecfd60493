#!/usr/bin/env bash
# Installs what the local stack runs that is not part of this workspace. Idempotent and quick
# when everything is present:
#
#   PostgreSQL 15+ server   Debian's package when no server binaries are found (Debian family
#                           only; elsewhere it stops and says what to install)
#   Apache Kafka jars       resolved by Maven from scripts/stack/pom.xml (cached in ~/.m2) into
#                           .local/jars, again only when the pom changes
#   rivven-schema           the schema registry, `cargo install` (cached in ~/.cargo/bin)
#   cargo-deny              the dependency policy check of `./taskw test` (deny.toml), likewise
#   registry-auth           the same registry with HTTP Basic auth (scripts/stack/registry-auth,
#                           a project outside the workspace), in ~/.cargo/registry-auth/bin,
#                           rebuilt only when its Cargo.toml, Cargo.lock or src/ change
#
# The last two are compiled only where they are used, so a developer's first `./taskw up` waits
# for neither: cargo-deny by the tests (SETUP_TEST_TOOLS=1, which `./taskw test` sets),
# registry-auth by the tests and the production profile (PROFILE=production). Once installed,
# each is kept up to date by every run.
#
# cargo-nextest is not installed here: compiling it would add ~10 minutes to a cold machine, and
# the workspace's tests pass under plain `cargo test` too (rust:test uses nextest when present).
#
# (The Python tooling in .venv is installed by ./taskw, not here.)
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v cargo >/dev/null || die "cargo is not on PATH; install Rust (rustup) first"

# as_root COMMAND...: runs it as root (directly, or through sudo).
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    else
        command -v sudo >/dev/null || die "'$*' needs root"
        sudo "$@"
    fi
}

# apt_has PACKAGE: whether the distribution offers it (Debian has `chromium`, Ubuntu does not). A
# fresh machine may have no package lists yet, so they are fetched once before answering no.
apt_lists_fresh=0
apt_has() {
    command -v apt-get >/dev/null || return 1
    apt-cache show "$1" >/dev/null 2>&1 && return 0
    [[ $apt_lists_fresh -eq 1 ]] && return 1
    as_root apt-get update -qq
    apt_lists_fresh=1
    apt-cache show "$1" >/dev/null 2>&1
}

# apt_install WHY PACKAGE...: installs Debian packages (as root, or through sudo; `env` because
# sudo drops the caller's environment).
apt_install() {
    local why="$1"
    shift
    log "installing $* from Debian's packages ($why)"
    [[ $apt_lists_fresh -eq 1 ]] || as_root apt-get update -qq
    apt_lists_fresh=1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- PostgreSQL ---------------------------------------------------------------------------
if bindir="$(bash scripts/stack/postgres.sh bindir)"; then
    log "PostgreSQL server binaries: $bindir"
elif command -v apt-get >/dev/null; then
    apt_install "the stack's PostgreSQL 15+" postgresql postgresql-contrib
    # The package starts (and later boots) its own cluster on 5432; the stack runs its own on
    # another port, so that one is not needed but is left as the package set it up.
    bindir="$(bash scripts/stack/postgres.sh bindir)" || die "PostgreSQL was installed but no 15+ server binaries were found"
    log "PostgreSQL server binaries: $bindir"
else
    die "no PostgreSQL 15+ server found: install it with your package manager (e.g. 'brew install postgresql@16', 'dnf install postgresql-server') so that initdb and pg_ctl are on PATH"
fi

# --- Chromium (the browser tests drive the system's browser; none is ever downloaded) --------
if browser="$(bash scripts/frontend/frontend.sh browser-path)"; then
    log "browser for the browser tests: $browser"
elif apt_has chromium; then
    # Debian's package; Ubuntu has none by this name (its chromium-browser is a snap stub).
    apt_install "the browser tests" chromium
else
    log "no Chromium on PATH: the browser tests (./taskw test:browser) need one (CHROMIUM_PATH overrides)"
fi
# The page's icons are emoji; without a colour emoji font the README screenshot shows empty boxes.
if command -v dpkg >/dev/null && ! dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 \
    && apt_has fonts-noto-color-emoji; then
    apt_install "the page's emoji in the browser" fonts-noto-color-emoji
fi

# --- JVM components (Maven) ---------------------------------------------------------------
command -v mvn >/dev/null || die "mvn is not on PATH; install Maven (and Java 17+)"
pom=scripts/stack/pom.xml
stamp="$JARS_DIR/.pom.sha256"
wanted="$(sha256sum "$pom" | cut -d ' ' -f 1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" == "$wanted" ]]; then
    log "jars in $JARS_DIR match $pom"
else
    log "resolving $pom into $JARS_DIR (Maven Central, cached in ~/.m2)"
    rm -rf "$JARS_DIR"
    mkdir -p "$JARS_DIR"
    mvn -q -B -Dstyle.color=never -f "$pom" package -Djars.dir="$JARS_DIR" \
        >"$(log_file maven)" 2>&1 || {
        show_log_tail maven
        die "Maven could not resolve $pom (log: $(log_file maven))"
    }
    rm -rf scripts/stack/target
    printf '%s\n' "$wanted" >"$stamp"
fi

# --- cargo tools --------------------------------------------------------------------------
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

# Only the server, Avro and the command line: the platform's contracts are all Avro, and leaving
# out the JSON-Schema and Protobuf support shortens its compile on a cold machine (4.5 min on 2 cores).
ensure rivven-schema 0.0.22 --no-default-features --features server,avro,cli
# About 6 minutes to compile on a cold 2-core machine, once.
if [[ "${SETUP_TEST_TOOLS:-0}" == 1 ]] || grep -q '^cargo-deny v' <<<"$installed"; then
    ensure cargo-deny 0.20.2
else
    log "cargo-deny: only the tests use it (./taskw test installs it)"
fi

# ensure_path DIR ROOT: installs the crate of DIR (a project of its own, with its Cargo.lock)
# into ROOT/bin, built in a target directory of its own; again only when a hash of its
# Cargo.toml, Cargo.lock and src/ differs from the one recorded at the last install.
ensure_path() {
    local dir="$1" root="$2" name stamp wanted
    name="$(basename "$dir")"
    stamp="$root/.sources.sha256"
    wanted="$(cd "$dir" && find Cargo.toml Cargo.lock src -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum | sha256sum | cut -d ' ' -f 1)"
    if [[ -x "$root/bin/$name" && "$(cat "$stamp" 2>/dev/null || true)" == "$wanted" ]]; then
        log "$name is installed ($root/bin) and matches $dir"
        return 0
    fi
    log "installing $name from $dir into $root/bin (this compiles it and can take several minutes)"
    CARGO_TARGET_DIR="$HOME/.cargo/target-cache/$name" \
        cargo install --locked --force --path "$dir" --root "$root"
    printf '%s\n' "$wanted" >"$stamp"
}

# The registry with Basic auth on every endpoint (rivven-schema 0.0.22 as a library; about
# 5 minutes to compile on a cold 2-core machine). Started with --users-file; see its README.md.
if is_production || [[ "${SETUP_TEST_TOOLS:-0}" == 1 || -x "$HOME/.cargo/registry-auth/bin/registry-auth" ]]; then
    ensure_path scripts/stack/registry-auth "$HOME/.cargo/registry-auth"
else
    log "registry-auth: only the production profile and the tests use it (PROFILE=production ./taskw setup installs it)"
fi
