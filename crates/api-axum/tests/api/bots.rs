//! The bots a user can talk to, and what a failing bot registry answers.

use std::sync::Arc;

use confab_api_axum::ApiConfig;
use confab_domain::error::RepoError;
use confab_domain::ports::MockBotRepository;
use confab_domain::testing::{ScriptedEngine, TestPorts};

use crate::helpers::{app_over, spawn_app};

#[tokio::test]
async fn bots_are_listed_and_fetched_by_id() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let list = app.bots(&token).await;
    let body = list.assert_status(200);
    let ids: Vec<&str> = body["bots"]
        .as_array()
        .expect("bots")
        .iter()
        .map(|b| b["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["echo", "support"]);
    assert_eq!(body["bots"][0]["kind"], "echo");
    assert_eq!(body["bots"][0]["name"], "echo");
    assert!(body["bots"][0]["description"].is_string());

    let one = app.bot(&token, "support").await;
    assert_eq!(one.assert_status(200)["id"], "support");
    app.bot(&token, "nobody")
        .await
        .assert_problem(404, "not_found");
    app.bot(&token, "Bad%20Id")
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn storage_that_is_down_answers_503_unavailable() {
    let ports = TestPorts::with_engine(ScriptedEngine::echo());
    let mut mock = MockBotRepository::new();
    mock.expect_list()
        .returning(|| Err(RepoError::Unavailable("connection refused".into())));
    let mut ports_with_mock = ports.clone();
    ports_with_mock.ports.bots = Arc::new(mock);
    let app = app_over(ports_with_mock, ApiConfig::default());
    let token = app.token_for("alice");
    let response = app.bots(&token).await;
    response.assert_problem(503, "unavailable");
    assert!(!response.str("detail").contains("connection refused"));
}

#[tokio::test]
async fn a_storage_failure_answers_500_saying_only_internal_error() {
    let ports = TestPorts::with_engine(ScriptedEngine::echo());
    let mut mock = MockBotRepository::new();
    mock.expect_list()
        .returning(|| Err(RepoError::Internal("no such table: bots".into())));
    let mut ports_with_mock = ports.clone();
    ports_with_mock.ports.bots = Arc::new(mock);
    let app = app_over(ports_with_mock, ApiConfig::default());
    let token = app.token_for("alice");
    let response = app.bots(&token).await;
    response.assert_problem(500, "internal");
    assert_eq!(response.body["detail"], "internal error");
}
