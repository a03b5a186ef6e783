#!/usr/bin/env bash
# S11, test strength: cargo-mutants over the modules whose mistakes would lose or leak a token
# (rotation, state, signature, encryption; see .cargo/mutants.toml). Not part of CI: a full run
# takes hours on two cores. Results land in mutants.out/ (caught.txt, missed.txt, ...).
#
#   scripts/mutants.sh                 # every mutant
#   scripts/mutants.sh --shard 0/4     # a quarter of them (shards 0/4 .. 3/4 together: all)
#   scripts/mutants.sh --iterate       # only those not caught by the previous run
#
# Each mutant runs the library's tests that exercise these modules: its unit tests, the
# integration tests of rotation, authorize, the flow, the API and the properties, and the
# stores' conformance cases on memory, SQLite and (with TEST_DATABASE_URL) PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null 2>&1 || cargo install cargo-mutants --locked
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://root@127.0.0.1:5432/slack_oauth_ci}
# The long reliability trials (R-numbered, SIGKILL loops, child workers) check timing and
# crash behaviour that the unit and conformance tests already pin; leaving them out keeps a
# mutant under a minute.
filter='not (test(/::r[0-9]+_/) | test(killed) | test(worker) | test(loss_window) | test(reencrypting) | test(interop))'
exec cargo mutants -p slack-oauth --all-features --test-package slack-oauth \
  --minimum-test-timeout 60 "$@" -- -E "$filter"
