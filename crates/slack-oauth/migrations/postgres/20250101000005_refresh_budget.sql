-- The oauth.v2.access budget that every instance on the database shares: one row per call,
-- kept for a minute (older rows are deleted as calls are recorded). Times are naive UTC by the
-- database's clock, so instances whose clocks disagree still share one window.
CREATE TABLE IF NOT EXISTS slack_oauth_refresh_budget (
    client_id VARCHAR(32) NOT NULL,
    spent_at TIMESTAMP WITHOUT TIME ZONE NOT NULL
);
CREATE INDEX IF NOT EXISTS slack_oauth_refresh_budget_idx
    ON slack_oauth_refresh_budget (client_id, spent_at);

-- Records one call of `app` if fewer than `call_limit` were recorded in the last 60 seconds,
-- in one round trip. Callers of one app take turns (a transaction-scoped advisory lock), so
-- two instances never both take the last call. Returns whether the call was recorded, the calls
-- in the window, and the seconds until one more would fit (0 when recorded).
CREATE OR REPLACE FUNCTION slack_oauth_spend_refresh_budget(app TEXT, call_limit INTEGER)
RETURNS TABLE (spent BOOLEAN, used INTEGER, retry_after_seconds DOUBLE PRECISION)
LANGUAGE plpgsql AS $$
DECLARE
    now_utc TIMESTAMP;
    counted INTEGER;
    leaving TIMESTAMP;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('slack_oauth_refresh_budget:' || app, 0));
    -- Read after the lock: a caller that waited for it records the time it got its turn.
    now_utc := clock_timestamp() AT TIME ZONE 'UTC';
    DELETE FROM slack_oauth_refresh_budget b
        WHERE b.client_id = app AND b.spent_at <= now_utc - INTERVAL '60 seconds';
    SELECT count(*) INTO counted FROM slack_oauth_refresh_budget b WHERE b.client_id = app;
    IF counted < call_limit THEN
        INSERT INTO slack_oauth_refresh_budget (client_id, spent_at) VALUES (app, now_utc);
        RETURN QUERY SELECT true, counted + 1, 0::DOUBLE PRECISION;
        RETURN;
    END IF;
    -- Full: one more fits once the (counted - call_limit + 1)-th oldest call leaves.
    SELECT b.spent_at INTO leaving FROM slack_oauth_refresh_budget b WHERE b.client_id = app
        ORDER BY b.spent_at OFFSET greatest(counted - call_limit, 0) LIMIT 1;
    RETURN QUERY SELECT false, counted, greatest(coalesce(
        extract(epoch FROM (leaving + INTERVAL '60 seconds' - now_utc))::DOUBLE PRECISION,
        60), 0.001);
END;
$$;
