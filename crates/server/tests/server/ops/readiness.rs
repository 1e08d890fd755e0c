//! `/readyz` through a PostgreSQL outage: 503 while the database is gone, 200 once it
//! is back and migrated; a message sent meanwhile gets 503 `unavailable`, never an
//! acknowledgement for something that was not stored.

use confab_storage_seaorm::testing::postgres_temp;
use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};

use crate::helpers::{TestDatabase, postgres_url, spawn_app_on};

async fn admin_sql(admin_url: &str, sql: &str) {
    let admin = confab_storage_seaorm::connect(admin_url).await.unwrap();
    admin.execute_unprepared(sql).await.unwrap();
    admin.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_database_through_an_outage() {
    if !crate::helpers::postgres_configured() {
        return;
    }
    let admin_url = postgres_url().expect("CONFAB_TEST_POSTGRES_URL");
    let database = postgres_temp(&admin_url).await.unwrap();
    let (url, name) = (database.url().to_owned(), database.name().to_owned());
    database.connection().clone().close().await.unwrap();
    let app = spawn_app_on(TestDatabase::at(&url), |_| {}).await;
    let token = app.guest_token().await;
    let started = app.started(&token, "echo").await;
    let conversation = started["conversation_id"].as_str().unwrap();
    assert_eq!(app.get_public("/readyz").await.status(), 200);

    // The outage: the database disappears, every connection to it is ended.
    database.drop_database().await.unwrap();
    let response = app.get_public("/readyz").await;
    assert_eq!(response.status(), 503);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "unavailable");
    let void = json!({ "content": "into the void" });
    let response = app.send(&token, conversation, void).await;
    assert_eq!(response.status(), 503);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "unavailable");

    // Back, but empty: not ready until migrated.
    admin_sql(&admin_url, &format!("CREATE DATABASE \"{name}\"")).await;
    assert_eq!(app.get_public("/readyz").await.status(), 503);
    let db = confab_storage_seaorm::connect(&url).await.unwrap();
    confab_storage_seaorm::migrate(&db).await.unwrap();
    db.close().await.unwrap();
    assert_eq!(app.get_public("/readyz").await.status(), 200);
    app.stop().await;
    admin_sql(
        &admin_url,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .await;
}
