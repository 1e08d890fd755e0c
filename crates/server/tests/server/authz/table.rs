//! The table: one row per operation of the OpenAPI document, saying who may call it,
//! a call that succeeds for that caller, and what an attacker (a real guest) tries
//! with the victim's ids or an administrator's powers, with the answer each must
//! get. A row for an operation the document lacks, or an operation without a row,
//! fails `every_operation_of_the_document_has_a_row`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::authz::fixture::{Call, Fixture};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Any valid token; what the call touches must be the caller's own. Its row's
    /// call is made by the victim.
    User,
    /// Administrators only; anyone else gets 403.
    Admin,
}

/// One attempt of the attacker's, and what it must get.
pub struct Intrusion {
    /// What it tries, for failure messages.
    pub what: String,
    /// The call and the status it must get.
    pub call: Call,
    /// A check of the answer's JSON beyond its status.
    pub check: Option<fn(&Fixture, &Value)>,
}

/// One row: an operation of the document and how to call it.
pub struct Row {
    pub method: Method,
    /// The path as the document writes it.
    pub path: &'static str,
    pub access: Access,
    /// A call that succeeds for the row's rightful caller (the victim, an
    /// administrator, or anyone for a public route). It is made last, after the
    /// refusals, so that it also shows the refused calls were well-formed.
    pub call: fn(&Fixture) -> Call,
    /// The attacker's attempts with the victim's ids (for an administrators' row,
    /// the row's own call by the attacker and by the victim is added: both 403).
    pub intrusions: fn(&Fixture) -> Vec<Intrusion>,
}

