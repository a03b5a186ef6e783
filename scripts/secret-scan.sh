#!/usr/bin/env bash
# S7, secret hygiene over a whole test run: searches what the test processes captured (every
# log event at TRACE, every panic message, every error page the flow answered with, the stderr
# of every `slack-oauth` run; see slack_oauth_test::hygiene) for the suite's sentinel secrets
# and for anything token-shaped. Exits 1, naming file and line (never the secret), on any hit.
#
#   scripts/secret-scan.sh [DIR]     # default: target/secret-capture
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/secret-capture}

log() { printf '\033[1m[secret-scan]\033[0m %s\n' "$*" >&2; }

# Token prefixes (xoxb-, xoxp-, xoxe-, xoxe.xoxb-, ...); the S3NT1N3L marker every suite secret
# carries (slack_oauth_test::hygiene::SENTINEL); the suite's fixed signing secret, encryption
# keys and CLI secret, which predate the marker.
pattern='xox[a-z]{0,2}[-.]|S3NT1N3L|8f742231b10e8888abcd99yyyzzz85a5|AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8|Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA|s3cret-value'

# The pattern must find each kind of secret it is meant to find (a broken pattern finds nothing).
for canary in 'token=xoxb-1-2-abc' 'xoxe.xoxp-1-x' 'secret it-client-secret-S3NT1N3L-01' \
    'k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='; do
  if ! printf '%s\n' "$canary" | grep -qE "$pattern"; then
    log "FAILED: the scan pattern misses a known secret shape; fix the pattern"
    exit 1
  fi
done

if [ ! -d "$dir" ] || [ -z "$(ls -A "$dir")" ]; then
  log "FAILED: nothing was captured in $dir (is SLACK_OAUTH_CAPTURE_DIR set for the tests?)"
  exit 1
fi
files=$(find "$dir" -type f | wc -l)
lines=$(cat "$dir"/* | wc -l)
bytes=$(cat "$dir"/* | wc -c)
hits=$({ grep -rEc "$pattern" "$dir" || true; } | awk -F: '{ sum += $NF } END { print sum + 0 }')
if [ "$hits" -gt 0 ]; then
  log "FAILED: $hits captured lines hold a secret; the first ones, secrets masked:"
  grep -rEn "$pattern" "$dir" | head -n 20 | sed -E "s/($pattern)[^ \"',;&]*/***/g" | cut -c1-300 >&2
  exit 1
fi
log "RELIABILITY S7 whole suite: $files captures, $lines lines, $bytes bytes searched: 0 secrets"
