//! Query-plan checks against a real server (`TEST_DATABASE_URL`): every "latest" lookup reads an
//! index in order, with no sort, for present and missing orgs and teams, in generic and custom
//! plans.

use sqlx::{Connection, Executor, PgConnection};

use super::installation::{FIND_BOT, FIND_INSTALLATION, FIND_USER_INSTALLATION};
use super::PostgresStore;

#[tokio::test]
async fn latest_lookups_scan_an_index_without_sorting() {
    let Some(url) = super::test_database_url() else {
        return;
    };
    let schema = format!("slack_oauth_test_{:016x}", rand::random::<u64>());
    println!("postgres test schema: {schema} (kept if the test fails)");
    let store = PostgresStore::connect_in_schema(&url, "111.222", &schema)
        .await
        .unwrap();
    let mut conn = store.pool().acquire().await.unwrap();
    // 20,000 workspaces, one in ten in an org, one in a hundred org-wide; five versions each.
    conn.execute(
        "INSERT INTO slack_installations (client_id, app_id, enterprise_id, team_id, bot_token, \
           user_id, is_enterprise_install, installed_at) \
         SELECT '111.222', 'A1', CASE WHEN g % 10 = 0 THEN 'E' || g END, \
           CASE WHEN g % 100 <> 0 THEN 'T' || g END, 'plan-test-bot-' || g, 'U' || (g % 7), \
           g % 100 = 0, timestamp '2026-01-01' + v * interval '1 day' \
         FROM generate_series(1, 20000) g, generate_series(1, 5) v; \
         INSERT INTO slack_bots (client_id, app_id, enterprise_id, team_id, bot_token, \
           is_enterprise_install, installed_at) \
         SELECT client_id, app_id, enterprise_id, team_id, bot_token, is_enterprise_install, \
           installed_at FROM slack_installations; \
         ANALYZE slack_installations; ANALYZE slack_bots;",
    )
    .await
    .unwrap();
    let cases = [
        ("find_bot", &*FIND_BOT, "(text, text, text)"),
        (
            "find_installation",
            &*FIND_INSTALLATION,
            "(text, text, text)",
        ),
        (
            "find_user",
            &*FIND_USER_INSTALLATION,
            "(text, text, text, text)",
        ),
    ];
    let keys = [
        "'111.222', NULL, 'T11'",
        "'111.222', 'E10', 'T10'",
        "'111.222', 'E100', NULL",
    ];
    for (name, sql, types) in cases {
        conn.execute(&*format!("PREPARE {name} {types} AS {sql}"))
            .await
            .unwrap();
        for mode in ["force_generic_plan", "force_custom_plan"] {
            conn.execute(&*format!("SET plan_cache_mode = {mode}"))
                .await
                .unwrap();
            for key in keys {
                let args = if name == "find_user" {
                    format!("{key}, 'U1'")
                } else {
                    key.to_owned()
                };
                let plan: Vec<String> =
                    sqlx::query_scalar(&format!("EXPLAIN EXECUTE {name}({args})"))
                        .fetch_all(&mut *conn)
                        .await
                        .unwrap();
                let plan = plan.join("\n");
                assert!(!plan.contains("Sort"), "{name} {mode} {key}:\n{plan}");
                assert!(!plan.contains("Seq Scan"), "{name} {mode} {key}:\n{plan}");
                assert!(plan.contains("_latest_idx"), "{name} {mode} {key}:\n{plan}");
            }
        }
    }
    drop(conn);
    store.close().await;
    let mut admin = PgConnection::connect(&url).await.unwrap();
    admin
        .execute(&*format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
