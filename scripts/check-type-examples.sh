#!/usr/bin/env bash
# Every public type of the library (struct, enum, trait, type alias) has a rustdoc example.
# rustdoc's lint for this is unstable, so this runs it on the nightly toolchain and keeps the
# warnings that point at a type (functions are not required to have one).
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
touch crates/slack-oauth/src/lib.rs # rustdoc prints lints only when it runs
cargo +nightly rustdoc -q -p slack-oauth --all-features -- -Z unstable-options \
  -Zcrate-attr="feature(rustdoc_missing_doc_code_examples)" \
  -W rustdoc::missing_doc_code_examples >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
python3 - "$log" <<'PY'
import re, sys
log = open(sys.argv[1]).read()
missing = []
for path, line in re.findall(r"missing code example in this documentation\n\s+--> ([^:]+):(\d+):\d+", log):
    lines = open(path).read().split("\n")
    i = int(line) - 1
    # The item follows its doc comment and attributes.
    while i < len(lines) and (lines[i].strip().startswith(("///", "#[", "//!")) or not lines[i].strip()):
        i += 1
    if i < len(lines) and re.match(r"pub(\(crate\))?\s+(struct|enum|trait|type|union)\b", lines[i].strip()):
        missing.append(f"{path}:{i + 1}: {lines[i].strip()}")
if missing:
    print("public types without a rustdoc example:", *missing, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("every public type has a rustdoc example")
PY
