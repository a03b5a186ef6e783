#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a while (reliability.md S9).
#
#   scripts/fuzz.sh            # every target for 20 s (what scripts/test.sh and CI run)
#   scripts/fuzz.sh 1800       # every target for 30 minutes (the figures in RELIABILITY.md)
#   scripts/fuzz.sh 60 envelope callback   # some targets
#   FUZZ_JOBS=1 scripts/fuzz.sh 1800       # one target at a time (default: one per CPU)
#
# It installs cargo-fuzz when missing. New inputs go to fuzz/corpus/<target> (not committed; it
# grows across runs on one machine); fuzz/seeds/<target> holds the committed starting inputs. A
# crash, panic, timeout or OOM leaves its input in fuzz/artifacts/<target> and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[fuzz.sh]\033[0m %s\n' "$*" >&2; }

seconds=${1:-20}
shift || true
all_targets=(callback cookie_header oauth_v2_access signature incoming_body envelope sqlite_rows)
targets=("$@")
if [ "$#" -eq 0 ]; then targets=("${all_targets[@]}"); fi

if ! rustup toolchain list | grep -q '^nightly'; then
  if [ "${CI:-}" = "true" ]; then
    log "FAILED: cargo fuzz needs the nightly toolchain (rustup toolchain install nightly)"
    exit 1
  fi
  log "SKIPPED: every fuzz target (no nightly toolchain; rustup toolchain install nightly)"
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

log "building the fuzz targets (nightly, address sanitizer)"
(cd fuzz && cargo +nightly fuzz build)

# One target: its log in fuzz/target/<target>.log, its verdict in fuzz/target/<target>.verdict.
fuzz_one() {
  local target=$1 output="fuzz/target/$1.log" seeds=() extra=()
  mkdir -p "fuzz/corpus/$target"
  if [ -d "fuzz/seeds/$target" ]; then seeds=("seeds/$target"); fi
  # Slack bodies reach 1 MiB before the client refuses them; let this target grow inputs large.
  if [ "$target" = oauth_v2_access ]; then extra=(-max_len=131072); fi
  if (cd fuzz && cargo +nightly fuzz run "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${extra[@]}") >"$output" 2>&1; then
    echo passed >"fuzz/target/$target.verdict"
  else
    echo failed >"fuzz/target/$target.verdict"
  fi
}

# As many targets at once as there are CPUs (each libFuzzer process uses one).
jobs=${FUZZ_JOBS:-$(nproc)}
running=0
for target in "${targets[@]}"; do
  rm -f "fuzz/target/$target.verdict"
  log "fuzzing $target for ${seconds}s"
  fuzz_one "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

passed=0
failed=0
for target in "${targets[@]}"; do
  output="fuzz/target/$target.log"
  if [ "$(cat "fuzz/target/$target.verdict" 2>/dev/null)" = passed ]; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$output" | grep -o '[0-9]*$' || echo "?")
    log "$target: passed, $runs inputs, 0 crashes"
    passed=$((passed + 1))
  else
    log "$target: FAILED (input saved in fuzz/artifacts/$target); the end of its log:"
    tail -n 40 "$output" >&2
    failed=$((failed + 1))
  fi
done
log "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
