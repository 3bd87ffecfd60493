# shellcheck shell=bash
# Sourced by the scripts that keep a Python virtualenv of their own (.venv via ./taskw,
# .venv-ops, .venv-flink), so the create-or-reuse logic exists once.
#
#   ensure_venv DIR REQUIREMENTS_FILE [PIP ARGS...]
#
# Creates DIR with ${PYTHON:-python3} when it is missing, or when it points at an interpreter that
# no longer exists (a venv restored from a cache), and installs REQUIREMENTS_FILE only when its
# sha256 differs from the one recorded in DIR/.requirements.sha256, so a warm run costs nothing.

ensure_venv() {
    local venv=$1 requirements=$2
    shift 2
    local python=${PYTHON:-python3}
    local stamp="$venv/.requirements.sha256" wanted have
    if [[ -e "$venv" ]] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        echo "venv: $venv is broken, recreating it" >&2
        rm -rf "$venv"
    fi
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "venv: creating $venv with $("$python" --version 2>&1)" >&2
        "$python" -m venv "$venv"
    fi
    wanted="$(sha256sum "$requirements" | cut -d ' ' -f 1)"
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [[ "$wanted" != "$have" ]]; then
        echo "venv: installing $requirements into $venv" >&2
        "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "$@" -r "$requirements"
        printf '%s\n' "$wanted" >"$stamp"
    fi
}
