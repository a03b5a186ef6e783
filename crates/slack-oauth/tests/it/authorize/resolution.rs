//! Resolution rules: which bot and user tokens a request gets, with no refresh involved.

use slack_oauth::authorize::{AuthorizeRequest, AuthorizeResult, Authorizer, UserTokenResolution};
use slack_oauth::installation::Bot;
use slack_oauth::secret::BotToken;
use slack_oauth::store::InstallationStore;
use slack_oauth_test::fixtures::{self, at};

use super::on_both_stores;

async fn authorize<S: InstallationStore + Clone + 'static>(
    store: &S,
    request: AuthorizeRequest,
) -> Option<AuthorizeResult> {
    Authorizer::new(store.clone())
        .authorize(&request)
        .await
        .unwrap()
}

fn bot_token(result: &AuthorizeResult) -> &str {
    result.bot_token.as_ref().map_or("-", |t| t.secret())
}

fn user_token(result: &AuthorizeResult) -> &str {
    result.user_token.as_ref().map_or("-", |t| t.secret())
}

fn user_id(result: &AuthorizeResult) -> &str {
    result.user_id.as_ref().map_or("-", |u| u.as_str())
}

/// §12.6 2.3: the installer gets the bot token and their own user token, with every id taken from
/// the store (no `auth.test`).
async fn installer_gets_bot_and_own_user_token<S: InstallationStore + Clone + 'static>(store: S) {
    store
        .save(&fixtures::workspace("T1", "U1").build())
        .await
        .unwrap();
    let result = authorize(&store, AuthorizeRequest::team("T1").user("U1"))
        .await
        .unwrap();
    assert_eq!(bot_token(&result), "xoxb-T1-U1-0");
    assert_eq!(user_token(&result), "xoxp-T1-U1-0");
    assert_eq!(user_id(&result), "U1");
    assert_eq!(result.bot_id.as_ref().unwrap().as_str(), "BT1");
    assert_eq!(result.bot_user_id.as_ref().unwrap().as_str(), "UBT1");
    assert_eq!(result.bot_scopes.to_string(), fixtures::BOT_SCOPES);
    assert_eq!(result.user_scopes.to_string(), fixtures::USER_SCOPES);
    assert_eq!(result.team_id.as_ref().unwrap().as_str(), "T1");
    assert_eq!(result.enterprise_id, None);
    assert!(!result.is_enterprise_install);
    assert_eq!(result.token().unwrap().secret(), "xoxb-T1-U1-0");
}

/// §12.6 2.4: another user with their own (user-only) install gets the workspace's bot token and
/// their own user token, whichever install is newer.
async fn other_user_gets_own_user_token<S: InstallationStore + Clone + 'static>(store: S) {
    store
        .save(&fixtures::user_only("T1", "U2").installed_at(at(0)).build())
        .await
        .unwrap();
    store
        .save(&fixtures::workspace("T1", "U1").installed_at(at(10)).build())
        .await
        .unwrap();
    store
        .save(&fixtures::user_only("T1", "U3").installed_at(at(20)).build())
        .await
        .unwrap();
    for (user, expected) in [
        ("U1", "xoxp-T1-U1-0"),
        ("U2", "xoxp-T1-U2-0"),
        ("U3", "xoxp-T1-U3-0"),
    ] {
        let result = authorize(&store, AuthorizeRequest::team("T1").user(user))
            .await
            .unwrap();
        assert_eq!(bot_token(&result), "xoxb-T1-U1-0", "{user}");
        assert_eq!(user_token(&result), expected);
        assert_eq!(user_id(&result), user);
    }
}

/// §12.6 2.6 and V7: a user with no installation gets the bot token only.
async fn user_without_install_gets_bot_only<S: InstallationStore + Clone + 'static>(store: S) {
    store
        .save(&fixtures::workspace("T1", "U1").build())
        .await
        .unwrap();
    let result = authorize(&store, AuthorizeRequest::team("T1").user("U9"))
        .await
        .unwrap();
    assert_eq!(bot_token(&result), "xoxb-T1-U1-0");
    assert_eq!(user_token(&result), "-");
    assert_eq!(user_id(&result), "-");
    assert!(result.user_scopes.is_empty());
}

/// W40 decided: a request with no user gets no user token by default; the opt-in switch gives
/// Bolt's behaviour (the installer's user token and id). Pins both.
async fn userless_request_gets_no_user_token_unless_opted_in<
    S: InstallationStore + Clone + 'static,
>(
    store: S,
) {
    store
        .save(&fixtures::workspace("T1", "U1").build())
        .await
        .unwrap();
    let ours = authorize(&store, AuthorizeRequest::team("T1"))
        .await
        .unwrap();
    assert_eq!(bot_token(&ours), "xoxb-T1-U1-0");
    assert_eq!(user_token(&ours), "-");
    assert_eq!(user_id(&ours), "-");

    let bolt = Authorizer::new(store.clone())
        .user_token_for_userless_requests(true)
        .authorize(&AuthorizeRequest::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bot_token(&bolt), "xoxb-T1-U1-0");
    assert_eq!(user_token(&bolt), "xoxp-T1-U1-0");
    assert_eq!(user_id(&bolt), "U1");
}

