//! What each Web API method does to the state, and the JSON it answers (Slack's shapes).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::config::Grant;
use crate::state::{Inner, Issued, Shared};
use crate::tokens::TokenKind;

/// A successful answer: the JSON body (without `ok`) and, for `auth.test`, the token's scopes
/// for the `x-oauth-scopes` header.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) body: Map<String, Value>,
    pub(crate) scopes: Option<String>,
}

impl Answer {
    fn body(body: Map<String, Value>) -> Self {
        Self { body, scopes: None }
    }
}

/// A method's result; the error is Slack's error string.
pub(crate) type MethodResult = Result<Answer, &'static str>;

/// The fields of an `oauth.v2.access` `code` redemption.
#[derive(Debug)]
pub(crate) struct CodeRedemption<'a> {
    pub(crate) code: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: Option<&'a str>,
    pub(crate) code_verifier: Option<&'a str>,
}

fn named(pair: Option<(&str, &str)>) -> Value {
    pair.map_or(Value::Null, |(id, name)| json!({"id": id, "name": name}))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Shared {
    /// `oauth.v2.access` with a `code`.
    pub(crate) fn redeem_code(&self, request: &CodeRedemption<'_>) -> MethodResult {
        let now = self.clock.now();
        let mut inner = self.lock();
        let Some(record) = inner.codes.get(request.code) else {
            return Err("invalid_code");
        };
        if now >= record.issued_at.saturating_add(self.config.code_ttl) {
            inner.codes.remove(request.code);
            return Err("invalid_code");
        }
        if record
            .client_id
            .as_deref()
            .is_some_and(|bound| bound != request.client_id)
        {
            return Err("invalid_code");
        }
        if let Some(bound) = record.redirect_uri.as_deref() {
            if request.redirect_uri != Some(bound) {
                return Err("bad_redirect_uri");
            }
        }
        if let Some(pkce) = &record.pkce {
            if !request.code_verifier.is_some_and(|v| pkce.verify(v)) {
                return Err("invalid_code_verifier");
            }
        }
        // Checks passed: the code is spent. A failed attempt leaves it usable, so a test can
        // fix its request and retry.
        let Some(record) = inner.codes.remove(request.code) else {
            return Err("invalid_code");
        };
        inner.counters.codes_redeemed += 1;
        let grant = record.grant;
        let rotating = self.config.rotation;
        let issue = |inner: &mut Inner, kind| {
            let family = rotating.then(|| inner.new_family(None));
            inner.issue(&self.config, &grant, kind, family, now)
        };
        let bot = grant.has_bot().then(|| issue(&mut inner, TokenKind::Bot));
        let user = grant.has_user().then(|| issue(&mut inner, TokenKind::User));
        drop(inner);
        Ok(Answer::body(self.install_body(&grant, bot, user)))
    }

    /// The `oauth.v2.access` install response.
    fn install_body(
        &self,
        grant: &Grant,
        bot: Option<Issued>,
        user: Option<Issued>,
    ) -> Map<String, Value> {
        let mut authed_user = object(json!({"id": grant.user_id}));
        if let Some(user) = user {
            authed_user.insert("scope".to_owned(), json!(grant.user_scopes.join(",")));
            authed_user.insert("access_token".to_owned(), json!(user.access));
            authed_user.insert("token_type".to_owned(), json!("user"));
            insert_rotation(&mut authed_user, &user);
        }
        let mut body = object(json!({
            "app_id": grant.app_id,
            "authed_user": authed_user,
            "team": named(grant.team()),
            "enterprise": named(grant.enterprise()),
            "is_enterprise_install": grant.team().is_none(),
        }));
        if let Some(bot) = bot {
            body.insert("scope".to_owned(), json!(grant.bot_scopes.join(",")));
            body.insert("token_type".to_owned(), json!("bot"));
            body.insert("access_token".to_owned(), json!(bot.access));
            body.insert("bot_user_id".to_owned(), json!(grant.bot_user_id));
            insert_rotation(&mut body, &bot);
        }
        if grant.has_webhook() {
            let (team, _) = grant.team().unwrap_or((&grant.enterprise_id, ""));
            body.insert(
                "incoming_webhook".to_owned(),
                json!({
                    "url": format!(
                        "{}services/{team}/{}/{}",
                        self.base_url,
                        grant.bot_id,
                        crate::tokens::alnum(24),
                    ),
                    "channel": "#general",
                    "channel_id": "C0EMULATOR",
                    "configuration_url": format!("{}services/{}", grant.url(), grant.bot_id),
                }),
            );
        }
        body
    }

    /// Notes that a refresh token was sent (any refresh token, known or not), at arrival;
    /// returns its key and index for [`Self::presentation_done`].
    pub(crate) fn record_presentation(&self, refresh_token: &str) -> (String, usize) {
        let now = self.clock.now();
        let key = crate::tokens::refresh_token_key(refresh_token);
        let mut inner = self.lock();
        let list = inner
            .counters
            .refresh_presented_at
            .entry(key.clone())
            .or_default();
        list.push(crate::state::Presentation {
            sent_at: now,
            done_at: None,
        });
        (key, list.len() - 1)
    }

    /// Notes that the emulator is done with a presentation.
    pub(crate) fn presentation_done(&self, key: &str, index: usize) {
        let now = self.clock.now();
        let mut inner = self.lock();
        if let Some(presentation) = inner
            .counters
            .refresh_presented_at
            .get_mut(key)
            .and_then(|list| list.get_mut(index))
        {
            presentation.done_at = Some(now);
        }
    }

    /// `oauth.v2.access` with `grant_type=refresh_token`.
    pub(crate) fn refresh(&self, refresh_token: &str) -> MethodResult {
        if !self.config.rotation {
            return Err("token_rotation_not_enabled");
        }
        let now = self.clock.now();
        let mut inner = self.lock();
        let Some(record) = inner.refresh.get_mut(refresh_token) else {
            return Err("invalid_refresh_token");
        };
        if record.revoked {
            return Err("invalid_refresh_token");
        }
        let in_grace = match record.spent_at {
            None => {
                record.spent_at = Some(now);
                false
            }
            Some(spent) if now.saturating_sub(spent) < self.config.refresh_grace => true,
            Some(_) => {
                let family = record.family;
                inner.counters.spent_refresh_token_reuse += 1;
                if self.config.reuse_revokes_family {
                    inner.revoke_family(family);
                }
                return Err("invalid_refresh_token");
            }
        };
        let (key, grant, kind, family) = (
            record.key.clone(),
            Arc::clone(&record.grant),
            record.kind,
            record.family,
        );
        inner.counters.refreshes_served += 1;
        if in_grace {
            inner.counters.refreshes_in_grace += 1;
        }
        *inner.counters.refresh_redemptions.entry(key).or_default() += 1;
        // Slack expires the long-lived token a pair was exchanged from at its first refresh.
        let legacy = inner
            .families
            .get_mut(&family)
            .and_then(|entry| entry.legacy.take());
        if let Some(record) = legacy.and_then(|token| inner.access.get_mut(&token)) {
            record.expires_at = Some(now);
        }
        let issued = inner.issue(&self.config, &grant, kind, Some(family), now);
        drop(inner);
        Ok(Answer::body(token_body(&grant, kind, &issued)))
    }

    /// `oauth.v2.exchange`: a long-lived token for a rotating pair.
    pub(crate) fn exchange(&self, token: &str) -> MethodResult {
        if !self.config.rotation {
            return Err("token_rotation_not_enabled");
        }
        let now = self.clock.now();
        let mut inner = self.lock();
        let Some(record) = inner.access.get_mut(token) else {
            return Err("invalid_token");
        };
        if record.revoked {
            return Err("token_revoked");
        }
        if record.expires_at.is_some() {
            // Already an expiring token: there is nothing to exchange.
            return Err("invalid_token");
        }
        if record.exchanged {
            return Err("token_already_exchanged");
        }
        record.exchanged = true;
        let (grant, kind) = (Arc::clone(&record.grant), record.kind);
        let family = inner.new_family(Some(token.to_owned()));
        let issued = inner.issue(&self.config, &grant, kind, Some(family), now);
        drop(inner);
        Ok(Answer::body(token_body(&grant, kind, &issued)))
    }

    /// `auth.test`.
    pub(crate) fn auth_test(&self, token: &str) -> MethodResult {
        let now = self.clock.now();
        let inner = self.lock();
        let (grant, kind) = match inner.access.get(token) {
            Some(record) if record.revoked => return Err("token_revoked"),
            Some(record) if record.is_expired(now) && self.config.strict_tokens => {
                return Err("token_expired")
            }
            Some(record) => (Arc::clone(&record.grant), record.kind),
            None if self.config.strict_tokens => return Err("invalid_auth"),
            None => (
                Arc::new(inner.default_grant.clone()),
                TokenKind::guess(token),
            ),
        };
        drop(inner);
        let org_wide = grant.team().is_none();
        let (team_id, team) = grant
            .team()
            .unwrap_or((&grant.enterprise_id, &grant.enterprise_name));
        let mut body = object(json!({
            "url": grant.url(),
            "team": team,
            "team_id": team_id,
            "is_enterprise_install": org_wide,
        }));
        if let Some((enterprise_id, _)) = grant.enterprise() {
            body.insert("enterprise_id".to_owned(), json!(enterprise_id));
        }
        let scopes = match kind {
            TokenKind::Bot => {
                body.insert("user".to_owned(), json!("emulated-bot"));
                body.insert("user_id".to_owned(), json!(grant.bot_user_id));
                body.insert("bot_id".to_owned(), json!(grant.bot_id));
                &grant.bot_scopes
            }
            TokenKind::User => {
                body.insert("user".to_owned(), json!("emulated-user"));
                body.insert("user_id".to_owned(), json!(grant.user_id));
                &grant.user_scopes
            }
        };
        Ok(Answer {
            body,
            scopes: Some(scopes.join(",")),
        })
    }

    /// `auth.revoke`: revokes one access or refresh token (with `test`, only checks it).
    pub(crate) fn revoke(&self, token: &str, test: bool) -> MethodResult {
        let mut inner = self.lock();
        let revoked = if let Some(record) = inner.access.get_mut(token) {
            if record.revoked {
                return Err("token_revoked");
            }
            if !test {
                record.revoked = true;
            }
            !test
        } else if let Some(record) = inner.refresh.get_mut(token) {
            if record.revoked {
                return Err("token_revoked");
            }
            if !test {
                record.revoked = true;
            }
            !test
        } else if self.config.strict_tokens {
            return Err("invalid_auth");
        } else {
            !test
        };
        Ok(Answer::body(object(json!({ "revoked": revoked }))))
    }
}

/// Adds `refresh_token` and `expires_in` for a rotating token.
fn insert_rotation(body: &mut Map<String, Value>, issued: &Issued) {
    if let Some(refresh) = &issued.refresh {
        body.insert("refresh_token".to_owned(), json!(refresh));
    }
    if let Some(expires_in) = issued.expires_in {
        body.insert("expires_in".to_owned(), json!(expires_in));
    }
}

/// The refresh (and exchange) response: one token of one kind.
fn token_body(grant: &Grant, kind: TokenKind, issued: &Issued) -> Map<String, Value> {
    let scopes = match kind {
        TokenKind::Bot => &grant.bot_scopes,
        TokenKind::User => &grant.user_scopes,
    };
    let mut body = object(json!({
        "app_id": grant.app_id,
        "access_token": issued.access,
        "token_type": kind.as_str(),
        "scope": scopes.join(","),
        "team": named(grant.team()),
        "enterprise": named(grant.enterprise()),
        "is_enterprise_install": grant.team().is_none(),
    }));
    match kind {
        TokenKind::Bot => body.insert("bot_user_id".to_owned(), json!(grant.bot_user_id)),
        TokenKind::User => body.insert("user_id".to_owned(), json!(grant.user_id)),
    };
    insert_rotation(&mut body, issued);
    body
}
