#!/usr/bin/env bash
# S11, test strength: cargo-mutants over the modules whose mistakes would lose or leak a token.
# Not part of CI: a full run takes over an hour on two cores (rotation alone about 55 minutes).
# Each module runs with the tests that exercise it, so that a mutant costs one incremental build
# and seconds of tests.
#
#   scripts/mutants.sh signature        # one module: signature, state, encryption, rotation
#   scripts/mutants.sh rotation --shard 0/4   # extra arguments go to cargo mutants
#   scripts/mutants.sh all              # the four, one after the other
#
# Results land in mutants.out/<module>/ (caught.txt, missed.txt, timeout.txt, unviable.txt);
# `--iterate` reruns only what a previous run of that module did not catch.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null 2>&1 || cargo install cargo-mutants --locked
# A database of its own: scripts/test.sh drops and recreates slack_oauth_ci, which would fail
# (and so falsely "catch") mutants tested meanwhile.
export TEST_DATABASE_URL=${MUTANTS_DATABASE_URL:-postgres://root@127.0.0.1:5432/slack_oauth_mutants}
psql "${TEST_DATABASE_URL%/*}/postgres" -qc "CREATE DATABASE ${TEST_DATABASE_URL##*/}" >/dev/null 2>&1 || true
# Property tests at 500 cases: a mutant that breaks a property fails within the first few.
export SLACK_OAUTH_PROPERTY_CASES=${SLACK_OAUTH_PROPERTY_CASES:-500}
# Each mutant is an incremental build and a link of the big test binary: without debug info,
# and with mold where it is installed (`apt-get install mold`), that takes about half as long.
export CARGO_PROFILE_DEV_DEBUG=0
if command -v mold >/dev/null 2>&1; then
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"
fi

module=${1:?"usage: scripts/mutants.sh signature|state|encryption|rotation|all [cargo mutants args]"}
shift
if [ "$module" = all ]; then
  for each in signature state encryption rotation; do "$0" "$each" "$@"; done
  exit 0
fi

# The long reliability trials (R-numbered, SIGKILL loops, child workers) pin timing and crash
# behaviour that the unit and conformance tests already cover for these modules.
slow='test(/::r[0-9]+_/) | test(killed) | test(worker) | test(loss_window) | test(interop) | test(python)'
# The 400,000-installation simulation drives the store's budget and leases, not this crate's
# rotation code, and takes 25 s of every mutant's test run.
slow="$slow | test(scale::)"
case "$module" in
  signature)
    files=(-f 'crates/slack-oauth/src/signature/*.rs')
    tests='test(signature) | test(layer) | test(properties)'
    binaries=(--lib --test it) ;;
  state)
    files=(-f 'crates/slack-oauth/src/state/*.rs')
    tests='test(state) | test(cookie) | test(flow) | test(properties)'
    binaries=(--lib --test it) ;;
  encryption)
    files=(-f 'crates/slack-oauth/src/encryption.rs')
    tests='test(encrypt) | test(envelope) | test(keys) | test(properties)'
    binaries=(--lib --test it --test stores) ;;
  rotation)
    files=(-f 'crates/slack-oauth/src/rotation/*.rs')
    # The stores' own rotation and lease code is the conformance suite's (not mutated here).
    tests='test(rotat) | test(authoriz) | test(refresh) | test(lease) | test(reinstall) | test(custody)'
    binaries=(--lib --test it) ;;
  *) echo "unknown module $module" >&2; exit 2 ;;
esac
mkdir -p mutants.out
# flight/shuttle_*.rs is the model checker's lock and tests, compiled only with `--cfg shuttle`:
# its mutants could never be caught by this build.
exec cargo mutants -p slack-oauth --all-features --test-package slack-oauth "${files[@]}" \
  -e '**/tests.rs' -e '**/flight/shuttle_*.rs' --gitignore true --output "mutants.out/$module" --minimum-test-timeout 60 "$@" -- \
  "${binaries[@]}" -E "($tests) and not ($slow)"
