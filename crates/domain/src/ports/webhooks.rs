//! The ports of outgoing webhooks: the subscriptions and their deliveries in storage,
//! sending one request, and reading a signing secret.
//!
//! Storage records deliveries itself, in the transaction of each change (see
//! [`crate::webhook`]); no port method creates one, so no write path can forget to.

use async_trait::async_trait;

use crate::error::{BoxError, RepoError};
use crate::lease::LeaseHolder;
use crate::timestamp::Timestamp;
use crate::webhook::{
    Delivery, DeliveryId, DeliveryOutcome, DeliveryQuery, DueDelivery, SecretEnv, Webhook,
    WebhookId,
};

/// The webhook subscriptions and the record of their deliveries.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    /// Stores a new subscription. Events that happen after it is stored are delivered
    /// to it; earlier ones are not.
    ///
    /// # Errors
    /// MUST return `RepoError::Conflict` and store nothing when a subscription with the
    /// same id exists.
    async fn create_webhook(&self, webhook: &Webhook) -> Result<(), RepoError>;

    /// Loads one subscription.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when no subscription has this id.
    async fn webhook(&self, id: WebhookId) -> Result<Webhook, RepoError>;

    /// Every subscription, oldest first.
    ///
    /// # Errors
    /// MUST NOT fail when there is none: that is an empty list.
    async fn webhooks(&self) -> Result<Vec<Webhook>, RepoError>;

    /// Replaces a subscription's fields (all but `id` and `created_at`).
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when no subscription has this id.
    async fn update_webhook(&self, webhook: &Webhook) -> Result<(), RepoError>;

    /// Removes a subscription and every one of its deliveries.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when no subscription has this id.
    async fn delete_webhook(&self, id: WebhookId) -> Result<(), RepoError>;

    /// A subscription's deliveries, newest first.
    ///
    /// # Errors
    /// MUST NOT fail for a subscription without deliveries, or with none matching:
    /// that is an empty list.
    async fn deliveries(
        &self,
        webhook: WebhookId,
        query: &DeliveryQuery,
    ) -> Result<Vec<Delivery>, RepoError>;

    /// Makes a delivery pending again, due at `now`, with its attempts counted from
    /// zero; it keeps its id and its place in its conversation's order.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when the subscription has no delivery with
    /// this id.
    async fn redeliver(
        &self,
        webhook: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
    ) -> Result<Delivery, RepoError>;
}

/// The deliveries waiting to go out, as the dispatcher sees them.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait WebhookOutbox: Send + Sync {
    /// Claims up to `limit` pending deliveries due at `now` for `holder` until
    /// `until`, oldest first: only deliveries that nobody holds (or whose claim ran
    /// out), and only the oldest pending delivery of each subscription and
    /// conversation, so that a conversation's events reach a subscription in order.
    ///
    /// # Errors
    /// MUST NOT return a delivery that another holder's unexpired claim covers.
    async fn claim_due(
        &self,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, RepoError>;

    /// Records how an attempt ended and lets go of the claim.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` and change nothing when `holder` does not
    /// hold this delivery (its claim ran out and another took it, or the subscription
    /// was deleted).
    async fn finish(
        &self,
        delivery: DeliveryId,
        holder: LeaseHolder,
        outcome: &DeliveryOutcome,
    ) -> Result<(), RepoError>;
}

/// Why a webhook request failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSendError {
    /// The receiver answered with a status other than 2xx.
    #[error("the receiver answered {0}")]
    Status(u16),
    /// No answer within the timeout.
    #[error("the receiver did not answer in time")]
    Timeout,
    /// The receiver could not be reached, the connection failed, or the request
    /// could not be made.
    #[error("the request failed")]
    Failed(#[source] BoxError),
}

/// Sends one delivery: encodes its event in the wire format of the REST API, signs
/// the body with `secret` and POSTs it. The wire shapes and HTTP stay outside the
/// domain.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// Sends `delivery` once.
    ///
    /// # Errors
    /// Any answer but 2xx, a timeout or a failed connection.
    async fn send(&self, delivery: &DueDelivery, secret: &[u8]) -> Result<(), WebhookSendError>;
}

/// Reads signing secrets, so that the domain never reads the process environment.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait SecretSource: Send + Sync {
    /// The secret in the variable `name`, if it is set and not empty.
    fn secret(&self, name: &SecretEnv) -> Option<Vec<u8>>;
}