impl Row {
    /// `METHOD /path`, as failure messages name an operation.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Routes the server serves that the document does not describe, with how they are
/// checked: the web page is public, `/ws` is checked by `the_websocket_refuses_…`.
pub const OUTSIDE_THE_DOCUMENT: [(&str, &str); 4] = [
    ("GET", "/"),
    ("GET", "/app.js"),
    ("GET", "/app.css"),
    ("GET", "/ws"),
];

fn none(_: &Fixture) -> Vec<Intrusion> {
    Vec::new()
}

/// The same call with each of the victim's ids in the path: always 404.
fn with_foreign_ids(
    fixture: &Fixture,
    call: impl Fn(&str) -> Call,
) -> std::vec::IntoIter<Intrusion> {
    fixture
        .foreign_ids()
        .into_iter()
        .map(move |(what, id)| Intrusion {
            what: format!("with {what}"),
            call: Call {
                status: 404,
                ..call(id)
            },
            check: None,
        })
        .collect::<Vec<_>>()
        .into_iter()
}

fn intrusion(what: &str, call: Call) -> Intrusion {
    Intrusion {
        what: what.to_owned(),
        call,
        check: None,
    }
}

fn lists_nothing_of_the_victims(fixture: &Fixture, answer: &Value) {
    let ids: Vec<&str> = answer["conversations"]
        .as_array()
        .expect("a conversation list")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(
        !ids.contains(&fixture.conversation.as_str()),
        "the attacker's list holds the victim's conversation: {answer}"
    );
}

fn every_result_not_found(_: &Fixture, answer: &Value) {
    let results = answer["results"].as_array().expect("batch results");
    assert!(!results.is_empty());
    for result in results {
        assert_eq!(result["status"], "not_found", "batch result {result}");
    }
}

/// The victim's reply rated through their conversation, and through the stranger's
/// own: both 404.
fn feedback_intrusions(fixture: &Fixture, body: Option<Value>) -> Vec<Intrusion> {
    [&fixture.conversation, &fixture.own_conversation]
        .into_iter()
        .map(|conversation| {
            let call = Call::new(
                format!(
                    "/conversations/{conversation}/messages/{}/feedback",
                    fixture.reply
                ),
                404,
            );
            intrusion(
                "the victim's reply",
                match &body {
                    Some(body) => call.with_body(body.clone()),
                    None => call,
                },
            )
        })
        .collect()
}

/// Every operation of the document, in its order.
pub fn rows() -> Vec<Row> {
    vec![
        // The agents' routes: admins are agents too, and everyone else is refused
        // (agent tokens are checked by the handoff tests).
        Row {
            method: Method::GET,
            path: "/agent/conversations",
            access: Access::Admin,
            call: |_| Call::new("/agent/conversations", 200),
            intrusions: none,
        },
        Row {
            method: Method::POST,
            path: "/agent/conversations/{id}/claim",
            access: Access::Admin,
            // Nobody asked for a person: well-formed and allowed, and still refused.
            call: |f| {
                Call::new(
                    format!("/agent/conversations/{}/claim", f.conversation),
                    409,
                )
            },
            intrusions: none,
        },
        Row {
            method: Method::POST,
            path: "/agent/conversations/{id}/release",
            access: Access::Admin,
            // With its bot already: a release changes nothing and says so.
            call: |f| {
                Call::new(
                    format!("/agent/conversations/{}/release", f.conversation),
                    200,
                )
            },
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/agent/queue",
            access: Access::Admin,
            call: |_| Call::new("/agent/queue", 200),
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/analytics/summary",
            access: Access::Admin,
            call: |f| Call::new(format!("/analytics/summary?bot_id={}", f.bot), 200),
            intrusions: none,
        },
        Row {
            method: Method::POST,
            path: "/auth/guest",
            access: Access::Public,
            call: |_| Call::new("/auth/guest", 201).with_body(json!({})),
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/bots",
            access: Access::User,
            call: |_| Call::new("/bots", 200),
            // The registry is shared: every user sees every bot.
            intrusions: none,
        },
        Row {
            method: Method::POST,
            path: "/bots",
            access: Access::Admin,
            call: |f| {
                Call::new("/bots", 201)
                    .with_body(json!({ "id": f.new_bot, "name": "New", "kind": "echo" }))
            },
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/bots/{id}",
            access: Access::User,
            call: |f| Call::new(format!("/bots/{}", f.bot), 200),
            intrusions: none,
        },
        Row {
            method: Method::DELETE,
            path: "/bots/{id}",
            access: Access::Admin,
            call: |f| Call::new(format!("/bots/{}", f.bot), 204),
            intrusions: none,
        },
        Row {
            method: Method::PATCH,
            path: "/bots/{id}",
            access: Access::Admin,
            call: |f| {
                Call::new(format!("/bots/{}", f.bot), 200)
                    .with_body(json!({ "name": "Renamed", "kind": "echo" }))
            },
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/webhooks",
            access: Access::Admin,
            call: |_| Call::new("/webhooks", 200),
            intrusions: none,
        },
        Row {
            method: Method::POST,
            path: "/webhooks",
            access: Access::Admin,
            call: |_| {
                Call::new("/webhooks", 201).with_body(json!({
                    "url": "http://127.0.0.1:9/authz",
                    "events": ["message.created"],
                    "secret_env": "PATH",
                }))
            },
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/webhooks/{id}",
            access: Access::Admin,
            call: |f| Call::new(format!("/webhooks/{}", f.webhook), 200),
            intrusions: none,
        },
        Row {
            method: Method::PATCH,
            path: "/webhooks/{id}",
            access: Access::Admin,
            call: |f| {
                Call::new(format!("/webhooks/{}", f.webhook), 200)
                    .with_body(json!({ "description": "changed" }))
            },
            intrusions: none,
        },
        Row {
            method: Method::DELETE,
            path: "/webhooks/{id}",
            access: Access::Admin,
            call: |f| Call::new(format!("/webhooks/{}", f.webhook), 204),
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/webhooks/{id}/deliveries",
            access: Access::Admin,
            call: |f| Call::new(format!("/webhooks/{}/deliveries", f.webhook), 200),
            intrusions: none,
        },
        Row {
            method: Method::POST,
            path: "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            access: Access::Admin,
            call: |f| {
                Call::new(
                    format!(
                        "/webhooks/{}/deliveries/{}/redeliver",
                        f.webhook, f.delivery
                    ),
                    200,
                )
            },
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/conversations",
            access: Access::User,
            call: |_| Call::new("/conversations?limit=100", 200),
            intrusions: |f| {
                [
                    "/conversations?limit=100".to_owned(),
                    format!("/conversations?limit=100&bot_id={}", f.bot),
                    "/conversations?limit=100&bot_id=echo".to_owned(),
                ]
                .into_iter()
                .map(|path| Intrusion {
                    what: format!("listing {path}"),
                    call: Call::new(path, 200),
                    check: Some(lists_nothing_of_the_victims),
                })
                .collect()
            },
        },
        Row {
            method: Method::POST,
            path: "/conversations/batch",
            access: Access::User,
            call: |f| {
                Call::new("/conversations/batch", 200)
                    .with_body(json!({ "action": "archive", "ids": [f.conversation] }))
            },
            intrusions: |f| {
                let ids: Vec<&str> = f.foreign_ids().iter().map(|(_, id)| *id).collect();
                let mut attempts: Vec<Intrusion> = ["archive", "unarchive", "delete"]
                    .into_iter()
                    .map(|action| Intrusion {
                        what: format!("{action} of the victim's ids"),
                        call: Call::new("/conversations/batch", 200)
                            .with_body(json!({ "action": action, "ids": ids })),
                        check: Some(every_result_not_found),
                    })
                    .collect();
                for dry_run in [false, true] {
                    attempts.push(intrusion(
                        "a delete by filter, an administrator's power",
                        Call::new("/conversations/batch", 403).with_body(json!({
                            "action": "delete",
                            "filter": { "bot_id": f.bot },
                            "dry_run": dry_run,
                        })),
                    ));
                }
                attempts
            },
        },
        Row {
            method: Method::POST,
            path: "/conversations/start",
            access: Access::User,
            call: |f| Call::new("/conversations/start", 201).with_body(json!({ "bot_id": f.bot })),
            // It names no conversation: what it starts is the caller's own.
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/conversations/{id}",
            access: Access::User,
            call: |f| Call::new(format!("/conversations/{}", f.conversation), 200),
            intrusions: |f| {
                with_foreign_ids(f, |id| Call::new(format!("/conversations/{id}"), 404)).collect()
            },
        },
        Row {
            method: Method::DELETE,
            path: "/conversations/{id}",
            access: Access::User,
            call: |f| Call::new(format!("/conversations/{}", f.conversation), 204),
            intrusions: |f| {
                with_foreign_ids(f, |id| Call::new(format!("/conversations/{id}"), 404)).collect()
            },
        },
        Row {
            method: Method::PATCH,
            path: "/conversations/{id}",
            access: Access::User,
            call: |f| {
                Call::new(format!("/conversations/{}", f.conversation), 200)
                    .with_body(json!({ "status": "archived", "title": "renamed" }))
            },
            intrusions: |f| {
                with_foreign_ids(f, |id| {
                    Call::new(format!("/conversations/{id}"), 404).with_body(json!({
                        "status": "archived",
                        "title": "taken",
                        "metadata": { "owner": "attacker" },
                    }))
                })
                .collect()
            },
        },
        Row {
            method: Method::GET,
            path: "/conversations/{id}/events",
            access: Access::User,
            call: |f| Call::new(format!("/conversations/{}/events", f.conversation), 200),
            intrusions: |f| {
                with_foreign_ids(f, |id| {
                    Call::new(format!("/conversations/{id}/events?after_seq=0"), 404)
                })
                .chain(with_foreign_ids(f, |id| {
                    Call::new(format!("/conversations/{id}/events"), 404)
                }))
                .collect()
            },
        },
        Row {
            method: Method::GET,
            path: "/conversations/{id}/export",
            access: Access::User,
            call: |f| Call::new(format!("/conversations/{}/export", f.conversation), 200),
            intrusions: |f| {
                with_foreign_ids(f, |id| {
                    Call::new(format!("/conversations/{id}/export"), 404)
                })
                .chain(with_foreign_ids(f, |id| {
                    Call::new(format!("/conversations/{id}/export?format=csv"), 404)
                }))
                .collect()
            },
        },
        Row {
            method: Method::PUT,
            path: "/conversations/{id}/messages/{message_id}/feedback",
            access: Access::User,
            call: |f| {
                Call::new(
                    format!(
                        "/conversations/{}/messages/{}/feedback",
                        f.conversation, f.reply
                    ),
                    200,
                )
                .with_body(json!({ "rating": "up" }))
            },
            intrusions: |f| feedback_intrusions(f, Some(json!({ "rating": "down" }))),
        },
        Row {
            method: Method::DELETE,
            path: "/conversations/{id}/messages/{message_id}/feedback",
            access: Access::User,
            call: |f| {
                Call::new(
                    format!(
                        "/conversations/{}/messages/{}/feedback",
                        f.conversation, f.reply
                    ),
                    204,
                )
            },
            intrusions: |f| feedback_intrusions(f, None),
        },
        Row {
            method: Method::POST,
            path: "/conversations/{id}/handoff",
            access: Access::User,
            call: |f| Call::new(format!("/conversations/{}/handoff", f.conversation), 200),
            intrusions: |f| {
                with_foreign_ids(f, |id| {
                    Call::new(format!("/conversations/{id}/handoff"), 404)
                })
                .collect()
            },
        },
        Row {
            method: Method::GET,
            path: "/conversations/{id}/history",
            access: Access::User,
            call: |f| Call::new(format!("/conversations/{}/history", f.conversation), 200),
            intrusions: |f| {
                let (c, own, m) = (&f.conversation, &f.own_conversation, &f.message);
                let mut attempts: Vec<Intrusion> = with_foreign_ids(f, |id| {
                    Call::new(format!("/conversations/{id}/history"), 404)
                })
                .collect();
                attempts.push(intrusion(
                    "the victim's conversation from the victim's message",
                    Call::new(format!("/conversations/{c}/history?before={m}"), 404),
                ));
                // A message id of another conversation is a bad cursor (docs/api.md),
                // whoever owns it: it must not page through the victim's messages.
                for cursor in ["after", "before"] {
                    attempts.push(intrusion(
                        &format!("the attacker's conversation {cursor} the victim's message"),
                        Call::new(format!("/conversations/{own}/history?{cursor}={m}"), 400),
                    ));
                }
                attempts
            },
        },
        Row {
            method: Method::POST,
            path: "/conversations/{id}/messages",
            access: Access::User,
            call: |f| {
                Call::new(format!("/conversations/{}/messages", f.conversation), 201)
                    .with_body(json!({ "content": "hello" }))
            },
            intrusions: |f| {
                // The victim's own content and client_message_id: an idempotent
                // replay must not hand the attacker the victim's message.
                let body = json!({ "content": f.secret, "client_message_id": f.victim.user });
                with_foreign_ids(f, |id| {
                    Call::new(format!("/conversations/{id}/messages?wait=true"), 404)
                        .with_body(body.clone())
                })
                .chain(with_foreign_ids(f, |id| {
                    Call::new(format!("/conversations/{id}/messages"), 404)
                        .with_body(json!({ "content": "hijacked" }))
                }))
                .collect()
            },
        },
        Row {
            method: Method::GET,
            path: "/exports/conversations",
            access: Access::Admin,
            call: |f| Call::new(format!("/exports/conversations?bot_id={}", f.bot), 200),
            intrusions: |f| {
                vec![intrusion(
                    "the CSV export of the victim's bot",
                    Call::new(
                        format!("/exports/conversations?bot_id={}&format=csv", f.bot),
                        403,
                    ),
                )]
            },
        },
        Row {
            method: Method::GET,
            path: "/search",
            access: Access::User,
            call: |f| Call::new(format!("/search?q={}", f.secret), 200),
            // The victim's words find nothing of theirs for anyone else.
            intrusions: |f| {
                vec![intrusion(
                    "the victim's words",
                    Call::new(format!("/search?q={}", f.secret), 200),
                )]
            },
        },
        Row {
            method: Method::GET,
            path: "/healthz",
            access: Access::Public,
            call: |_| Call::new("/healthz", 200),
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/metrics",
            access: Access::Public,
            call: |_| Call::new("/metrics", 200),
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/openapi.json",
            access: Access::Public,
            call: |_| Call::new("/openapi.json", 200),
            intrusions: none,
        },
        Row {
            method: Method::GET,
            path: "/readyz",
            access: Access::Public,
            call: |_| Call::new("/readyz", 200),
            intrusions: none,
        },
    ]
}
