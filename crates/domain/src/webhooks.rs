//! Outgoing webhooks' use cases: [`WebhookAdmin`], the administrators' registry of
//! subscriptions and their deliveries, and the [`WebhookDispatcher`] that sends
//! what storage recorded.
//!
//! This layer stands beside `admin` and imports only the ports and the model.

mod dispatcher;

use std::sync::Arc;

pub use dispatcher::{DispatchSettings, WebhookDispatcher};

use crate::error::{DomainError, RepoError, ValidationError};
use crate::ports::{Clock, IdGenerator, SecretSource, WebhookRepository};
use crate::user::Caller;
use crate::webhook::{
    Delivery, DeliveryId, DeliveryQuery, EventSet, SecretEnv, Webhook, WebhookId, WebhookUrl,
};

/// A subscription to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDraft {
    /// Where deliveries go.
    pub url: WebhookUrl,
    /// What it wants.
    pub events: EventSet,
    /// The variable holding its signing secret; it must be set when registering.
    pub secret_env: SecretEnv,
    /// What it is for.
    pub description: String,
}

/// Changes to a subscription; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChanges {
    /// A new URL.
    pub url: Option<WebhookUrl>,
    /// New events; later events follow the new set.
    pub events: Option<EventSet>,
    /// A new secret variable; it must be set.
    pub secret_env: Option<SecretEnv>,
    /// A new description.
    pub description: Option<String>,
}

/// The registry of webhook subscriptions, for administrators only.
pub struct WebhookAdmin {
    webhooks: Arc<dyn WebhookRepository>,
    secrets: Arc<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

fn require_admin(caller: &Caller) -> Result<(), DomainError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

fn webhook_error(error: RepoError) -> DomainError {
    match error {
        RepoError::NotFound => DomainError::WebhookNotFound,
        other => DomainError::Storage(other),
    }
}

impl WebhookAdmin {
    /// The registry on `webhooks`, checking secrets in `secrets`.
    pub fn new(
        webhooks: Arc<dyn WebhookRepository>,
        secrets: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            webhooks,
            secrets,
            clock,
            ids,
        }
    }

    /// A subscription whose secret cannot be read would fail every delivery; saying
    /// so when it is registered beats a list of failed deliveries later.
    fn require_secret(&self, name: &SecretEnv) -> Result<(), DomainError> {
        match self.secrets.secret(name) {
            Some(_) => Ok(()),
            None => Err(ValidationError::InvalidWebhook(format!(
                "the environment variable {} named by secret_env is not set (or empty) \
                 on this server",
                name.as_str()
            ))
            .into()),
        }
    }

    /// Registers a subscription.
    ///
    /// # Errors
    /// `Forbidden` for non-admins; `Invalid` when the secret's variable is not set.
    pub async fn create(
        &self,
        caller: &Caller,
        draft: WebhookDraft,
    ) -> Result<Webhook, DomainError> {
        require_admin(caller)?;
        self.require_secret(&draft.secret_env)?;
        let now = self.clock.now();
        let webhook = Webhook {
            id: WebhookId::from_uuid(self.ids.new_id()),
            url: draft.url,
            events: draft.events,
            secret_env: draft.secret_env,
            description: draft.description,
            created_at: now,
            updated_at: now,
        };
        self.webhooks.create_webhook(&webhook).await?;
        Ok(webhook)
    }

    /// Every subscription, oldest first.
    ///
    /// # Errors
    /// `Forbidden` for non-admins.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Webhook>, DomainError> {
        require_admin(caller)?;
        Ok(self.webhooks.webhooks().await?)
    }

    /// One subscription.
    ///
    /// # Errors
    /// `Forbidden` for non-admins, `WebhookNotFound`.
    pub async fn get(&self, caller: &Caller, id: WebhookId) -> Result<Webhook, DomainError> {
        require_admin(caller)?;
        self.webhooks.webhook(id).await.map_err(webhook_error)
    }

    /// Changes a subscription.
    ///
    /// # Errors
    /// `Forbidden` for non-admins, `WebhookNotFound`, `Invalid` for an empty change
    /// or a new secret variable that is not set.
    pub async fn update(
        &self,
        caller: &Caller,
        id: WebhookId,
        changes: WebhookChanges,
    ) -> Result<Webhook, DomainError> {
        require_admin(caller)?;
        if changes == WebhookChanges::default() {
            return Err(ValidationError::InvalidWebhook(
                "nothing to change: give url, events, secret_env or description".into(),
            )
            .into());
        }
        let mut webhook = self.webhooks.webhook(id).await.map_err(webhook_error)?;
        if let Some(secret_env) = changes.secret_env {
            self.require_secret(&secret_env)?;
            webhook.secret_env = secret_env;
        }
        if let Some(url) = changes.url {
            webhook.url = url;
        }
        if let Some(events) = changes.events {
            webhook.events = events;
        }
        if let Some(description) = changes.description {
            webhook.description = description;
        }
        webhook.updated_at = self.clock.now();
        self.webhooks
            .update_webhook(&webhook)
            .await
            .map_err(webhook_error)?;
        Ok(webhook)
    }

    /// Removes a subscription and its deliveries; nothing more is sent to it.
    ///
    /// # Errors
    /// `Forbidden` for non-admins, `WebhookNotFound`.
    pub async fn delete(&self, caller: &Caller, id: WebhookId) -> Result<(), DomainError> {
        require_admin(caller)?;
        self.webhooks
            .delete_webhook(id)
            .await
            .map_err(webhook_error)
    }

    /// A subscription's deliveries, newest first.
    ///
    /// # Errors
    /// `Forbidden` for non-admins, `WebhookNotFound`.
    pub async fn deliveries(
        &self,
        caller: &Caller,
        id: WebhookId,
        query: &DeliveryQuery,
    ) -> Result<Vec<Delivery>, DomainError> {
        require_admin(caller)?;
        self.webhooks.webhook(id).await.map_err(webhook_error)?;
        Ok(self.webhooks.deliveries(id, query).await?)
    }

    /// Sends a delivery again (a failed one, usually), with the same id and a fresh
    /// count of attempts.
    ///
    /// # Errors
    /// `Forbidden` for non-admins, `WebhookNotFound`, `DeliveryNotFound`.
    pub async fn redeliver(
        &self,
        caller: &Caller,
        id: WebhookId,
        delivery: DeliveryId,
    ) -> Result<Delivery, DomainError> {
        require_admin(caller)?;
        self.webhooks.webhook(id).await.map_err(webhook_error)?;
        self.webhooks
            .redeliver(id, delivery, self.clock.now())
            .await
            .map_err(|error| match error {
                RepoError::NotFound => DomainError::DeliveryNotFound,
                other => DomainError::Storage(other),
            })
    }
}
