-- The store's own sessions (`slack_oauth.notifies_itself` set when they connect) send their
-- change notifications themselves, after each write commits, in a transaction of their own
-- that does not wait for its commit record to reach the disk. A NOTIFY inside the writing
-- transaction takes PostgreSQL's notification lock until that transaction's commit is flushed,
-- which serializes the commits of all concurrent saves (without this, 32 saves in flight ran
-- 61% slower; BENCHMARKS.md, "PostgreSQL stores"). Every other writer (a Python slack_sdk app
-- on the same database, psql) is still notified by the triggers, as before.
CREATE OR REPLACE FUNCTION slack_oauth_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed RECORD;
BEGIN
    IF current_setting('slack_oauth.notifies_itself', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    PERFORM pg_notify('slack_oauth_changes', json_build_object(
        'client_id', changed.client_id,
        'enterprise_id', changed.enterprise_id,
        'team_id', changed.team_id,
        'is_enterprise_install', changed.is_enterprise_install)::text);
    RETURN NULL;
END;
$$;
