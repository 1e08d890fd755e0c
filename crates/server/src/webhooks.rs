//! The adapters of outgoing webhooks: the HTTP sender, secrets from the environment,
//! and the delivery metrics.
//!
//! A delivery's body is `{id, type, created_at, conversation_id, data}`, where `data`
//! is the message or conversation in the REST API's own shapes, so receivers parse
//! one format. It is signed like the requests to webhook bots: `X-Confab-Signature:
//! sha256=<hex HMAC-SHA256 of the body>`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_api_axum::dto::{ConversationBody, MessageBody};
use confab_domain::error::RepoError;
use confab_domain::lease::LeaseHolder;
use confab_domain::ports::{SecretSource, WebhookOutbox, WebhookSendError, WebhookSender};
use confab_domain::timestamp::Timestamp;
use confab_domain::webhook::{DeliveryId, DeliveryOutcome, DueDelivery, EventData, SecretEnv};
use serde::Serialize;

/// Counter of delivery attempts recorded, by `outcome`: `delivered`, `retry` (failed,
/// tried again later) or `failed` (failed for good, waiting for a redelivery).
pub const WEBHOOK_ATTEMPTS: &str = "confab_webhook_attempts_total";

/// The header naming the delivery: the receiver's idempotency key.
pub const DELIVERY_HEADER: &str = "X-Confab-Delivery";
/// The header naming the event.
pub const EVENT_HEADER: &str = "X-Confab-Event";

/// The body of a delivery.
#[derive(Serialize)]
struct Payload {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    created_at: String,
    conversation_id: String,
    data: PayloadData,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PayloadData {
    Message(Box<MessageBody>),
    Conversation(Box<ConversationBody>),
}

/// The JSON body of `due`.
///
/// # Errors
/// Never in practice: the shapes are plain data.
pub fn payload(due: &DueDelivery) -> Result<Vec<u8>, serde_json::Error> {
    let delivery = &due.delivery;
    let data = match &due.data {
        EventData::Message(message) => {
            PayloadData::Message(Box::new(MessageBody::from((**message).clone())))
        }
        // The bot's name would need a read per delivery, of a bot that may be gone
        // since; the id names it.
        EventData::Conversation(conversation) => PayloadData::Conversation(Box::new(
            ConversationBody::new((**conversation).clone(), None),
        )),
    };
    serde_json::to_vec(&Payload {
        id: delivery.id.to_string(),
        kind: delivery.event.as_str(),
        created_at: delivery.created_at.to_rfc3339(),
        conversation_id: delivery.conversation_id.to_string(),
        data,
    })
}

/// POSTs deliveries with reqwest.
pub struct HttpWebhookSender {
    client: reqwest::Client,
}

impl HttpWebhookSender {
    /// A sender giving each request `timeout`, from connecting to the end of the
    /// answer.
    ///
    /// # Errors
    /// The HTTP client cannot be built (no TLS roots).
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect would send the signed body somewhere nobody registered.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("confab/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, due: &DueDelivery, secret: &[u8]) -> Result<(), WebhookSendError> {
        let body = payload(due).map_err(|error| WebhookSendError::Failed(error.into()))?;
        let response = self
            .client
            .post(due.url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                confab_bots::webhook::SIGNATURE_HEADER,
                confab_bots::webhook::signature(secret, &body),
            )
            .header(DELIVERY_HEADER, due.delivery.id.to_string())
            .header(EVENT_HEADER, due.delivery.event.as_str())
            .body(body)
            .send()
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    WebhookSendError::Timeout
                } else {
                    WebhookSendError::Failed(error.into())
                }
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(WebhookSendError::Status(status.as_u16()))
        }
    }
}

/// Signing secrets from the process environment.
pub struct EnvSecrets;

impl SecretSource for EnvSecrets {
    fn secret(&self, name: &SecretEnv) -> Option<Vec<u8>> {
        std::env::var(name.as_str())
            .ok()
            .filter(|value| !value.is_empty())
            .map(String::into_bytes)
    }
}

/// A [`WebhookOutbox`] that counts the outcomes recorded through it.
pub struct MeteredOutbox {
    inner: Arc<dyn WebhookOutbox>,
}

impl MeteredOutbox {
    /// Counts what is recorded in `inner`.
    pub fn new(inner: Arc<dyn WebhookOutbox>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl WebhookOutbox for MeteredOutbox {
    async fn claim_due(
        &self,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, RepoError> {
        self.inner.claim_due(holder, now, until, limit).await
    }

    async fn finish(
        &self,
        delivery: DeliveryId,
        holder: LeaseHolder,
        outcome: &DeliveryOutcome,
    ) -> Result<(), RepoError> {
        self.inner.finish(delivery, holder, outcome).await?;
        // Counted once recorded: an outcome whose claim was lost is another
        // instance's to count.
        let outcome = match outcome {
            DeliveryOutcome::Delivered { .. } => "delivered",
            DeliveryOutcome::Retry { .. } => "retry",
            DeliveryOutcome::Failed { .. } => "failed",
        };
        metrics::counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
        Ok(())
    }
}
