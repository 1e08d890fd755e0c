//! Fake bot services on 127.0.0.1: a webhook bot and an OpenAI-compatible model.

#![allow(dead_code)] // Each module uses a different subset of fakes.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::stream;
use serde_json::{Value, json};
use tokio::sync::Notify;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a test port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the fake serves");
    });
    format!("http://{address}")
}

/// A webhook bot answering `re: <text>`; with `hold_first` it never answers the
/// first request, as a bot that is still thinking when the server dies.
#[derive(Clone, Default)]
pub(crate) struct WebhookBot {
    /// `(delivery id, message text)` of every request, in arrival order.
    pub(crate) requests: Arc<Mutex<Vec<(String, String)>>>,
    /// Woken at every request.
    pub(crate) arrived: Arc<Notify>,
    hold_first: bool,
}

impl WebhookBot {
    /// Serves the bot and returns it with its URL.
    pub(crate) async fn start(hold_first: bool) -> (Self, String) {
        let bot = Self {
            hold_first,
            ..Self::default()
        };
        let router = Router::new()
            .route("/hook", post(webhook))
            .with_state(bot.clone());
        let url = format!("{}/hook", serve(router).await);
        (bot, url)
    }

    pub(crate) fn requests(&self) -> Vec<(String, String)> {
        self.requests.lock().expect("not poisoned").clone()
    }

    /// Waits until at least `count` requests arrived.
    pub(crate) async fn wait_for_requests(&self, count: usize) {
        let waiting = async {
            loop {
                let notified = self.arrived.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.requests().len() >= count {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(crate::helpers::PATIENCE, waiting)
            .await
            .expect("the bot was called in time");
    }
}

async fn webhook(State(bot): State<WebhookBot>, headers: HeaderMap, body: Bytes) -> Response {
    let payload: Value = serde_json::from_slice(&body).expect("a JSON event");
    let delivery = headers
        .get("x-confab-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = payload["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let first = {
        let mut requests = bot.requests.lock().expect("not poisoned");
        requests.push((delivery, text.clone()));
        requests.len() == 1
    };
    bot.arrived.notify_waiters();
    if bot.hold_first && first {
        futures::future::pending::<()>().await;
    }
    Json(json!({"content": format!("re: {text}")})).into_response()
}

/// An OpenAI-compatible model that streams the words of `reply`, one per chunk.
pub(crate) async fn model(reply: &'static str) -> String {
    let router = Router::new().route(
        "/v1/chat/completions",
        post(move |Json(_): Json<Value>| async move {
            let mut events: Vec<Result<Bytes, std::io::Error>> = reply
                .split_inclusive(' ')
                .map(|word| {
                    let chunk = json!({"choices": [{"index": 0, "delta": {"content": word}}]});
                    Ok(Bytes::from(format!("data: {chunk}\n\n")))
                })
                .collect();
            events.push(Ok(Bytes::from("data: [DONE]\n\n")));
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(stream::iter(events)),
            )
        }),
    );
    format!("{}/v1", serve(router).await)
}
