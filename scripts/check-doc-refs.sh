#!/usr/bin/env bash
# Checks that every W number (W1, W41, ...) and section number (§3.1.1, RFC 9700 §4.7, ...)
# cited in the crates' sources has a heading in docs/*.md:
#
#   W<n>                 needs a heading "W<n>. <title>"     (docs/differences.md)
#   §<n.n>               needs a heading "§<n.n> <title>"    (docs/reference-sections.md)
#   RFC <nnnn> §<n.n>    needs a heading "RFC <nnnn> §<n.n> <title>" (same file)
#
# Prints every undefined reference with the places that cite it and exits 1; exits 0 when all
# resolve.
#
#   scripts/check-doc-refs.sh             # checks crates/*/src
#   scripts/check-doc-refs.sh crates/*/tests   # or any other files and folders
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

if [ "$#" -gt 0 ]; then
  paths=("$@")
else
  paths=(crates/*/src)
fi

headings=$(cat docs/*.md 2>/dev/null | grep -E '^#{1,6} ' || true)

# Whether `ref` has a heading.
defined() {
  local ref=$1 pattern
  case $ref in
    W*) pattern="^#{1,6} ${ref}\. " ;;
    *) pattern="^#{1,6} ${ref//./\\.}( |\$)" ;;
  esac
  grep -qE "$pattern" <<<"$headings"
}

declare -A seen=()
declare -A cited_at=()
order=()
while IFS=: read -r file line ref; do
  if [ -z "${seen[$ref]+x}" ]; then
    seen[$ref]=1
    order+=("$ref")
  fi
  cited_at[$ref]+=" $file:$line"
done < <(grep -rnoE '\bW[0-9]{1,2}\b|(RFC [0-9]+ )?§[0-9.]+[0-9]' "${paths[@]}" || true)

undefined=0
for ref in "${order[@]}"; do
  if ! defined "$ref"; then
    undefined=$((undefined + 1))
    echo "undefined: $ref (cited at${cited_at[$ref]})"
  fi
done

if [ "$undefined" -gt 0 ]; then
  echo "$undefined undefined reference(s) of ${#order[@]}; add a heading for each in docs/" >&2
  exit 1
fi
echo "ok: ${#order[@]} distinct references in ${paths[*]}, each has a heading in docs/"
