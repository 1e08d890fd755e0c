//! [`WebhookDispatcher`]: sends the deliveries storage recorded, each from one
//! instance at a time, in order per subscription and conversation, retrying with
//! backoff until the receiver accepts or the attempts run out.
//!
//! It runs beside the request handlers and shares nothing with them but storage: a
//! slow or dead receiver holds up only its own deliveries (and, through the order
//! rule, the later events of the same conversations for it), never a send.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::error::error_chain;
use crate::lease::LeaseHolder;
use crate::ports::{Clock, SecretSource, WebhookOutbox, WebhookSender};
use crate::webhook::{DeliveryOutcome, DueDelivery, RetryPolicy};

/// How the dispatcher works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    /// Retries and when to give up.
    pub retry: RetryPolicy,
    /// Deliveries in flight at once, from this instance.
    pub concurrency: u32,
    /// How long a claim lasts: longer than an attempt may take, so that no other
    /// instance sends a delivery while this one still waits for its answer, and short
    /// enough that a dead instance's claims are taken over soon.
    pub claim: Duration,
    /// How often to look for due deliveries when there was nothing to send.
    pub poll_interval: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            concurrency: 16,
            claim: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
        }
    }
}

/// Sends webhook deliveries; see the module documentation.
#[derive(Clone)]
pub struct WebhookDispatcher {
    outbox: Arc<dyn WebhookOutbox>,
    sender: Arc<dyn WebhookSender>,
    secrets: Arc<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    holder: LeaseHolder,
    settings: DispatchSettings,
}

impl WebhookDispatcher {
    /// A dispatcher claiming deliveries from `outbox` as `holder`.
    pub fn new(
        outbox: Arc<dyn WebhookOutbox>,
        sender: Arc<dyn WebhookSender>,
        secrets: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
        holder: LeaseHolder,
        settings: DispatchSettings,
    ) -> Self {
        Self {
            outbox,
            sender,
            secrets,
            clock,
            holder,
            settings,
        }
    }

    /// Sends deliveries until `stop` completes, then waits for the attempts in flight
    /// to end (each is bounded by the sender's timeout), so that their outcomes are
    /// recorded rather than left to run out their claims.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut in_flight = JoinSet::new();
        let concurrency = self.settings.concurrency.max(1);
        loop {
            let free =
                concurrency.saturating_sub(u32::try_from(in_flight.len()).unwrap_or(u32::MAX));
            let mut claimed_all = false;
            if free > 0 {
                match self.claim(free).await {
                    Ok(due) => {
                        claimed_all = u32::try_from(due.len()).unwrap_or(u32::MAX) == free;
                        for delivery in due {
                            let this = self.clone();
                            in_flight.spawn(async move { this.deliver(delivery).await });
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), "webhook deliveries not claimed");
                    }
                }
            }
            // With every slot used or more due, go again as soon as one attempt ends;
            // otherwise wait for the next poll.
            let wait = if claimed_all && free == concurrency {
                Duration::ZERO
            } else {
                self.settings.poll_interval
            };
            tokio::select! {
                () = &mut stop => break,
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Claims up to `limit` due deliveries.
    async fn claim(&self, limit: u32) -> Result<Vec<DueDelivery>, crate::error::RepoError> {
        let now = self.clock.now();
        let until = now.saturating_add(self.settings.claim);
        self.outbox.claim_due(self.holder, now, until, limit).await
    }

    /// Makes one attempt at `due` and records how it ended. Returns that outcome.
    pub async fn deliver(&self, due: DueDelivery) -> DeliveryOutcome {
        let attempts = due.delivery.attempts.saturating_add(1);
        let id = due.delivery.id;
        let result = match self.secrets.secret(&due.secret_env) {
            Some(secret) => self
                .sender
                .send(&due, &secret)
                .await
                .map_err(|error| error_chain(&error)),
            None => Err(format!(
                "the environment variable {} named by secret_env is not set",
                due.secret_env.as_str()
            )),
        };
        let outcome = match result {
            Ok(()) => DeliveryOutcome::Delivered {
                at: self.clock.now(),
            },
            Err(error) => self
                .settings
                .retry
                .after_failure(id, attempts, error, self.clock.now()),
        };
        if let Err(error) = self.outbox.finish(id, self.holder, &outcome).await {
            // Its claim ran out and it is someone else's now, or storage failed: either
            // way the delivery stays pending and is sent again, which at least once
            // allows.
            tracing::warn!(delivery = %id, error = %error_chain(&error), "webhook outcome not recorded");
        }
        outcome
    }

    /// One round, for tests and start-up: claims what is due and sends it all.
    ///
    /// # Errors
    /// When the claim fails.
    pub async fn deliver_due(&self) -> Result<Vec<DeliveryOutcome>, crate::error::RepoError> {
        let due = self.claim(self.settings.concurrency.max(1)).await?;
        Ok(futures::future::join_all(due.into_iter().map(|d| self.deliver(d))).await)
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::{always, eq};

    use super::*;
    use crate::bot::BotId;
    use crate::conversation::Conversation;
    use crate::conversation::ConversationId;
    use crate::ports::{MockSecretSource, MockWebhookOutbox, MockWebhookSender, WebhookSendError};
    use crate::session::SessionId;
    use crate::testing::FixedClock;
    use crate::timestamp::Timestamp;
    use crate::user::UserId;
    use crate::webhook::{
        Delivery, DeliveryId, DeliveryState, EventData, EventType, SecretEnv, WebhookId, WebhookUrl,
    };

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis).unwrap()
    }

