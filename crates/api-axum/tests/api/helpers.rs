//! The harness: [`spawn_app`] builds the real services over the domain's in-memory
//! store and drives [`router`] request by request with `tower::ServiceExt::oneshot`;
//! [`TestApp`] has one helper per endpoint, so that each test reads like a line of
//! the contract.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use confab_api_axum::limits::{LimitSettings, Limiter, SendRate};
use confab_api_axum::shutdown::{Shutdown, ShutdownTrigger};
use confab_api_axum::{ApiConfig, AppState, Auth, router};
use confab_domain::admin::AdminService;
use confab_domain::admin::BotAdmin;
use confab_domain::ports::{MockSecretSource, MockWebhookRepository};
use confab_domain::reply::ReplySettings;
use confab_domain::service::ConversationService;
use confab_domain::testing::{ScriptedEngine, TestPorts};
use confab_domain::user::{Role, UserId};
use confab_domain::webhooks::WebhookAdmin;
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The token signing secret of every test app.
pub const SECRET: &[u8] = b"test-secret";

/// The API over fakes, with the bots `echo` and `support` registered; both answer
/// with the user's own text.
pub struct TestApp {
    pub router: Router,
    pub ports: TestPorts,
    pub auth: Arc<Auth>,
    _shutdown: ShutdownTrigger,
}

/// What a request got back.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestResponse {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts that this is a problem details response with `status` and `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.content_type(), "application/problem+json");
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["type"], format!("urn:confab:problem:{code}"));
        assert!(self.body["title"].is_string());
        assert!(self.body["detail"].is_string());
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        &self.body
    }

    pub fn str(&self, key: &str) -> String {
        self.body[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key} in {}", self.body))
            .to_owned()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ApiConfig::default()).await
}

pub async fn spawn_app_with(config: ApiConfig) -> TestApp {
    let ports = TestPorts::with_engine(ScriptedEngine::echo());
    ports.seed_bot("echo");
    ports.seed_bot("support");
    app_over(ports, config)
}

pub fn app_over(ports: TestPorts, config: ApiConfig) -> TestApp {
    let auth = Arc::new(Auth::new(SECRET));
    let (state, shutdown) = state_over(&ports, config, Arc::clone(&auth));
    TestApp {
        router: router(state),
        ports,
        auth,
        _shutdown: shutdown,
    }
}

/// The real services over `ports` (the in-memory store), no limits, and a shutdown
/// signal whose trigger the caller keeps: a dropped trigger reads as "stopping" and
/// would close every WebSocket at once.
pub fn state_over(
    ports: &TestPorts,
    config: ApiConfig,
    auth: Arc<Auth>,
) -> (AppState, ShutdownTrigger) {
    let service = Arc::new(ConversationService::new(
        ports.ports.clone(),
        ReplySettings::default(),
    ));
    let maintenance = Arc::new(ports.store.clone());
    let limiter = Limiter::new(
        LimitSettings {
            send_rate: SendRate {
                per_minute: 0,
                burst: 1,
            },
            sockets_per_user: 0,
            request_timeout: Duration::ZERO,
        },
        Arc::clone(&auth),
    );
    let (shutdown, trigger) = Shutdown::new();
    let state = AppState {
        admin: Arc::new(AdminService::new(Arc::clone(&service), maintenance.clone())),
        bot_admin: Arc::new(BotAdmin::new(Arc::clone(&service), maintenance)),
        // The in-memory store keeps no webhooks; their routes are tested in the
        // server's tests, on real storage. A call here fails the test loudly.
        webhooks: Arc::new(WebhookAdmin::new(
            Arc::new(MockWebhookRepository::new()),
            Arc::new(MockSecretSource::new()),
            ports.ports.clock.clone(),
            ports.ports.ids.clone(),
        )),
        service,
        auth,
        limiter,
        shutdown,
        config: Arc::new(config),
    };
    (state, trigger)
}

