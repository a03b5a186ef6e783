-- Token custody under faults. Nullable columns added at the end of slack_sdk's tables: its
-- SQLAlchemy store names its columns, so it neither sees nor fills them, and a version it saves
-- (a reinstall) starts unflagged.

-- A token whose grant was lost (refresh token spent, answer never saved) or revoked: never sent
-- to Slack again until the workspace (or user) reinstalls. Times are naive UTC.
ALTER TABLE slack_bots ADD COLUMN IF NOT EXISTS needs_reinstall_reason TEXT;
ALTER TABLE slack_bots ADD COLUMN IF NOT EXISTS needs_reinstall_at TIMESTAMP WITHOUT TIME ZONE;
ALTER TABLE slack_installations ADD COLUMN IF NOT EXISTS bot_needs_reinstall_reason TEXT;
ALTER TABLE slack_installations
    ADD COLUMN IF NOT EXISTS bot_needs_reinstall_at TIMESTAMP WITHOUT TIME ZONE;
ALTER TABLE slack_installations ADD COLUMN IF NOT EXISTS user_needs_reinstall_reason TEXT;
ALTER TABLE slack_installations
    ADD COLUMN IF NOT EXISTS user_needs_reinstall_at TIMESTAMP WITHOUT TIME ZONE;

-- The fingerprint (128 bits of SHA-256, hex) of the refresh token the lease holder is about to
-- redeem or may have redeemed. A lease whose refresh was not settled keeps its row (expired) so
-- that the next holder learns the token may be spent.
ALTER TABLE slack_oauth_leases ADD COLUMN IF NOT EXISTS intent TEXT;
