//! Many tasks at once on one store: saves and finds, consumes of one state, lease contenders.

use std::sync::Arc;

use slack_oauth::secret::StateValue;
use slack_oauth::store::{InstallationQuery, InstallationStore, StateStore, StoreError};

use super::support::{at, workspace_installation, TestSchema};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_and_finds_all_succeed() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = Arc::new(schema.store().await);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let team = format!("T{}", i % 20);
                let user = format!("U{i}");
                store
                    .save(&workspace_installation(&team, &user, at(i)))
                    .await?;
                let query = InstallationQuery::team(team.as_str()).user(user.as_str());
                let found = store.find_installation(&query).await?;
                let bot = store.find_bot(&query).await?;
                Ok::<_, StoreError>((found, bot))
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let (found, bot) = task.await.unwrap().unwrap();
        assert_eq!(found.unwrap().user_id.as_str(), format!("U{i}"));
        assert!(bot.is_some());
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM slack_installations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 200);
    // Each workspace's latest bot is its newest save (i = 180..199).
    let bot = store
        .find_bot(&InstallationQuery::team("T7"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bot.bot_token.secret(), "xoxb-T7-U187");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_many_concurrent_consumes_wins() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = Arc::new(schema.store().await);
    let state = store.issue(at(600)).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let store = Arc::clone(&store);
            let state = StateValue::new(state.secret());
            tokio::spawn(async move { store.consume(&state, at(0)).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_eight_lease_contenders_wins() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = Arc::new(schema.store().await);
    // Several rounds: an empty table (racing inserts) and an expired lease (racing updates).
    let ttl = std::time::Duration::from_millis(150);
    for round in 0..5 {
        if round > 0 {
            // The previous round's lease must have expired (PostgreSQL's clock decides).
            tokio::time::sleep(ttl + std::time::Duration::from_millis(100)).await;
        }
        let tasks: Vec<_> = (0..8)
            .map(|holder| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .try_acquire_lease("rotate:T1", &format!("holder-{holder}"), ttl)
                        .await
                })
            })
            .collect();
        let mut holders = 0;
        for task in tasks {
            if task.await.unwrap().unwrap().is_held() {
                holders += 1;
            }
        }
        assert_eq!(holders, 1, "round {round}");
    }
    store.close().await;
}
