-- Every insert, update or delete of an installation or bot row (ours, or a Python slack_sdk
-- app's on the same database) notifies the channel `slack_oauth_changes` with the row's app,
-- org, workspace and org-wide flag as JSON, delivered when the transaction commits (identical
-- payloads of one transaction are folded into one). Instances LISTEN and drop what their
-- authorize cache holds for that workspace, so a cached answer is stale for milliseconds rather
-- than the cache's TTL.
CREATE OR REPLACE FUNCTION slack_oauth_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed RECORD;
BEGIN
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

DROP TRIGGER IF EXISTS slack_oauth_installations_changed ON slack_installations;
CREATE TRIGGER slack_oauth_installations_changed
    AFTER INSERT OR UPDATE OR DELETE ON slack_installations
    FOR EACH ROW EXECUTE FUNCTION slack_oauth_notify_change();

DROP TRIGGER IF EXISTS slack_oauth_bots_changed ON slack_bots;
CREATE TRIGGER slack_oauth_bots_changed
    AFTER INSERT OR UPDATE OR DELETE ON slack_bots
    FOR EACH ROW EXECUTE FUNCTION slack_oauth_notify_change();
