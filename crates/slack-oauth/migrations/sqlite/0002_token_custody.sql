-- slack-oauth SQLite schema, version 2: token custody under faults.
--
-- Nullable columns added at the end of slack_sdk's tables: Python names its columns in every
-- INSERT and SELECT, so it neither sees nor fills them, and a version it saves (a reinstall)
-- starts unflagged.

-- A bot token whose grant was lost (refresh token spent, answer never saved) or revoked: never
-- sent to Slack again until the workspace reinstalls. The time is INTEGER Unix seconds.
alter table slack_bots add column needs_reinstall_reason text;
alter table slack_bots add column needs_reinstall_at integer;

-- The same for one user's token.
alter table slack_installations add column user_needs_reinstall_reason text;
alter table slack_installations add column user_needs_reinstall_at integer;

-- The fingerprint (128 bits of SHA-256, hex) of the refresh token the lease holder is about to
-- redeem or may have redeemed. A lease row whose refresh was not settled outlives the lease so
-- that the next holder learns the token may be spent.
alter table slack_oauth_leases add column intent text;

-- An installation row keeps its own copy of the bot token; rotation updates both tables, and
-- so does a reinstall mark.
alter table slack_installations add column bot_needs_reinstall_reason text;
alter table slack_installations add column bot_needs_reinstall_at integer;
