-- slack-oauth's additions. None of them changes a column, so slack_sdk keeps working on the same
-- tables (its own DDL above is untouched).

-- "Latest" lookups (ORDER BY installed_at DESC, id DESC LIMIT 1) read the first entry of these
-- indexes, with no sort. A missing org or team is NULL, and PostgreSQL neither serves
-- `IS NOT DISTINCT FROM` from an index nor treats `IS NULL` as fixing a column for the order of
-- the next ones (it sorts). So the key columns are indexed as COALESCE(column, ''), which every
-- lookup compares with `=`; a separate `(column IS NULL) = ($n IS NULL)` filter keeps NULL and
-- '' apart.
CREATE INDEX IF NOT EXISTS slack_installations_latest_idx ON slack_installations
    (client_id, COALESCE(enterprise_id, ''), COALESCE(team_id, ''), installed_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS slack_installations_user_latest_idx ON slack_installations
    (client_id, COALESCE(enterprise_id, ''), COALESCE(team_id, ''), user_id, installed_at DESC,
    id DESC);
CREATE INDEX IF NOT EXISTS slack_bots_latest_idx ON slack_bots
    (client_id, COALESCE(enterprise_id, ''), COALESCE(team_id, ''), installed_at DESC, id DESC);

-- A state is consumed with one DELETE ... RETURNING; the unique index makes "exactly one caller
-- wins" hold even for a state that was somehow inserted twice. slack_sdk issues UUID4 states, so
-- duplicates cannot occur in practice; any that do are removed first (keeping the oldest row) so
-- that creating the index cannot fail.
DELETE FROM slack_oauth_states AS newer
    USING slack_oauth_states AS older
    WHERE newer.state = older.state AND newer.id > older.id;
CREATE UNIQUE INDEX IF NOT EXISTS slack_oauth_states_state_key ON slack_oauth_states (state);
CREATE INDEX IF NOT EXISTS slack_oauth_states_expire_at_idx ON slack_oauth_states (expire_at);

-- Named leases that serialize token refreshes across instances (naive UTC, like every timestamp
-- here).
CREATE TABLE IF NOT EXISTS slack_oauth_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMP WITHOUT TIME ZONE NOT NULL
);
