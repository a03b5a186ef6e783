//! Cases on the shared `oauth.v2.access` budget: at most `limit` calls in the last minute,
//! atomically across concurrent callers, and an honest wait when it is spent.

use std::time::Duration;

use slack_oauth::store::{BudgetSpend, InstallationStore, BUDGET_WINDOW};

use super::ok;

/// The budget admits `limit` calls, then refuses with a wait of at most a minute, and a
/// refusal records nothing; a zero limit admits nothing.
pub async fn refresh_budget_admits_the_limit_then_waits<S: InstallationStore>(store: &S) {
    for call in 1..=3 {
        assert_eq!(
            ok(store.spend_refresh_budget(3).await, "spend_refresh_budget"),
            BudgetSpend::Spent { used: call },
            "call {call} of a budget of 3 is admitted, counting itself"
        );
    }
    for _ in 0..2 {
        match ok(store.spend_refresh_budget(3).await, "spend_refresh_budget") {
            BudgetSpend::Exhausted { used, retry_after } => {
                assert_eq!(used, 3, "a refused call is not recorded");
                assert!(
                    retry_after > Duration::ZERO && retry_after <= BUDGET_WINDOW,
                    "the wait is within the window: {retry_after:?}"
                );
            }
            spent => panic!("a fourth call within a minute was admitted: {spent:?}"),
        }
    }
    // A larger limit (an authorize-time refresh's) still has room.
    assert_eq!(
        ok(store.spend_refresh_budget(4).await, "spend_refresh_budget"),
        BudgetSpend::Spent { used: 4 }
    );
    assert!(
        matches!(
            ok(store.spend_refresh_budget(0).await, "spend_refresh_budget"),
            BudgetSpend::Exhausted { .. }
        ),
        "a zero limit admits nothing"
    );
}

/// 40 callers at once against a budget of 25: exactly 25 are admitted, whichever they are.
pub async fn concurrent_budget_spends_never_exceed_the_limit<S>(store: &S)
where
    S: InstallationStore + Clone + 'static,
{
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.spend_refresh_budget(25).await })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        let spend = task.await.expect("the spend task panicked");
        if let BudgetSpend::Spent { used } = ok(spend, "spend_refresh_budget") {
            assert!(used <= 25, "an admitted call counted {used} in the window");
            admitted += 1;
        }
    }
    assert_eq!(admitted, 25, "exactly the limit is admitted");
}
