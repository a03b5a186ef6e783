-- slack-oauth SQLite schema, version 1.
--
-- The first three tables and their indexes are slack_sdk's SQLite3InstallationStore and
-- SQLite3OAuthStateStore DDL verbatim (slack_sdk 3.43.0), with IF NOT EXISTS added so that a
-- database created by Python opens unchanged and stays usable by Python. Value encodings are
-- Python's (see the rustdoc of `SqliteStore`): '' for no org / no team, expiries as INTEGER Unix
-- seconds, installed_at as TEXT 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC, states' expire_at as REAL
-- Unix seconds.

create table if not exists slack_installations (
    id integer primary key autoincrement,
    client_id text not null,
    app_id text not null,
    enterprise_id text not null default '',
    enterprise_name text,
    enterprise_url text,
    team_id text not null default '',
    team_name text,
    bot_token text,
    bot_id text,
    bot_user_id text,
    bot_scopes text,
    bot_refresh_token text,  -- since v3.8
    bot_token_expires_at datetime,  -- since v3.8
    user_id text not null,
    user_token text,
    user_scopes text,
    user_refresh_token text,  -- since v3.8
    user_token_expires_at datetime,  -- since v3.8
    incoming_webhook_url text,
    incoming_webhook_channel text,
    incoming_webhook_channel_id text,
    incoming_webhook_configuration_url text,
    is_enterprise_install boolean not null default 0,
    token_type text,
    installed_at datetime not null default current_timestamp
);

create index if not exists slack_installations_idx on slack_installations (
    client_id,
    enterprise_id,
    team_id,
    user_id,
    installed_at
);

create table if not exists slack_bots (
    id integer primary key autoincrement,
    client_id text not null,
    app_id text not null,
    enterprise_id text not null default '',
    enterprise_name text,
    team_id text not null default '',
    team_name text,
    bot_token text not null,
    bot_id text not null,
    bot_user_id text not null,
    bot_scopes text,
    bot_refresh_token text,  -- since v3.8
    bot_token_expires_at datetime,  -- since v3.8
    is_enterprise_install boolean not null default 0,
    installed_at datetime not null default current_timestamp
);

create index if not exists slack_bots_idx on slack_bots (
    client_id,
    enterprise_id,
    team_id,
    installed_at
);

create table if not exists oauth_states (
    id integer primary key autoincrement,
    state text not null,
    expire_at datetime not null
);

-- Additions (slack-oauth only; Python ignores them).

-- "Latest installation of a workspace, whoever installed it" is a backwards index seek with no
-- sort: slack_installations_idx puts user_id before installed_at, so it cannot serve it.
create index if not exists slack_installations_latest_idx on slack_installations (
    client_id,
    enterprise_id,
    team_id,
    installed_at,
    id
);

-- (slack_bots_idx already serves "latest bot" as a backwards seek: SQLite appends the rowid,
-- which is id, to every index key, so same-second ties are ordered by id without a sort.)

-- consume() looks states up by value; purges scan by expiry.
create index if not exists oauth_states_state_idx on oauth_states (state);
create index if not exists oauth_states_expire_at_idx on oauth_states (expire_at);

-- Named leases that serialize token refreshes across instances. expires_at is in Unix
-- milliseconds (leases last seconds, so whole seconds would be too coarse).
create table if not exists slack_oauth_leases (
    name text primary key,
    holder text not null,
    expires_at integer not null
);
