//! Cases on listing: the latest installation of every org, workspace and user; expiring ones.

use slack_oauth::store::InstallationStore;

use super::{ok, save};
use crate::assert::{bot_token, user_token};
use crate::fixtures::{self, at};

/// `list_installations` returns the latest version per (org, workspace, user), bot merged in,
/// ordered by org, team and user (no org and no team first).
pub async fn list_installations_latest_per_user<S: InstallationStore>(store: &S) {
    let versions = [
        fixtures::workspace("T1", "U1").installed_at(at(0)).build(),
        fixtures::workspace("T1", "U1")
            .generation(1)
            .installed_at(at(10))
            .build(),
        fixtures::user_only("T1", "U2").installed_at(at(5)).build(),
        fixtures::workspace("T2", "U3").build(),
        fixtures::org_wide("E1", "U4").build(),
        fixtures::workspace("T1", "U5").enterprise("E1").build(),
    ];
    for version in &versions {
        save(store, version).await;
    }
    let listed = ok(store.list_installations().await, "list_installations");
    let keys: Vec<_> = listed
        .iter()
        .map(|i| {
            (
                i.enterprise_id.as_ref().map(|e| e.as_str().to_owned()),
                i.team_id.as_ref().map(|t| t.as_str().to_owned()),
                i.user_id.as_str().to_owned(),
            )
        })
        .collect();
    let key = |e: Option<&str>, t: Option<&str>, u: &str| {
        (e.map(str::to_owned), t.map(str::to_owned), u.to_owned())
    };
    assert_eq!(
        keys,
        [
            key(None, Some("T1"), "U1"),
            key(None, Some("T1"), "U2"),
            key(None, Some("T2"), "U3"),
            key(Some("E1"), None, "U4"),
            key(Some("E1"), Some("T1"), "U5"),
        ],
        "one entry per org/team/user, ordered by org, team, user"
    );
    assert_eq!(
        user_token(&listed[0]),
        Some("xoxp-T1-U1-1"),
        "U1's latest version"
    );
    assert_eq!(
        user_token(&listed[1]),
        Some("xoxp-T1-U2-0"),
        "U2's user-only install"
    );
    assert_eq!(
        bot_token(&listed[1]),
        Some("xoxb-T1-U1-1"),
        "U2's user-only install carries T1's newest bot"
    );
    assert!(
        listed[3].is_enterprise_install,
        "the org-wide install is listed as such"
    );
}

/// `list_expiring` lists latest installations whose bot or user token expires at or before the
/// deadline, soonest first.
pub async fn list_expiring_is_soonest_first_within_deadline<S: InstallationStore>(store: &S) {
    let versions = [
        fixtures::workspace("T1", "U1")
            .with_rotation(at(100))
            .build(),
        fixtures::workspace("T2", "U2")
            .with_rotation(at(50))
            .build(),
        fixtures::workspace("T3", "U3")
            .with_rotation(at(10_000))
            .build(),
        fixtures::workspace("T4", "U4").build(),
        fixtures::user_only("T5", "U5")
            .with_rotation(at(70))
            .build(),
        // T6's old version expires soon, its latest does not: not listed.
        fixtures::workspace("T6", "U6")
            .with_rotation(at(20))
            .installed_at(at(0))
            .build(),
        fixtures::workspace("T6", "U6")
            .generation(1)
            .with_rotation(at(20_000))
            .installed_at(at(1))
            .build(),
        // Only the user token of T7 expires soon.
        {
            let mut i = fixtures::workspace("T7", "U7")
                .with_rotation(at(30_000))
                .build();
            i.user_token_expires_at = Some(at(150));
            i
        },
    ];
    for version in &versions {
        save(store, version).await;
    }
    let teams = |listed: Vec<slack_oauth::installation::Installation>| -> Vec<String> {
        listed
            .iter()
            .map(|i| i.team_id.as_ref().map_or("-", |t| t.as_str()).to_owned())
            .collect()
    };
    let expiring = ok(store.list_expiring(at(200)).await, "list_expiring(at 200)");
    assert_eq!(
        teams(expiring),
        ["T2", "T5", "T1", "T7"],
        "expiring by the deadline, soonest first"
    );
    let expiring = ok(store.list_expiring(at(50)).await, "list_expiring(at 50)");
    assert_eq!(teams(expiring), ["T2"], "the deadline is inclusive");
    let expiring = ok(store.list_expiring(at(49)).await, "list_expiring(at 49)");
    assert!(expiring.is_empty(), "nothing expires by at(49)");
}
