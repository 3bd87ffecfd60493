#!/usr/bin/env bash
# The browser frontend (frontend/, Vite) on the local stack, and the Node packages of its tests.
#
#   scripts/frontend/frontend.sh install|env|up|status|down   (./taskw frontend:install, ...)
#
# install  npm ci in frontend/, tests/browser/ and tests/supabase-js/, each only when its
#          package-lock.json changed since the last install (a copy is kept in node_modules)
# env      writes frontend/.env.local: local-supabase's URL and anon key (`local-supabase keys`),
#          the gateway and the object store, so the unchanged frontend talks to the local stack
# up       install + env, then the Vite dev server on LOCAL_FRONTEND_URL (a running one is left
#          alone); needs the stack (local-supabase) and the services for anything but the login page
# status   running/stopped
# down     stops the dev server
# test-unit        the frontend's ESLint (no warnings) and Vitest unit tests; no stack needed
# test-supabase-js the real supabase-js client against local-supabase (needs the stack)
# test-browser     Playwright driving the system's Chromium against the running platform and
#                  the dev server (needs ./taskw up); extra arguments go to `playwright test`
# browser-path     prints the browser the tests drive: CHROMIUM_PATH, else Debian's chromium,
#                  else Google Chrome (as GitHub's Ubuntu runners have it); exit 1 if none
set -euo pipefail
# shellcheck source=scripts/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../stack/lib.sh"

FRONTEND_PORT="${LOCAL_FRONTEND_URL##*:}"
NODE_PACKAGES=(frontend tests/browser tests/supabase-js)

npm_install() {
    local dir="$1"
    [[ -f "$dir/package-lock.json" ]] || return 0
    if cmp -s "$dir/package-lock.json" "$dir/node_modules/.installed-package-lock.json"; then
        return 0
    fi
    log "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$dir/node_modules/.installed-package-lock.json"
}

install() {
    command -v npm >/dev/null || die "npm is not installed (Node 20 + npm are needed for the frontend)"
    for dir in "${NODE_PACKAGES[@]}"; do
        npm_install "$REPO_ROOT/$dir"
    done
}

# key_of NAME: one field of local-supabase's keys (`local-supabase keys` prints them as JSON).
key_of() {
    "$TARGET_DIR/debug/local-supabase" keys \
        | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8"))[process.argv[1]])' "$1"
}

# Exports SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY for the Node suites.
export_keys() {
    [[ -x "$TARGET_DIR/debug/local-supabase" ]] \
        || die "local-supabase is not built; start the stack first (./taskw stack:up)"
    SUPABASE_URL="$LOCAL_SUPABASE_URL"
    SUPABASE_ANON_KEY="$(key_of anon_key)"
    SUPABASE_SERVICE_ROLE_KEY="$(key_of service_role_key)"
    DATABASE_URL="$POSTGRES_URL"
    # the production profile's Postgres takes TLS only (node-postgres reads the CA file named here)
    is_production && DATABASE_URL="$POSTGRES_URL?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem"
    LOCAL_SUPABASE_BIN="$TARGET_DIR/debug/local-supabase"
    export SUPABASE_URL SUPABASE_ANON_KEY SUPABASE_SERVICE_ROLE_KEY DATABASE_URL LOCAL_SUPABASE_BIN
}

write_env() {
    [[ -x "$TARGET_DIR/debug/local-supabase" ]] \
        || die "local-supabase is not built; start the stack first (./taskw stack:up)"
    local anon
    anon="$(key_of anon_key)"
    cat >"$REPO_ROOT/frontend/.env.local" <<ENV
# Written by scripts/frontend/frontend.sh env: the local stack's addresses (local-stack.env).
VITE_SUPABASE_URL=$LOCAL_SUPABASE_URL
VITE_SUPABASE_ANON_KEY=$anon
VITE_API_GATEWAY_URL=http://$STACK_HOST:8080
VITE_STORAGE_URL=http://$LOCAL_S3_ENDPOINT
ENV
}

# The system's Chromium-family browser. Ubuntu's `chromium-browser` is left out on purpose: it is a
# stub that installs a snap, which does not run headless under a test runner.
browser_path() {
    if [[ -n "${CHROMIUM_PATH:-}" ]]; then
        [[ -x "$CHROMIUM_PATH" ]] || die "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable"
        echo "$CHROMIUM_PATH"
        return 0
    fi
    command -v chromium || command -v google-chrome-stable || command -v google-chrome
}

case "${1:-}" in
install) install ;;
browser-path) browser_path ;;
env) write_env ;;
up)
    install
    write_env
    if is_running frontend && port_open "$STACK_HOST" "$FRONTEND_PORT"; then
        log "frontend already running (pid $(pid_of frontend))"
    else
        if port_open "$STACK_HOST" "$FRONTEND_PORT"; then
            die "port $STACK_HOST:$FRONTEND_PORT is in use by a process this stack did not start"
        fi
        start_bg frontend --cwd "$REPO_ROOT/frontend" -- \
            node_modules/.bin/vite --host "$STACK_HOST" --port "$FRONTEND_PORT" --strictPort
        wait_for_port "$STACK_HOST" "$FRONTEND_PORT" 60 frontend
    fi
    log "frontend: $LOCAL_FRONTEND_URL"
    ;;
status)
    if is_running frontend; then
        echo "frontend running (pid $(pid_of frontend)) $LOCAL_FRONTEND_URL"
    else
        echo "frontend stopped"
    fi
    ;;
down) stop_bg frontend ;;
test-unit)
    install
    (cd "$REPO_ROOT/frontend" && npm run --silent lint && npm test --silent)
    ;;
test-supabase-js)
    install
    export_keys
    port_open "$STACK_HOST" "$SUPABASE_PORT" || die "local-supabase is not running; start the stack (./taskw stack:up)"
    (cd "$REPO_ROOT/tests/supabase-js" && npm test --silent)
    ;;
test-browser)
    shift
    install
    export_keys
    port_open "$STACK_HOST" "$FRONTEND_PORT" || die "the frontend is not running; start the platform (./taskw up)"
    CHROMIUM_PATH="$(browser_path)" || die "no chromium on PATH (./taskw setup installs Debian's); set CHROMIUM_PATH"
    export CHROMIUM_PATH BASE_URL="$LOCAL_FRONTEND_URL"
    (cd "$REPO_ROOT/tests/browser" && node_modules/.bin/playwright test "$@")
    ;;
*)
    echo "usage: $0 install|env|up|status|down|test-unit|test-supabase-js|test-browser|browser-path" >&2
    exit 2
    ;;
esac
