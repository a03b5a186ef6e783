#!/usr/bin/env bash
# Creates (once) the Python virtualenv that the interop tests share, makes sure the packages they
# need are installed, and prints the path of its python on stdout (everything else goes to stderr).
#
# usage: scripts/py-venv.sh [REQUIREMENT ...]
#   slack_sdk==3.43.0 is always installed; pass more pins (e.g. SQLAlchemy==2.0.36) as arguments.
#   Pin with NAME==VERSION: a requirement already installed at that version is not fetched again,
#   so a warm venv works offline.
# env:
#   PY_VENV  the venv directory (default: <workspace>/target/py-venv)
#   PYTHON   the interpreter that creates it (default: python3)
#
# Safe to run concurrently: a flock on "$PY_VENV.lock" serializes creation and installs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PY_VENV:-$root/target/py-venv}"
python="${PYTHON:-python3}"
requirements=("slack_sdk==3.43.0" "$@")

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

if ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2
fi

# Which requirements are not installed at the pinned version?
mapfile -t missing < <("$venv/bin/python" - "${requirements[@]}" <<'PY'
import sys
from importlib import metadata

for requirement in sys.argv[1:]:
    name, _, version = requirement.partition("==")
    try:
        installed = metadata.version(name.strip())
    except metadata.PackageNotFoundError:
        installed = None
    if installed is None or (version and installed != version.strip()):
        print(requirement)
PY
)

if [ "${#missing[@]}" -gt 0 ]; then
    echo "py-venv: installing ${missing[*]} into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}" >&2
fi

echo "$venv/bin/python"
