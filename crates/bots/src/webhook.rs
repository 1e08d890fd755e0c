//! The `webhook` engine: an external bot service (Rasa, Botpress, your own) called
//! over HTTP for each user message.
//!
//! confab POSTs the conversation event as JSON, signed with HMAC-SHA256 over the raw
//! body in `X-Confab-Signature: sha256=<hex>` when the bot has a secret, and stores
//! the JSON reply `{content, suggestions?, attachments?, context?, metadata?,
//! handoff?}`; `"handoff": true` asks for a person to take the conversation over, and
//! may come alone, with no content.
//! Connection failures, timeouts and 5xx answers are retried with exponential
//! back-off a bounded number of times; every attempt carries the same body and the
//! same `X-Confab-Delivery` id (the user message's id), so the bot can drop repeats.

use std::sync::Arc;
use std::time::Duration;

use confab_domain::conversation::Metadata;
use confab_domain::error::{BotError, ValidationError};
use confab_domain::message::{Attachment, Attachments, Message, MessageContent, Suggestion};
use confab_domain::ports::{BotEngine, BotReply, BotRequest, ReplyChunk};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Confab-Signature";
/// The header carrying the delivery id, the same on every retry.
pub const DELIVERY_HEADER: &str = "X-Confab-Delivery";

#[derive(Debug, Clone, Deserialize)]
struct WebhookSettings {
    url: String,
    secret_env: Option<String>,
    request_timeout_ms: Option<u64>,
    max_retries: Option<u32>,
    retry_backoff_ms: Option<u64>,
}

/// Calls a bot service over HTTP.
#[derive(Debug, Clone)]
pub struct WebhookEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    url: String,
    secret: Option<Vec<u8>>,
    request_timeout: Duration,
    max_retries: u32,
    backoff: Duration,
}

impl WebhookEngine {
    /// Reads the bot's settings: `url`, and optionally `secret_env` (the environment
    /// variable holding the signing secret), `request_timeout_ms` (per attempt,
    /// default 10000), `max_retries` (default 3, at most 10) and `retry_backoff_ms`
    /// (the first pause, doubled after each retry; default 200).
    ///
    /// # Errors
    /// `BotError::Misconfigured` when a setting is missing or of the wrong type, the
    /// URL is not http(s), or the named environment variable is not set.
    pub fn from_settings(
        client: reqwest::Client,
        settings: &Map<String, Value>,
    ) -> Result<Self, BotError> {
        let settings: WebhookSettings = serde_json::from_value(Value::Object(settings.clone()))
            .map_err(|e| BotError::Misconfigured(format!("webhook: {e}")))?;
        let valid_url = reqwest::Url::parse(&settings.url)
            .ok()
            .is_some_and(|url| matches!(url.scheme(), "http" | "https"));
        if !valid_url {
            return Err(BotError::Misconfigured(format!(
                "webhook: `url` {:?} is not an http(s) URL",
                settings.url
            )));
        }
        let secret = match &settings.secret_env {
            Some(name) => Some(
                std::env::var(name)
                    .map_err(|_| {
                        BotError::Misconfigured(format!(
                            "webhook: the environment variable {name} (secret_env) is not set"
                        ))
                    })?
                    .into_bytes(),
            ),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                url: settings.url,
                secret,
                request_timeout: Duration::from_millis(
                    settings.request_timeout_ms.unwrap_or(10_000),
                ),
                max_retries: settings.max_retries.unwrap_or(3).min(10),
                backoff: Duration::from_millis(settings.retry_backoff_ms.unwrap_or(200)),
            }),
        })
    }
}