    fn due(attempts: u32) -> DueDelivery {
        let conversation = Conversation::begun(
            ConversationId::from_uuid(uuid::Uuid::from_u128(3)),
            SessionId::from_uuid(uuid::Uuid::from_u128(4)),
            UserId::parse("ana").unwrap(),
            BotId::parse("echo").unwrap(),
            at(0),
        );
        DueDelivery {
            delivery: Delivery {
                id: DeliveryId::from_uuid(uuid::Uuid::from_u128(7)),
                webhook_id: WebhookId::from_uuid(uuid::Uuid::from_u128(1)),
                event: EventType::ConversationStarted,
                conversation_id: ConversationId::from_uuid(conversation.id.as_uuid()),
                state: DeliveryState::Pending,
                attempts,
                next_attempt_at: Some(at(0)),
                last_error: None,
                created_at: at(0),
                delivered_at: None,
            },
            url: WebhookUrl::parse("http://127.0.0.1:9/hook").unwrap(),
            secret_env: SecretEnv::parse("HOOK_SECRET").unwrap(),
            data: EventData::Conversation(Box::new(conversation)),
        }
    }

    fn settings() -> DispatchSettings {
        DispatchSettings {
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_secs(10),
                max_backoff: Duration::from_secs(60),
            },
            ..DispatchSettings::default()
        }
    }

    fn dispatcher(
        outbox: MockWebhookOutbox,
        sender: MockWebhookSender,
        secret: Option<&'static [u8]>,
    ) -> WebhookDispatcher {
        let mut secrets = MockSecretSource::new();
        secrets
            .expect_secret()
            .returning(move |_| secret.map(<[u8]>::to_vec));
        WebhookDispatcher::new(
            Arc::new(outbox),
            Arc::new(sender),
            Arc::new(secrets),
            Arc::new(FixedClock(at(1_000_000))),
            LeaseHolder::from_uuid(uuid::Uuid::from_u128(99)),
            settings(),
        )
    }

    #[tokio::test]
    async fn an_accepted_delivery_is_recorded_as_delivered_signed_with_the_named_secret() {
        let mut sender = MockWebhookSender::new();
        sender
            .expect_send()
            .withf(|_, secret| secret == b"s3cret")
            .times(1)
            .returning(|_, _| Ok(()));
        let mut outbox = MockWebhookOutbox::new();
        outbox
            .expect_finish()
            .with(
                eq(due(0).delivery.id),
                always(),
                eq(DeliveryOutcome::Delivered { at: at(1_000_000) }),
            )
            .times(1)
            .returning(|_, _, _| Ok(()));
        let outcome = dispatcher(outbox, sender, Some(b"s3cret"))
            .deliver(due(0))
            .await;
        assert_eq!(outcome, DeliveryOutcome::Delivered { at: at(1_000_000) });
    }

    #[tokio::test]
    async fn a_failed_attempt_is_retried_after_a_backoff_that_grows() {
        let mut first = None;
        for attempts_before in [0, 1] {
            let mut sender = MockWebhookSender::new();
            sender
                .expect_send()
                .returning(|_, _| Err(WebhookSendError::Status(503)));
            let mut outbox = MockWebhookOutbox::new();
            outbox.expect_finish().returning(|_, _, _| Ok(()));
            let outcome = dispatcher(outbox, sender, Some(b"k"))
                .deliver(due(attempts_before))
                .await;
            let DeliveryOutcome::Retry {
                attempts,
                error,
                at: next,
            } = outcome
            else {
                panic!("expected a retry, got {outcome:?}");
            };
            assert_eq!(attempts, attempts_before + 1);
            assert!(error.contains("503"), "{error}");
            let wait = next.unix_millis() - 1_000_000;
            let full = 10_000 * (1 << attempts_before);
            assert!(wait >= full / 2 && wait <= full, "waited {wait} ms");
            if let Some(previous) = first {
                assert!(wait > previous, "{wait} after {previous}");
            }
            first = Some(wait);
        }
    }

    #[tokio::test]
    async fn the_last_allowed_failure_marks_the_delivery_failed() {
        let mut sender = MockWebhookSender::new();
        sender
            .expect_send()
            .returning(|_, _| Err(WebhookSendError::Timeout));
        let mut outbox = MockWebhookOutbox::new();
        outbox
            .expect_finish()
            .withf(|_, _, outcome| matches!(outcome, DeliveryOutcome::Failed { attempts: 3, .. }))
            .times(1)
            .returning(|_, _, _| Ok(()));
        let outcome = dispatcher(outbox, sender, Some(b"k")).deliver(due(2)).await;
        assert!(matches!(
            outcome,
            DeliveryOutcome::Failed { attempts: 3, .. }
        ));
    }

    #[tokio::test]
    async fn a_missing_secret_counts_as_a_failed_attempt_and_sends_nothing() {
        let mut sender = MockWebhookSender::new();
        sender.expect_send().never();
        let mut outbox = MockWebhookOutbox::new();
        outbox
            .expect_finish()
            .withf(|_, _, outcome| {
                matches!(outcome, DeliveryOutcome::Retry { error, .. } if error.contains("HOOK_SECRET"))
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        dispatcher(outbox, sender, None).deliver(due(0)).await;
    }

    #[tokio::test]
    async fn a_round_sends_only_what_storage_hands_out_as_due() {
        // Ordering is storage's promise (`claim_due` hands out the oldest pending
        // delivery of each conversation only); the dispatcher sends exactly those and
        // claims with a lease that outlives an attempt.
        let mut outbox = MockWebhookOutbox::new();
        outbox
            .expect_claim_due()
            .withf(|_, now, until, limit| {
                *now == at(1_000_000) && *until == at(1_060_000) && *limit == 16
            })
            .times(1)
            .returning(|_, _, _, _| Ok(vec![due(0)]));
        outbox.expect_finish().times(1).returning(|_, _, _| Ok(()));
        let mut sender = MockWebhookSender::new();
        sender.expect_send().times(1).returning(|_, _| Ok(()));
        let outcomes = dispatcher(outbox, sender, Some(b"k"))
            .deliver_due()
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 1);
    }
}
