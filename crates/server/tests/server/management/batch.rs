//! `POST /conversations/batch`: one result per id in request order, others' and
//! unknown ids `not_found`, `status` events to subscribed sockets, limits, and the
//! administrators' batch by filter with its dry run.

use serde_json::{Value, json};

use crate::helpers::{Backend, admin, spawn_app, user};
use crate::management::helpers::{at, plus};

crate::on_every_backend!(
    a_batch_reports_each_id_in_order_and_tells_subscribed_sockets,
    a_batch_names_one_to_a_hundred_ids,
    administrators_act_by_filter_after_a_dry_run,
    a_filter_batch_pages_through_many_conversations,
);

async fn a_batch_reports_each_id_in_order_and_tells_subscribed_sockets(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = user("alice");
    let bob = user("bob");
    let first = app.started(&alice, "echo").await;
    let second = app.started(&alice, "echo").await;
    let bobs = app.started(&bob, "echo").await;
    let unknown = "0193a0f0-0000-7000-8000-000000000001";
    let id = |c: &Value| c["conversation_id"].as_str().unwrap().to_owned();
    let mut socket = app.ws(&alice).await;
    socket
        .subscribe(first["session_id"].as_str().unwrap())
        .await;

    let response = app
        .batch(
            &alice,
            json!({ "action": "archive", "ids": [id(&first), id(&bobs), unknown, id(&second)] }),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "results": [
            { "id": id(&first), "status": "ok" },
            { "id": id(&bobs), "status": "not_found" },
            { "id": unknown, "status": "not_found" },
            { "id": id(&second), "status": "ok" },
        ]})
    );
    let event = socket.next_of("status").await;
    assert_eq!(event["conversation_id"], id(&first));
    assert_eq!(event["status"], "archived");
    assert_eq!(
        app.status_of(&alice, &id(&second)).await.unwrap(),
        "archived"
    );
    assert_eq!(app.status_of(&bob, &id(&bobs)).await.unwrap(), "active");

    let response = app
        .batch(&alice, json!({ "action": "delete", "ids": [id(&first)] }))
        .await;
    assert_eq!(response.status(), 200);
    let event = socket.next_of("status").await;
    assert_eq!(event["status"], "deleted");
    assert_eq!(app.status_of(&alice, &id(&first)).await, None);
    app.stop().await;
}

async fn a_batch_names_one_to_a_hundred_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = user("alice");
    let many: Vec<String> = (0..101)
        .map(|n| format!("0193a0f0-0000-7000-8000-{n:012}"))
        .collect();
    for body in [
        json!({ "action": "archive", "ids": [] }),
        json!({ "action": "archive", "ids": many }),
        json!({ "action": "archive", "ids": ["not-a-uuid"] }),
        json!({ "action": "shred", "ids": [many[0]] }),
        json!({ "action": "archive" }),
    ] {
        let response = app.batch(&alice, body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "invalid_request");
    }
    let response = app
        .batch(&alice, json!({ "action": "archive", "ids": &many[..100] }))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"].as_array().unwrap().len(), 100);
    app.stop().await;
}

async fn administrators_act_by_filter_after_a_dry_run(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = user("alice");
    let bob = user("bob");
    let admin = admin();
    let alices = app.started(&alice, "echo").await;
    let bobs = app.started(&bob, "echo").await;
    let filter = json!({ "action": "archive", "filter": { "bot_id": "echo", "status": "active" } });

    let response = app.batch(&alice, filter.clone()).await;
    assert_eq!(response.status(), 403);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "forbidden");

    let mut dry = filter.clone();
    dry["dry_run"] = json!(true);
    let response = app.batch(&admin, dry).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "matched": 2, "changed": 0, "dry_run": true }));
    let id = |c: &Value| c["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(app.status_of(&alice, &id(&alices)).await.unwrap(), "active");

    let response = app.batch(&admin, filter).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "matched": 2, "changed": 2, "dry_run": false })
    );
    assert_eq!(
        app.status_of(&alice, &id(&alices)).await.unwrap(),
        "archived"
    );
    assert_eq!(app.status_of(&bob, &id(&bobs)).await.unwrap(), "archived");
    app.stop().await;
}

/// More conversations than two pages of the selection walk (200 each).
const MANY: i64 = 450;

async fn a_filter_batch_pages_through_many_conversations(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin();
    let long_ago = at("2025-01-01T00:00:00Z");
    for n in 0..MANY {
        app.seed_conversation(&format!("user{n}"), "echo", plus(long_ago, n))
            .await;
    }
    let recent = app.started(&user("alice"), "echo").await;
    let filter = json!({ "inactive_before": "2025-06-01T00:00:00Z" });

    let response = app
        .batch(
            &admin,
            json!({ "action": "delete", "filter": filter, "dry_run": true }),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["matched"], MANY);

    let response = app
        .batch(&admin, json!({ "action": "delete", "filter": filter }))
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "matched": MANY, "changed": MANY, "dry_run": false })
    );

    let response = app
        .batch(
            &admin,
            json!({ "action": "delete", "filter": filter, "dry_run": true }),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["matched"], 0);
    let id = recent["conversation_id"].as_str().unwrap();
    assert_eq!(app.status_of(&user("alice"), id).await.unwrap(), "active");
    app.stop().await;
}