impl BotEngine for WebhookEngine {
    fn reply(&self, request: BotRequest) -> BoxStream<'static, Result<ReplyChunk, BotError>> {
        let inner = Arc::clone(&self.inner);
        stream::once(async move {
            inner.call(&request).await.map(|reply| match reply {
                Some(reply) => ReplyChunk::Done(reply),
                None => ReplyChunk::Deferred,
            })
        })
        .boxed()
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`, as sent in
/// [`SIGNATURE_HEADER`].
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What went wrong with one attempt, and whether another may help.
enum Attempt {
    Retry(String),
    GiveUp(BotError),
}

impl Inner {
    /// The bot's reply, or `None` when it answers later by itself.
    async fn call(&self, request: &BotRequest) -> Result<Option<BotReply>, BotError> {
        let body =
            serde_json::to_vec(&payload(request)).map_err(|e| BotError::Failed(Box::new(e)))?;
        let signature = self.secret.as_ref().map(|s| signature(s, &body));
        let delivery = request.message.id.to_string();
        let mut pause = self.backoff;
        let mut attempt = 0;
        loop {
            match self.attempt(&body, signature.as_deref(), &delivery).await {
                Ok(reply) => return Ok(reply),
                Err(Attempt::GiveUp(error)) => return Err(error),
                Err(Attempt::Retry(reason)) if attempt < self.max_retries => {
                    attempt += 1;
                    tracing::warn!(url = %self.url, attempt, reason, "retrying the webhook");
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                }
                Err(Attempt::Retry(reason)) => {
                    return Err(BotError::Failed(
                        format!("the webhook failed {} times: {reason}", attempt + 1).into(),
                    ));
                }
            }
        }
    }

    async fn attempt(
        &self,
        body: &[u8],
        signature: Option<&str>,
        delivery: &str,
    ) -> Result<Option<BotReply>, Attempt> {
        let mut call = self
            .client
            .post(&self.url)
            .timeout(self.request_timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, delivery)
            .body(body.to_vec());
        if let Some(signature) = signature {
            call = call.header(SIGNATURE_HEADER, signature);
        }
        let response = call
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(Attempt::Retry(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(Attempt::GiveUp(BotError::Failed(
                format!("the webhook answered HTTP {status}").into(),
            )));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        // No content: the bot answers later by itself, posting with a bot token.
        if status == reqwest::StatusCode::NO_CONTENT || bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        parse_reply(&bytes).map(Some).map_err(|reason| {
            Attempt::GiveUp(BotError::Failed(
                format!("the webhook's reply is invalid: {reason}").into(),
            ))
        })
    }
}

#[derive(Debug, Deserialize)]
struct ReplyBody {
    #[serde(default)]
    content: String,
    #[serde(default)]
    suggestions: Vec<SuggestionBody>,
    #[serde(default)]
    attachments: Vec<AttachmentBody>,
    context: Option<Map<String, Value>>,
    metadata: Option<Value>,
    #[serde(default)]
    handoff: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SuggestionBody {
    Text(String),
    Object { text: String },
}

#[derive(Debug, Deserialize)]
struct AttachmentBody {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    content_type: Option<String>,
    name: Option<String>,
    size_bytes: Option<u64>,
}

fn parse_reply(bytes: &[u8]) -> Result<BotReply, String> {
    let body: ReplyBody = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let attachments = body
        .attachments
        .iter()
        .map(|a| {
            Attachment::parse(
                &a.kind,
                &a.url,
                a.content_type.as_deref(),
                a.name.as_deref(),
                a.size_bytes,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let attachments = Attachments::parse(attachments).map_err(|e| e.to_string())?;
    let content = match MessageContent::parse(&body.content, &attachments) {
        Ok(content) => content.as_str().to_owned(),
        // Asking for a person is an answer in itself: the handoff's notice tells the
        // user what happens, so no text of the bot's is needed.
        Err(ValidationError::EmptyContent) if body.handoff => String::new(),
        Err(error) => return Err(error.to_string()),
    };
    let metadata = match body.metadata {
        Some(value) => Metadata::parse(value).map_err(|e| e.to_string())?,
        None => Metadata::default(),
    };
    Ok(BotReply {
        content,
        attachments,
        suggestions: body
            .suggestions
            .into_iter()
            .map(|s| match s {
                SuggestionBody::Text(text) | SuggestionBody::Object { text } => Suggestion { text },
            })
            .collect(),
        context: body.context,
        metadata,
        handoff: body.handoff,
    })
}

/// The JSON a webhook receives.
fn payload(request: &BotRequest) -> Value {
    let conversation = &request.conversation;
    json!({
        "type": "message",
        "bot_id": request.bot.id.as_str(),
        "conversation": {
            "id": conversation.id.to_string(),
            "user_id": conversation.user_id.to_string(),
            "bot_id": conversation.bot_id.as_str(),
            "status": conversation.status.as_str(),
            "title": conversation.title.as_ref().map(|t| t.as_str()),
            "metadata": conversation.metadata.to_value(),
            "created_at": conversation.created_at.to_rfc3339(),
        },
        "session": {
            "id": request.session.id.to_string(),
            "context": request.session.context,
        },
        "message": message_json(&request.message),
        "history": request.history.iter().map(message_json).collect::<Vec<_>>(),
    })
}

fn message_json(message: &Message) -> Value {
    json!({
        "id": message.id.to_string(),
        "seq": message.seq.get(),
        "sender": message.sender.as_str(),
        "sender_id": message.sender_id,
        "content": message.content.as_str(),
        "attachments": message.attachments.as_slice().iter().map(|a| json!({
            "type": a.kind,
            "url": a.url,
            "content_type": a.content_type,
            "name": a.name,
            "size_bytes": a.size_bytes,
        })).collect::<Vec<_>>(),
        "suggestions": message.suggestions.iter().map(|s| json!({"text": s.text})).collect::<Vec<_>>(),
        "timestamp": message.timestamp.to_rfc3339(),
        "metadata": message.metadata.to_value(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn replies_take_plain_or_object_suggestions_and_check_attachments() {
        let reply =
            parse_reply(br#"{"content":"hi","suggestions":["a",{"text":"b"}],"context":{"k":1}}"#)
                .expect("a valid reply");
        assert_eq!(reply.content, "hi");
        assert_eq!(reply.suggestions.len(), 2);
        assert!(reply.context.is_some());
        assert!(
            parse_reply(br#"{"content":"x","attachments":[{"type":"image","url":"ftp://x"}]}"#)
                .is_err()
        );
        assert!(parse_reply(br#"{"content":"  "}"#).is_err());
        assert!(!reply.handoff, "no handoff unless the bot asks");
    }

    #[test]
    fn a_handoff_may_come_with_text_or_alone() {
        let with_text = parse_reply(br#"{"content":" Let me find a person ","handoff":true}"#)
            .expect("a valid reply");
        assert!(with_text.handoff);
        assert_eq!(with_text.content, "Let me find a person");
        let alone = parse_reply(br#"{"handoff":true}"#).expect("a handoff alone is an answer");
        assert!(alone.handoff);
        assert_eq!(alone.content, "");
        assert!(
            parse_reply(br#"{"content":"","handoff":false}"#).is_err(),
            "without a handoff, empty content is still refused"
        );
        assert!(
            parse_reply(br#"{"content":"a\u0000b","handoff":true}"#).is_err(),
            "a handoff excuses only the missing text, not invalid text"
        );
    }
}