impl TestApp {
    pub async fn send_request(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{status}: body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, Body::from);
        self.send_request(request.body(body).expect("request"))
            .await
    }

    /// `POST /auth/guest` with `{}`.
    pub async fn post_guest(&self) -> TestResponse {
        self.call(Method::POST, "/auth/guest", None, Some("{}".into()))
            .await
    }

    /// A guest's token, from `POST /auth/guest`.
    pub async fn guest_token(&self) -> String {
        let response = self.post_guest().await;
        response.assert_status(201);
        response.str("token")
    }

    /// A token for `user`, signed with the app's secret.
    pub fn token_for(&self, user: &str) -> String {
        self.auth
            .issue(
                &UserId::parse(user).expect("user id"),
                &Role::User,
                Duration::from_secs(600),
            )
            .expect("token")
            .token
    }

    /// `POST /conversations/start` (`query` is the query string, e.g. `?wait=true`).
    pub async fn start(&self, token: &str, query: &str, body: Value) -> TestResponse {
        self.call(
            Method::POST,
            &format!("/conversations/start{query}"),
            Some(token),
            Some(body.to_string()),
        )
        .await
    }

    /// Starts a conversation with `echo` and returns its id.
    pub async fn started(&self, token: &str) -> String {
        let response = self.start(token, "", json!({"bot_id": "echo"})).await;
        response.assert_status(201);
        response.str("conversation_id")
    }

    /// `POST /conversations/{id}/messages` with a raw body.
    pub async fn send_raw(&self, token: &str, id: &str, query: &str, body: String) -> TestResponse {
        self.call(
            Method::POST,
            &format!("/conversations/{id}/messages{query}"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// `POST /conversations/{id}/messages`.
    pub async fn send(&self, token: &str, id: &str, query: &str, body: Value) -> TestResponse {
        self.send_raw(token, id, query, body.to_string()).await
    }

    /// Sends `content` and waits for the bot's replies.
    pub async fn say(&self, token: &str, id: &str, content: &str) -> TestResponse {
        let response = self
            .send(token, id, "?wait=true", json!({"content": content}))
            .await;
        response.assert_status(201);
        response
    }

    /// `GET /conversations/{id}/history{query}`.
    pub async fn history(&self, token: &str, id: &str, query: &str) -> TestResponse {
        self.call(
            Method::GET,
            &format!("/conversations/{id}/history{query}"),
            Some(token),
            None,
        )
        .await
    }

    /// The contents of the conversation's whole history, oldest first.
    pub async fn contents(&self, token: &str, id: &str) -> Vec<String> {
        let response = self.history(token, id, "?limit=100").await;
        response.assert_status(200)["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["content"].as_str().expect("content").to_owned())
            .collect()
    }

    /// `GET /conversations{query}`.
    pub async fn list(&self, token: &str, query: &str) -> TestResponse {
        self.call(
            Method::GET,
            &format!("/conversations{query}"),
            Some(token),
            None,
        )
        .await
    }

    /// `GET /conversations/{id}`.
    pub async fn get_conversation(&self, token: &str, id: &str) -> TestResponse {
        self.call(
            Method::GET,
            &format!("/conversations/{id}"),
            Some(token),
            None,
        )
        .await
    }

    /// `PATCH /conversations/{id}`.
    pub async fn patch(&self, token: &str, id: &str, body: Value) -> TestResponse {
        self.call(
            Method::PATCH,
            &format!("/conversations/{id}"),
            Some(token),
            Some(body.to_string()),
        )
        .await
    }

    /// `DELETE /conversations/{id}`.
    pub async fn delete(&self, token: &str, id: &str) -> TestResponse {
        self.call(
            Method::DELETE,
            &format!("/conversations/{id}"),
            Some(token),
            None,
        )
        .await
    }

    /// `GET /bots`.
    pub async fn bots(&self, token: &str) -> TestResponse {
        self.call(Method::GET, "/bots", Some(token), None).await
    }

    /// `GET /bots/{id}`.
    pub async fn bot(&self, token: &str, id: &str) -> TestResponse {
        self.call(Method::GET, &format!("/bots/{id}"), Some(token), None)
            .await
    }

    /// `GET /healthz`.
    pub async fn healthz(&self) -> TestResponse {
        self.call(Method::GET, "/healthz", None, None).await
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> TestResponse {
        self.call(Method::GET, "/openapi.json", None, None).await
    }
}

/// A token signed with `secret` carrying `claims`.
pub fn signed(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("token")
}

pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A conversation holding `n` exchanges (user message, echo reply): 2n messages.
pub async fn conversation_with_exchanges(app: &TestApp, token: &str, n: usize) -> String {
    let id = app.started(token).await;
    for i in 1..=n {
        app.say(token, &id, &format!("m{i}")).await;
    }
    id
}

pub fn seqs(response: &TestResponse) -> Vec<u64> {
    response.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect()
}