/// §12.6 2.2: bot-only mode reads bots only and never returns a user token.
async fn bot_only_never_returns_user_tokens<S: InstallationStore + Clone + 'static>(store: S) {
    store
        .save(&fixtures::workspace("T1", "U1").build())
        .await
        .unwrap();
    let result = Authorizer::new(store.clone())
        .bot_only(true)
        .authorize(&AuthorizeRequest::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bot_token(&result), "xoxb-T1-U1-0");
    assert_eq!(user_token(&result), "-");
    assert_eq!(result.bot_id.as_ref().unwrap().as_str(), "BT1");
}

/// §12.6 2.1: a store holding only a bot (no installation) still authorizes through the bot path.
async fn bot_without_installation_is_found<S: InstallationStore + Clone + 'static>(store: S) {
    let mut bot = Bot::new(BotToken::new("xoxb-only-bot"), at(0));
    bot.team_id = Some("T7".into());
    bot.bot_id = Some("B7".into());
    store.save_bot(&bot).await.unwrap();
    let result = authorize(&store, AuthorizeRequest::team("T7").user("U1"))
        .await
        .unwrap();
    assert_eq!(bot_token(&result), "xoxb-only-bot");
    assert_eq!(result.bot_id.as_ref().unwrap().as_str(), "B7");
    assert_eq!(user_token(&result), "-");
}

/// Unknown workspaces, and user-only workspaces asked by someone else, are not authorized.
async fn not_installed_is_none<S: InstallationStore + Clone + 'static>(store: S) {
    assert!(authorize(&store, AuthorizeRequest::team("T404"))
        .await
        .is_none());
    store
        .save(&fixtures::user_only("T2", "U2").build())
        .await
        .unwrap();
    assert!(authorize(&store, AuthorizeRequest::team("T2").user("U9"))
        .await
        .is_none());
    assert!(authorize(&store, AuthorizeRequest::team("T2"))
        .await
        .is_none());
    let own = authorize(&store, AuthorizeRequest::team("T2").user("U2"))
        .await
        .unwrap();
    assert_eq!(bot_token(&own), "-");
    assert_eq!(own.token().unwrap().secret(), "xoxp-T2-U2-0");
}

/// Org-wide installs are found by enterprise id from any of the org's workspaces; a Grid
/// workspace install is found by team.
async fn org_wide_and_grid_installs<S: InstallationStore + Clone + 'static>(store: S) {
    store
        .save(&fixtures::org_wide("E1", "U1").build())
        .await
        .unwrap();
    store
        .save(&fixtures::workspace("T2", "U2").enterprise("E2").build())
        .await
        .unwrap();
    let org = authorize(&store, AuthorizeRequest::org("E1").in_team("T5").user("U1"))
        .await
        .unwrap();
    assert_eq!(bot_token(&org), "xoxb-E1-U1-0");
    assert_eq!(user_token(&org), "xoxp-E1-U1-0");
    assert!(org.is_enterprise_install);
    assert_eq!(org.enterprise_id.as_ref().unwrap().as_str(), "E1");
    assert_eq!(org.team_id, None);
    assert!(
        authorize(&store, AuthorizeRequest::team("T5").enterprise("E1"))
            .await
            .is_none(),
        "a workspace request does not match an org-wide install"
    );
    let grid = authorize(&store, AuthorizeRequest::team("T2").enterprise("E2"))
        .await
        .unwrap();
    assert_eq!(bot_token(&grid), "xoxb-T2-U2-0");
    assert!(!grid.is_enterprise_install);
}

/// §12.6 3 (actor mode): the user token comes from the acting user's own workspace, the bot from
/// the request's. In the default mode the same request gets no user token.
async fn actor_mode_uses_the_actors_installation<S: InstallationStore + Clone + 'static>(store: S) {
    store
        .save(&fixtures::workspace("T1", "U1").build())
        .await
        .unwrap();
    store
        .save(&fixtures::user_only("T2", "U7").build())
        .await
        .unwrap();
    let request = AuthorizeRequest::team("T1")
        .user("U7")
        .actor(None, Some("T2".into()), "U7");
    let actor = Authorizer::new(store.clone())
        .user_token_resolution(UserTokenResolution::Actor)
        .authorize(&request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bot_token(&actor), "xoxb-T1-U1-0");
    assert_eq!(user_token(&actor), "xoxp-T2-U7-0");
    assert_eq!(user_id(&actor), "U7");
    let authed_user = authorize(&store, request).await.unwrap();
    assert_eq!(user_token(&authed_user), "-");
}

on_both_stores! {
    installer => installer_gets_bot_and_own_user_token;
    other_user => other_user_gets_own_user_token;
    user_without_install => user_without_install_gets_bot_only;
    userless_w40 => userless_request_gets_no_user_token_unless_opted_in;
    bot_only => bot_only_never_returns_user_tokens;
    bot_path => bot_without_installation_is_found;
    not_installed => not_installed_is_none;
    org_wide => org_wide_and_grid_installs;
    actor_mode => actor_mode_uses_the_actors_installation;
}
