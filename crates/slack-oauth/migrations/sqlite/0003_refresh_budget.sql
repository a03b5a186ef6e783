-- slack-oauth SQLite schema, version 3: the oauth.v2.access budget that every process using
-- the file shares. One row per call, kept for a minute (older rows are deleted as calls are
-- recorded); `spent_at` is INTEGER Unix milliseconds.
create table if not exists slack_oauth_refresh_budget (
    client_id text not null,
    spent_at integer not null
);
create index if not exists slack_oauth_refresh_budget_idx
    on slack_oauth_refresh_budget (client_id, spent_at);
