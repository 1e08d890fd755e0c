//! `GET /search` over real HTTP on both backends: a user finds their own messages
//! with highlighted snippets and pages through them, never another user's; an
//! admin finds everyone's; a deleted conversation is gone from the results; and a
//! query that cannot be searched is a 400 with the reason.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, admin, spawn_app, user};
use crate::on_every_backend;

on_every_backend!(
    search_finds_the_callers_messages_with_snippets_and_pages,
    search_refuses_what_it_cannot_search_with_the_reason,
);

async fn search(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get(token, &format!("/search?{query}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("a results body")
}

fn contents(results: &Value) -> Vec<&str> {
    results["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|hit| hit["message"]["content"].as_str().expect("content"))
        .collect()
}

async fn say(app: &TestApp, token: &str, conversation: &str, text: &str) {
    let sent = app
        .send(token, conversation, json!({ "content": text }))
        .await;
    assert_eq!(sent.status(), 201);
}

async fn search_finds_the_callers_messages_with_snippets_and_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ana, bo) = (user("ana"), user("bo"));
    // The `demo` bot answers with its own words, so only the users' messages match.
    let anas = app.started(&ana, "demo").await["conversation_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let bos = app.started(&bo, "demo").await["conversation_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    say(&app, &ana, &anas, "My parcel is late").await;
    say(&app, &ana, &anas, "Where is my PARCEL?").await;
    say(&app, &ana, &anas, "parcels everywhere").await;
    say(&app, &bo, &bos, "bo's parcel").await;

    let found = search(&app, &ana, "q=parcel").await;
    assert_eq!(
        contents(&found),
        ["Where is my PARCEL?", "My parcel is late"]
    );
    assert_eq!(found["results"][0]["conversation_id"], anas.as_str());
    assert_eq!(
        found["results"][1]["snippet"],
        json!([
            {"text": "My ", "highlight": false},
            {"text": "parcel", "highlight": true},
            {"text": " is late", "highlight": false},
        ])
    );
    assert!(found["next_cursor"].is_null());

    let first = search(&app, &ana, "q=parcel&limit=1").await;
    assert_eq!(contents(&first), ["Where is my PARCEL?"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = search(&app, &ana, &format!("q=parcel&limit=1&cursor={cursor}")).await;
    assert_eq!(contents(&second), ["My parcel is late"]);
    assert!(second["next_cursor"].is_null());

    let everyone = search(&app, &admin(), "q=parcel").await;
    assert_eq!(contents(&everyone).len(), 3);
    assert_eq!(
        contents(&search(&app, &bo, "q=late").await),
        Vec::<&str>::new()
    );

    assert_eq!(app.delete(&ana, &anas).await.status(), 204);
    assert_eq!(
        contents(&search(&app, &ana, "q=parcel").await),
        Vec::<&str>::new()
    );
    assert_eq!(
        contents(&search(&app, &admin(), "q=parcel").await),
        ["bo's parcel"]
    );
    app.stop().await;
}

async fn search_refuses_what_it_cannot_search_with_the_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    let ana = user("ana");
    for query in [
        "q=",
        "q=%21%3F",
        "q=a+b+c+d+e+f+g+h+i",
        "q=pizza&cursor=nonsense",
        "q=pizza&order=rank&cursor=t1764000000000_0193a0f000007000800000000000001a",
        "q=pizza&limit=51",
        "",
    ] {
        let response = app.get(&ana, &format!("/search?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let problem: Value = response.json().await.expect("a problem");
        assert_eq!(problem["code"], "invalid_request", "{query}");
    }
    app.stop().await;
}
