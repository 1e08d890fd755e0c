//! What every row of the table is tried against: a victim with a conversation (its
//! session, its messages and the bot's reply all stored), a bot of the victim's
//! conversation that only an administrator may change, an attacker (a real guest)
//! with a conversation of their own, and the way to call an operation and to take a
//! picture of everything the victim owns.

use std::sync::atomic::{AtomicU32, Ordering};

use confab_domain::bot::BotId;
use confab_domain::user::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::authz::credentials::{Claimant, Credential};
use crate::helpers::{PATIENCE, TestApp, admin, token, user};

/// One call of an operation: a concrete path (with its query) and body, and the
/// status it must get.
#[derive(Debug, Clone)]
pub struct Call {
    /// The path after the prefix, with the query string.
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// The status expected.
    pub status: u16,
}

impl Call {
    pub fn new(path: impl Into<String>, status: u16) -> Self {
        Self {
            path: path.into(),
            body: None,
            status,
        }
    }

    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// What came back: the status, `WWW-Authenticate`, and the body as text (empty for
/// a success whose body streams without end, such as the events).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub challenge: Option<String>,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// The victim, the attacker and what they own, made afresh for each row.
#[derive(Debug)]
pub struct Fixture {
    /// Who the victim is and their token.
    pub victim: Claimant,
    pub victim_token: String,
    /// The victim's conversation, its session, their message and the bot's reply.
    pub conversation: String,
    pub session: String,
    pub message: String,
    pub reply: String,
    /// Text only the victim's messages hold: no answer to the attacker may contain it.
    pub secret: String,
    /// The bot the victim talks to, made for this fixture.
    pub bot: String,
    /// A bot id nobody has taken.
    pub new_bot: String,
    /// The attacker: a real guest, and a conversation of their own.
    pub attacker_token: String,
    /// A bot's token for `echo`, the bot of the attacker's conversation and not of
    /// the victim's.
    pub other_bot_token: String,
    pub own_conversation: String,
    /// An administrator.
    pub admin: Claimant,
    pub admin_token: String,
    /// A webhook subscription, the only one (the fixture replaces the last one's),
    /// and the delivery of the victim's `conversation.started` to it.
    pub webhook: String,
    pub delivery: String,
}

/// Makes each fixture's names unique within a server.
static NEXT: AtomicU32 = AtomicU32::new(0);

impl Fixture {
    pub async fn create(app: &TestApp) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let victim = Claimant {
            user: format!("victim-{n}"),
            admin: false,
        };
        let victim_token = user(&victim.user);
        let admin_token = admin();
        let bot = format!("authz-bot-{n}");
        let created = call(
            app,
            "",
            Method::POST,
            &Call::new("/bots", 201)
                .with_body(json!({ "id": bot, "name": "Authz", "kind": "echo" })),
            &Credential::bearer("admin", &admin_token),
        )
        .await;
        assert_eq!(created.status, 201, "bot created: {}", created.text);

        let webhook = subscribe(app, &admin_token).await;

        let secret = format!("victim-secret-{n}");
        let started = call(
            app,
            "",
            Method::POST,
            &Call::new("/conversations/start?wait=true", 201).with_body(json!({
                "bot_id": bot,
                "initial_message": secret,
                "client_message_id": format!("victim-{n}"),
                "title": "private",
            })),
            &Credential::bearer("victim", &victim_token),
        )
        .await;
        assert_eq!(started.status, 201, "victim starts: {}", started.text);
        let started = started.json();
        let reply = started["replies"][0]["id"]
            .as_str()
            .expect("the bot's reply is stored before the answer")
            .to_owned();

        let attacker_token = app.guest_token().await;
        let own = call(
            app,
            "",
            Method::POST,
            &Call::new("/conversations/start?wait=true", 201)
                .with_body(json!({ "bot_id": "echo", "initial_message": "mine" })),
            &Credential::bearer("attacker", &attacker_token),
        )
        .await;
        assert_eq!(own.status, 201, "attacker starts: {}", own.text);
        let own = own.json();
        let delivery = first_delivery(app, &admin_token, &webhook).await;

