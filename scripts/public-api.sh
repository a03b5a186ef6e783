#!/usr/bin/env bash
# The library's public API as `cargo public-api` lists it (from rustdoc JSON, on the nightly
# toolchain), checked against the snapshot crates/slack-oauth/public-api.txt: every API change
# shows up in review as a diff of that file. Blanket impls (`impl<T> From<T> for T`, ...) are
# left out; auto traits (Send, Sync, ...) stay, since losing one breaks users.
#
#   scripts/public-api.sh            # check (run by .ci/run)
#   scripts/public-api.sh --update   # rewrite the snapshot after an intended change
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-public-api >/dev/null 2>&1 || cargo install cargo-public-api --version 0.52.0 --locked
snapshot=crates/slack-oauth/public-api.txt
current=$(cargo public-api -p slack-oauth --all-features --omit blanket-impls)
if [ "${1:-}" = --update ]; then
  printf '%s\n' "$current" >"$snapshot"
  echo "wrote $snapshot"
  exit 0
fi
if ! diff -u "$snapshot" <(printf '%s\n' "$current"); then
  echo "the public API of slack-oauth changed (diff above): if intended, run" \
    "scripts/public-api.sh --update and commit $snapshot" >&2
  exit 1
fi
echo "public API unchanged ($(wc -l <"$snapshot") items)"
