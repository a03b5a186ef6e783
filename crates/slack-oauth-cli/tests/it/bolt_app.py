"""A Bolt for Python app beside `slack-oauth serve` (issue #13): slack_sdk's own installation
store on the database `serve` writes, no token rotation of its own (no client secret, no OAuth
settings: an `authorize` that returns the stored bot token as it is). Every app_mention calls auth.test with the token Bolt authorized with; the emulator
refuses an expired, revoked or unknown one. Each outcome is appended to RESULTS as one line.

Environment: BOLT_DATABASE (a SQLite path or a postgresql:// URL), BOLT_PORT, RESULTS,
SLACK_CLIENT_ID, SLACK_SIGNING_SECRET, SLACK_API_URL.
"""

import logging
import os
import threading

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

logging.basicConfig(level=logging.WARNING)

database = os.environ["BOLT_DATABASE"]
client_id = os.environ["SLACK_CLIENT_ID"]
if database.startswith("postgresql://"):
    import sqlalchemy
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

    installation_store = SQLAlchemyInstallationStore(
        client_id=client_id, engine=sqlalchemy.create_engine(database)
    )
else:
    from slack_sdk.oauth.installation_store.sqlite3 import SQLite3InstallationStore

    installation_store = SQLite3InstallationStore(database=database, client_id=client_id)

def authorize(enterprise_id, team_id, is_enterprise_install):
    """The stored bot token as it is: `slack-oauth serve` keeps it fresh. (Bolt's own
    authorize insists on rotating tokens that have a refresh token, which needs the client
    secret; this app leaves that to serve.)"""
    bot = installation_store.find_bot(
        enterprise_id=enterprise_id,
        team_id=team_id,
        is_enterprise_install=is_enterprise_install,
    )
    if bot is None:
        return None
    return AuthorizeResult(
        enterprise_id=bot.enterprise_id,
        team_id=bot.team_id,
        bot_token=bot.bot_token,
        bot_id=bot.bot_id,
        bot_user_id=bot.bot_user_id,
    )


app = App(
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    authorize=authorize,
    client=WebClient(base_url=os.environ["SLACK_API_URL"]),
    # The listener runs before the answer: its outcome is known when the request returns.
    process_before_response=True,
)

results = open(os.environ["RESULTS"], "a", buffering=1)
lock = threading.Lock()


@app.event("app_mention")
def on_mention(body, client, context):
    team = body.get("team_id")
    try:
        identity = client.auth_test()
        outcome = "ok" if identity.get("team_id") == team else "wrong_team"
    except Exception as error:  # the emulator's refusal, e.g. token_expired
        outcome = "error:" + getattr(getattr(error, "response", None), "data", {}).get(
            "error", type(error).__name__
        )
    with lock:
        results.write(f"{team} {outcome}\n")


print(f"listening on http://127.0.0.1:{os.environ['BOLT_PORT']}", flush=True)
app.start(port=int(os.environ["BOLT_PORT"]))