        Self {
            victim,
            victim_token,
            conversation: text(&started["conversation_id"]),
            session: text(&started["session_id"]),
            message: text(&started["initial_message_id"]),
            reply,
            secret,
            bot,
            new_bot: format!("authz-new-{n}"),
            attacker_token,
            other_bot_token: token(
                "echo-bot",
                Role::Bot(BotId::parse("echo").expect("a bot id")),
            ),
            own_conversation: text(&own["conversation_id"]),
            admin: Claimant {
                user: "root".to_owned(),
                admin: true,
            },
            admin_token,
            webhook,
            delivery,
        }
    }

    /// Every id of the victim's that could be put where an id goes.
    pub fn foreign_ids(&self) -> [(&'static str, &str); 4] {
        [
            ("the victim's conversation id", &self.conversation),
            ("the victim's session id", &self.session),
            ("the victim's message id", &self.message),
            ("the bot's reply id", &self.reply),
        ]
    }

    /// Everything the victim owns, and the bots, as the victim and an administrator
    /// see them.
    pub async fn snapshot(&self, app: &TestApp) -> Vec<(String, u16, String)> {
        let victim = Credential::bearer("victim", &self.victim_token);
        let admin = Credential::bearer("admin", &self.admin_token);
        let c = &self.conversation;
        let reads = [
            (format!("/conversations/{c}"), &victim),
            (format!("/conversations/{c}/history?limit=100"), &victim),
            ("/conversations?limit=100".to_owned(), &victim),
            (
                "/conversations?limit=100&status=archived".to_owned(),
                &victim,
            ),
            ("/bots".to_owned(), &admin),
            (format!("/bots/{}", self.bot), &admin),
            (format!("/bots/{}", self.new_bot), &admin),
        ];
        let mut picture = Vec::new();
        for (path, who) in reads {
            let answer = call(app, "", Method::GET, &Call::new(path.clone(), 200), who).await;
            picture.push((path, answer.status, answer.text));
        }
        picture
    }
}

/// Replaces every webhook subscription with one for `conversation.started`, so that
/// the fixtures of a run do not pile up subscriptions that each event fans out to.
/// Its secret's variable is `PATH`, set in every test process; nothing listens at
/// its URL, and nothing here needs its deliveries to arrive.
async fn subscribe(app: &TestApp, admin_token: &str) -> String {
    let admin = Credential::bearer("admin", admin_token);
    let listed = call(app, "", Method::GET, &Call::new("/webhooks", 200), &admin).await;
    assert_eq!(listed.status, 200, "webhooks listed: {}", listed.text);
    for webhook in listed.json()["webhooks"].as_array().into_iter().flatten() {
        let path = format!("/webhooks/{}", text(&webhook["id"]));
        let deleted = call(app, "", Method::DELETE, &Call::new(path, 204), &admin).await;
        assert_eq!(deleted.status, 204, "webhook deleted: {}", deleted.text);
    }
    let created = call(
        app,
        "",
        Method::POST,
        &Call::new("/webhooks", 201).with_body(json!({
            "url": "http://127.0.0.1:9/authz",
            "events": ["conversation.started"],
            "secret_env": "PATH",
        })),
        &admin,
    )
    .await;
    assert_eq!(created.status, 201, "webhook created: {}", created.text);
    text(&created.json()["id"])
}

/// The id of a delivery of `webhook`.
async fn first_delivery(app: &TestApp, admin_token: &str, webhook: &str) -> String {
    let admin = Credential::bearer("admin", admin_token);
    let path = format!("/webhooks/{webhook}/deliveries");
    let listed = call(app, "", Method::GET, &Call::new(path, 200), &admin).await;
    assert_eq!(listed.status, 200, "deliveries listed: {}", listed.text);
    text(&listed.json()["deliveries"][0]["id"])
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string id").to_owned()
}

/// Sends `call` with `method` under `prefix` and `credential`. The body of a success
/// is read only when it ends (every success but the events stream).
pub async fn call(
    app: &TestApp,
    prefix: &str,
    method: Method,
    call: &Call,
    credential: &Credential,
) -> Answer {
    let mut request = app
        .http
        .request(method, app.url(&format!("{prefix}{}", call.path)))
        .timeout(PATIENCE);
    if let Some(header) = &credential.header {
        request = request.header(reqwest::header::AUTHORIZATION, header);
    }
    if let Some(body) = &call.body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request answered in time");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let streams = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    let text = if streams {
        String::new()
    } else {
        response.text().await.expect("body read in time")
    };
    Answer {
        status,
        challenge,
        text,
    }
}
