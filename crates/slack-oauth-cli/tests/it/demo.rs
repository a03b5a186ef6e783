//! `slack-oauth demo`: the printed install URL works end to end through the approve form, and
//! `installations list` finds the result without a client id.

use crate::support::{command, run, stderr, stdout, Spawned};

/// The `value` of the hidden input `name` in the emulator's approve form.
fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = start + page[start..].find('"')?;
    Some(page[start..end].replace("&amp;", "&"))
}

#[tokio::test]
async fn demo_installs_through_the_approve_page() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let demo = Spawned::start(command().arg("demo").env("DATABASE_URL", &database_url));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let install = http
        .get(format!("{}/slack/install", demo.url))
        .send()
        .await
        .unwrap();
    let cookie = install.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = install.text().await.unwrap();
    let start = page.find(" href=\"http").unwrap() + 7;
    let authorize = page[start..start + page[start..].find('"').unwrap()].replace("&amp;", "&");

    // Auto-approve is off: the emulator shows its approve page.
    let approve_page = http.get(&authorize).send().await.unwrap();
    assert_eq!(approve_page.status(), 200);
    let approve_page = approve_page.text().await.unwrap();
    assert!(approve_page.contains("id=\"approve\""));
    let fields: Vec<(String, String)> = ["client_id", "scope", "state", "redirect_uri"]
        .iter()
        .filter_map(|name| hidden(&approve_page, name).map(|v| ((*name).to_owned(), v)))
        .collect();
    let emulator = &authorize[..authorize.find("/oauth/v2/authorize").unwrap()];
    let approved = http
        .post(format!("{emulator}/oauth/v2/authorize/approve"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 302);
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    let done = http
        .get(&callback)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("Thank you!"));

    let listed = run(command()
        .args(["installations", "list", "--json"])
        .env("DATABASE_URL", &database_url));
    assert!(listed.status.success(), "{}", stderr(&listed));
    let list: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["team_id"], "T0EMULATOR");
    assert_eq!(demo.terminate().code(), Some(0));
}
