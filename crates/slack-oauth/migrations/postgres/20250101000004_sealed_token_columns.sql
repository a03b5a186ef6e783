-- Tokens encrypted at rest (SLACK_TOKEN_ENCRYPTION_KEYS) are stored as envelopes,
-- enc:v1:<key id>:<base64url(nonce, ciphertext, tag)>, about 4/3 of the token plus 80
-- characters: a rotating token or refresh token (up to about 150 characters) no longer fits
-- slack_sdk's VARCHAR(200). The token, refresh token and webhook URL columns become TEXT.
-- VARCHAR to TEXT is binary-coercible: PostgreSQL neither rewrites the table nor rebuilds an
-- index (none covers these columns), and slack_sdk reads and writes TEXT as it did VARCHAR.
ALTER TABLE slack_installations
    ALTER COLUMN bot_token TYPE TEXT,
    ALTER COLUMN bot_refresh_token TYPE TEXT,
    ALTER COLUMN user_token TYPE TEXT,
    ALTER COLUMN user_refresh_token TYPE TEXT,
    ALTER COLUMN incoming_webhook_url TYPE TEXT;
ALTER TABLE slack_bots
    ALTER COLUMN bot_token TYPE TEXT,
    ALTER COLUMN bot_refresh_token TYPE TEXT;
