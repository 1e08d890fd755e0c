//! Health, routing (unknown paths and methods, the `/api` prefix) and the OpenAPI
//! document.

use axum::http::{Method, header};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_needs_no_token() {
    let app = spawn_app().await;
    let response = app.healthz().await;
    assert_eq!(response.assert_status(200), &json!({"status": "ok"}));
}

#[tokio::test]
async fn an_unknown_route_is_a_not_found_problem() {
    let app = spawn_app().await;
    app.call(Method::GET, "/nothing/here", None, None)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_is_a_method_not_allowed_problem() {
    let app = spawn_app().await;
    for uri in ["/conversations/start", "/api/conversations/start"] {
        let response = app.call(Method::GET, uri, None, None).await;
        response.assert_problem(405, "method_not_allowed");
        assert_eq!(response.headers[header::ALLOW], "POST");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_with_bearer_security() {
    let app = spawn_app().await;
    let response = app.openapi().await;
    let doc = response.assert_status(200);
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let expected = [
        ("/conversations/start", "post"),
        ("/conversations/{id}/messages", "post"),
        ("/conversations/{id}/history", "get"),
        ("/conversations", "get"),
        ("/conversations/{id}", "get"),
        ("/conversations/{id}", "patch"),
        ("/conversations/{id}", "delete"),
        ("/bots", "get"),
        ("/bots/{id}", "get"),
        ("/auth/guest", "post"),
        ("/healthz", "get"),
        ("/openapi.json", "get"),
    ];
    let public = ["/auth/guest", "/healthz", "/openapi.json"];
    for (path, method) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let secured = operation["security"] == json!([{"bearer": []}]);
        assert_eq!(secured, !public.contains(&path), "{method} {path} security");
        if secured {
            assert_eq!(
                operation["responses"]["401"]["$ref"], "#/components/responses/Unauthorized",
                "{method} {path}"
            );
        }
    }
    let problem =
        &doc["components"]["responses"]["NotFound"]["content"]["application/problem+json"];
    assert_eq!(problem["schema"]["$ref"], "#/components/schemas/Problem");
    assert_eq!(
        doc,
        &serde_json::to_value(confab_api_axum::openapi()).expect("json")
    );
}
