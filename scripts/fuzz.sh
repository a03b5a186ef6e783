#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a while (reliability.md S9).
#
#   scripts/fuzz.sh            # every target for 20 s (what scripts/test.sh and CI run)
#   scripts/fuzz.sh 1800       # every target for 30 minutes (the figures in RELIABILITY.md)
#   scripts/fuzz.sh 60 envelope callback   # some targets
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

passed=0
failed=0
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  seeds=()
  if [ -d "fuzz/seeds/$target" ]; then seeds=("seeds/$target"); fi
  extra=()
  # Slack bodies reach 1 MiB before the client refuses them; let this target grow inputs large.
  if [ "$target" = oauth_v2_access ]; then extra=(-max_len=131072); fi
  output="fuzz/target/$target.log"
  log "fuzzing $target for ${seconds}s"
  if (cd fuzz && cargo +nightly fuzz run "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${extra[@]}") >"$output" 2>&1; then
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
