# Python side of tests/stores/interop.rs: real slack_sdk stores on a SQLite file shared with Rust.
#
# usage: python interop.py COMMAND DATABASE [ARG]
#   save DATABASE FILE      save every installation of the JSON list in FILE, in order
#   find DATABASE FILE      run every lookup of the JSON list in FILE; print a JSON list of results
#   issue DATABASE          issue a state (600 s); print it
#   consume DATABASE STATE  print true if the state was accepted
# Installations are JSON objects with slack_sdk's field names (Installation.to_dict()).
import json
import sys

from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlite3 import SQLite3InstallationStore
from slack_sdk.oauth.state_store.sqlite3 import SQLite3OAuthStateStore

CLIENT_ID = "111.222"


def dump(obj):
    """An Installation or Bot as JSON, normalized the way the Rust model reads it."""
    if obj is None:
        return None
    data = dict(obj.__dict__)
    data.pop("custom_values", None)
    for key in ("bot_scopes", "user_scopes"):
        if key in data and isinstance(data[key], list):
            data[key] = ",".join(data[key])
    for key in ("enterprise_id", "team_id"):
        # The SQLite3 store reads back its own "none" value, '', as is.
        data[key] = data.get(key) or None
    data["is_enterprise_install"] = bool(data.get("is_enterprise_install"))
    return data


def main():
    command, database = sys.argv[1], sys.argv[2]
    if command == "save":
        store = SQLite3InstallationStore(database=database, client_id=CLIENT_ID)
        with open(sys.argv[3]) as f:
            for data in json.load(f):
                # slack_sdk writes scopes with ",".join, which fails on None (W5): pass "".
                data["bot_scopes"] = data.get("bot_scopes") or ""
                data["user_scopes"] = data.get("user_scopes") or ""
                store.save(Installation(**data))
    elif command == "find":
        store = SQLite3InstallationStore(database=database, client_id=CLIENT_ID)
        results = []
        with open(sys.argv[3]) as f:
            for lookup in json.load(f):
                args = dict(
                    enterprise_id=lookup["enterprise_id"],
                    team_id=lookup["team_id"],
                    is_enterprise_install=lookup["is_enterprise_install"],
                )
                if lookup["kind"] == "bot":
                    results.append(dump(store.find_bot(**args)))
                else:
                    results.append(dump(store.find_installation(user_id=lookup["user_id"], **args)))
        print(json.dumps(results))
    elif command == "issue":
        print(SQLite3OAuthStateStore(database=database, expiration_seconds=600).issue())
    elif command == "consume":
        store = SQLite3OAuthStateStore(database=database, expiration_seconds=600)
        print(json.dumps(store.consume(sys.argv[3])))
    else:
        sys.exit(f"unknown command {command}")


main()
