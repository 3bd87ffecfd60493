#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (libFuzzer) for a while each and prints what they did.
#
#   scripts/fuzz/run.sh [SECONDS] [TARGET...]     (./taskw fuzz -- 600 jwt_signed)
#
# SECONDS (default 60) is each target's budget; without TARGETs every target runs, one after
# the other (they would only share two cores). Needs the nightly toolchain (libFuzzer's
# coverage instrumentation) and cargo-fuzz, installed once into ~/.cargo/bin when missing. The
# build lives in ~/.cargo/target-cache/event-substrate-fuzz: its flags differ from the
# workspace's, so sharing a target directory would only rebuild both in turn.
#
# The corpus grows in .local/fuzz/corpus/TARGET (seeded from fuzz/seeds/TARGET); a failing input
# is saved in .local/fuzz/artifacts/TARGET and the run stops with status 1. Keep the input as a
# regression test next to the property it broke (see docs/reliability.md, "Fuzzing"). The
# summary line per target: executions, seconds, corpus size, and "ok" or the crash file.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^event-substrate-fuzz$')
fi

log() { printf 'fuzz: %s\n' "$*" >&2; }

rustup toolchain list | grep -q '^nightly' || {
    log "the nightly toolchain is missing (rustup toolchain install nightly)"
    exit 1
}
command -v cargo-fuzz >/dev/null || {
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
}

target_dir="${HOME}/.cargo/target-cache/event-substrate-fuzz"
flags=(--sanitizer none --debug-assertions --target-dir "$target_dir")
(cd fuzz && cargo +nightly fuzz build "${flags[@]}")

status=0
summary=()
for target in "${targets[@]}"; do
    corpus=".local/fuzz/corpus/$target"
    artifacts=".local/fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    if [[ -d "fuzz/seeds/$target" ]]; then
        cp -n fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    fi
    out=".local/fuzz/$target.log"
    log "$target for ${seconds}s (log: $out)"
    set +e
    (cd fuzz && cargo +nightly fuzz run "${flags[@]}" "$target" "../$corpus" -- \
        -max_total_time="$seconds" -artifact_prefix="../$artifacts/" -print_final_stats=1) \
        >"$out" 2>&1
    rc=$?
    set -e
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)"
    # the newest file libFuzzer left (artifact names are hashes: plain characters)
    crash="$(find "$artifacts" -type f -printf '%T@ %f\n' | sort -rn | head -1 | cut -d' ' -f2)"
    if [[ $rc -ne 0 ]]; then
        status=1
        verdict="FAILED ${crash:+$artifacts/$crash}"
    else
        verdict="ok"
    fi
    summary+=("$(printf '%-18s %12s runs %6ss %6s inputs  %s' "$target" "${runs:-?}" "$seconds" \
        "$(find "$corpus" -type f | wc -l)" "$verdict")")
done
printf '%s\n' "${summary[@]}"
exit $status
