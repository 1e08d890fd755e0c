//! `WebhookRepository` and `WebhookOutbox` on `webhooks` and `webhook_deliveries`.
//!
//! Deliveries are written by the triggers of the migration
//! `m20261204_000003_add_webhooks`, never here. Claiming is one `UPDATE … RETURNING`:
//! on PostgreSQL its candidates are locked `FOR UPDATE SKIP LOCKED`, so instances
//! claiming at once take different deliveries, and the claim (`holder`,
//! `claim_until_ms`) keeps a delivery in flight from being taken again until it runs
//! out. SQLite has one writer and one instance.

use async_trait::async_trait;
use confab_domain::conversation::{Conversation, ConversationId};
use confab_domain::error::RepoError;
use confab_domain::lease::LeaseHolder;
use confab_domain::message::Message;
use confab_domain::ports::{WebhookOutbox, WebhookRepository};
use confab_domain::timestamp::Timestamp;
use confab_domain::webhook::{
    Delivery, DeliveryId, DeliveryOutcome, DeliveryQuery, DeliveryState, DueDelivery, EventData,
    EventSet, EventType, SecretEnv, Webhook, WebhookId, WebhookUrl,
};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value};
use serde::Deserialize;
use uuid::Uuid;

use crate::entity::{conversation, message};
use crate::error::{RowError, repo_error};
use crate::rows::millis;
use crate::sql::statement;
use crate::store::SeaOrmStore;

const WEBHOOKS: &str = "webhooks";
const DELIVERIES: &str = "webhook_deliveries";

const WEBHOOK_COLUMNS: &str =
    "id, url, events, secret_env, description, created_at_ms, updated_at_ms";

const DELIVERY_COLUMNS: &str = "seq, id, webhook_id, conversation_id, event_type, data, state, \
    attempts, next_attempt_ms, last_error, created_at_ms, delivered_at_ms";

/// Claims for holder `#1#` until `#2#` up to `#4#` pending deliveries due at `#3#`:
/// unclaimed or with an expired claim, and each the oldest pending one of its
/// subscription and conversation. `{lock}` is PostgreSQL's `FOR UPDATE SKIP LOCKED`.
const CLAIM_SQL: &str = "\
UPDATE webhook_deliveries SET holder = #1#, claim_until_ms = #2# \
WHERE seq IN (SELECT d.seq FROM webhook_deliveries d \
WHERE d.state = 'pending' AND d.next_attempt_ms <= #3# \
AND (d.claim_until_ms IS NULL OR d.claim_until_ms <= #3#) \
AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.state = 'pending' \
AND e.webhook_id = d.webhook_id AND e.conversation_id = d.conversation_id AND e.seq < d.seq) \
ORDER BY d.seq LIMIT #4#{lock}) \
AND state = 'pending' AND (claim_until_ms IS NULL OR claim_until_ms <= #3#) \
RETURNING ";

/// Records an outcome (`#1#` state … `#5#` delivered at) of delivery `#6#` if holder
/// `#7#` still holds it.
const FINISH_SQL: &str = "\
UPDATE webhook_deliveries SET state = #1#, attempts = #2#, next_attempt_ms = #3#, \
last_error = #4#, delivered_at_ms = #5#, holder = NULL, claim_until_ms = NULL \
WHERE id = #6# AND holder = #7#";

const REDELIVER_SQL: &str = "\
UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_ms = #1#, \
delivered_at_ms = NULL, holder = NULL, claim_until_ms = NULL \
WHERE webhook_id = #2# AND id = #3# RETURNING ";

fn events_text(events: &EventSet) -> String {
    let mut text = String::from(",");
    for event in events.iter() {
        text.push_str(event.as_str());
        text.push(',');
    }
    text
}

fn row_error(table: &'static str, error: impl std::fmt::Display) -> RepoError {
    RowError::new(table, error.to_string()).into()
}

fn timestamp(table: &'static str, millis: i64) -> Result<Timestamp, RepoError> {
    Timestamp::from_unix_millis(millis).map_err(|e| row_error(table, e))
}

fn webhook_row(row: &QueryResult) -> Result<Webhook, RepoError> {
    let get_text = |column: &str| row.try_get::<String>("", column).map_err(repo_error);
    let events = get_text("events")?;
    let names: Vec<&str> = events.split(',').filter(|name| !name.is_empty()).collect();
    Ok(Webhook {
        id: WebhookId::from_uuid(row.try_get::<Uuid>("", "id").map_err(repo_error)?),
        url: WebhookUrl::parse(&get_text("url")?).map_err(|e| row_error(WEBHOOKS, e))?,
        events: EventSet::parse(&names).map_err(|e| row_error(WEBHOOKS, e))?,
        secret_env: SecretEnv::parse(&get_text("secret_env")?)
            .map_err(|e| row_error(WEBHOOKS, e))?,
        description: get_text("description")?,
        created_at: timestamp(
            WEBHOOKS,
            row.try_get("", "created_at_ms").map_err(repo_error)?,
        )?,
        updated_at: timestamp(
            WEBHOOKS,
            row.try_get("", "updated_at_ms").map_err(repo_error)?,
        )?,
    })
}

fn delivery_row(row: &QueryResult) -> Result<Delivery, RepoError> {
    let event: String = row.try_get("", "event_type").map_err(repo_error)?;
    let state: String = row.try_get("", "state").map_err(repo_error)?;
    let attempts: i32 = row.try_get("", "attempts").map_err(repo_error)?;
    let optional_time = |column: &str| -> Result<Option<Timestamp>, RepoError> {
        row.try_get::<Option<i64>>("", column)
            .map_err(repo_error)?
            .map(|ms| timestamp(DELIVERIES, ms))
            .transpose()
    };
    Ok(Delivery {
        id: DeliveryId::from_uuid(row.try_get("", "id").map_err(repo_error)?),
        webhook_id: WebhookId::from_uuid(row.try_get("", "webhook_id").map_err(repo_error)?),
        event: EventType::parse(&event).map_err(|e| row_error(DELIVERIES, e))?,
        conversation_id: ConversationId::from_uuid(
            row.try_get("", "conversation_id").map_err(repo_error)?,
        ),
        state: DeliveryState::parse(&state)
            .ok_or_else(|| row_error(DELIVERIES, format!("state {state:?}")))?,
        attempts: u32::try_from(attempts).map_err(|e| row_error(DELIVERIES, e))?,
        next_attempt_at: optional_time("next_attempt_ms")?,
        last_error: row.try_get("", "last_error").map_err(repo_error)?,
        created_at: timestamp(
            DELIVERIES,
            row.try_get("", "created_at_ms").map_err(repo_error)?,
        )?,
        delivered_at: optional_time("delivered_at_ms")?,
    })
}

/// A UUID as a trigger wrote it: hex on SQLite, hyphenated on PostgreSQL.
fn snapshot_uuid<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
    let text = String::deserialize(deserializer)?;
    Uuid::parse_str(&text).map_err(serde::de::Error::custom)
}

fn snapshot_optional_uuid<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Uuid>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| Uuid::parse_str(&text).map_err(serde::de::Error::custom))
        .transpose()
}

/// A message row as the outbox trigger copied it.
#[derive(Deserialize)]
struct MessageSnapshot {
    #[serde(deserialize_with = "snapshot_uuid")]
    id: Uuid,
    #[serde(deserialize_with = "snapshot_uuid")]
    conversation_id: Uuid,
    seq: i64,
    sender: String,
    sender_id: String,
    content: String,
    attachments: String,
    suggestions: String,
    client_message_id: Option<String>,
    #[serde(default, deserialize_with = "snapshot_optional_uuid")]
    reply_to: Option<Uuid>,
    timestamp_ms: i64,
    metadata: String,
    // Absent from snapshots written before the feedback columns existed.
    #[serde(default)]
    feedback_rating: Option<String>,
    #[serde(default)]
    feedback_comment: Option<String>,
    #[serde(default)]
    feedback_at_ms: Option<i64>,
}

/// A conversation row as the outbox trigger copied it.
#[derive(Deserialize)]
struct ConversationSnapshot {
    #[serde(deserialize_with = "snapshot_uuid")]
    id: Uuid,
    #[serde(deserialize_with = "snapshot_uuid")]
    session_id: Uuid,
    user_id: String,
    bot_id: String,
    status: String,
    title: Option<String>,
    metadata: String,
    created_at_ms: i64,
    last_activity_ms: i64,
    last_message: Option<String>,
    message_count: i64,
    last_seq: i64,
    last_user_seq: i64,
    replied_seq: i64,
    handoff: String,
    handoff_agent: Option<String>,
    handoff_since_ms: Option<i64>,
}

/// The event's record from its snapshot, through the same row mapping as reads.
fn event_data(event: EventType, data: &str) -> Result<EventData, RepoError> {
    if matches!(
        event,
        EventType::MessageCreated | EventType::FeedbackCreated
    ) {
        let s: MessageSnapshot =
            serde_json::from_str(data).map_err(|e| row_error(DELIVERIES, e))?;
        let row = message::Model {
            id: s.id,
            conversation_id: s.conversation_id,
            seq: s.seq,
            sender: s.sender,
            sender_id: s.sender_id,
            content: s.content,
            attachments: s.attachments,
            suggestions: s.suggestions,
            client_message_id: s.client_message_id,
            reply_to: s.reply_to,
            timestamp_ms: s.timestamp_ms,
            metadata: s.metadata,
            feedback_rating: s.feedback_rating,
            feedback_comment: s.feedback_comment,
            feedback_at_ms: s.feedback_at_ms,
        };
        return Ok(EventData::Message(Box::new(Message::try_from(row)?)));
    }
    let s: ConversationSnapshot =
        serde_json::from_str(data).map_err(|e| row_error(DELIVERIES, e))?;
    let row = conversation::Model {
        id: s.id,
        session_id: s.session_id,
        user_id: s.user_id,
        bot_id: s.bot_id,
        status: s.status,
        title: s.title,
        metadata: s.metadata,
        created_at_ms: s.created_at_ms,
        last_activity_ms: s.last_activity_ms,
        last_message: s.last_message,
        message_count: s.message_count,
        last_seq: s.last_seq,
        last_user_seq: s.last_user_seq,
        replied_seq: s.replied_seq,
        reply_holder: None,
        reply_lease_until_ms: None,
        handoff: s.handoff,
        handoff_agent: s.handoff_agent,
        handoff_since_ms: s.handoff_since_ms,
    };
    Ok(EventData::Conversation(Box::new(Conversation::try_from(
        row,
    )?)))
}

impl SeaOrmStore {
    fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    async fn webhook_query(
        &self,
        sql: &str,
        parameters: &[Value],
    ) -> Result<Vec<QueryResult>, RepoError> {
        self.db
            .query_all_raw(statement(sql, parameters, self.backend())?)
            .await
            .map_err(repo_error)
    }

    async fn webhook_execute(&self, sql: &str, parameters: &[Value]) -> Result<u64, RepoError> {
        Ok(self
            .db
            .execute_raw(statement(sql, parameters, self.backend())?)
            .await
            .map_err(repo_error)?
            .rows_affected())
    }
}

#[async_trait]
impl WebhookRepository for SeaOrmStore {
    async fn create_webhook(&self, webhook: &Webhook) -> Result<(), RepoError> {
        self.webhook_execute(
            &format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (#1#, #2#, #3#, #4#, #5#, #6#, #7#)"),
            &[
                webhook.id.as_uuid().into(),
                webhook.url.as_str().into(),
                events_text(&webhook.events).into(),
                webhook.secret_env.as_str().into(),
                webhook.description.as_str().into(),
                millis(webhook.created_at).into(),
                millis(webhook.updated_at).into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn webhook(&self, id: WebhookId) -> Result<Webhook, RepoError> {
        let rows = self
            .webhook_query(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = #1#"),
                &[id.as_uuid().into()],
            )
            .await?;
        rows.first().map(webhook_row).ok_or(RepoError::NotFound)?
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, RepoError> {
        self.webhook_query(
            &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at_ms, id"),
            &[],
        )
        .await?
        .iter()
        .map(webhook_row)
        .collect()
    }

    async fn update_webhook(&self, webhook: &Webhook) -> Result<(), RepoError> {
        let changed = self
            .webhook_execute(
                "UPDATE webhooks SET url = #2#, events = #3#, secret_env = #4#, \
                 description = #5#, updated_at_ms = #6# WHERE id = #1#",
                &[
                    webhook.id.as_uuid().into(),
                    webhook.url.as_str().into(),
                    events_text(&webhook.events).into(),
                    webhook.secret_env.as_str().into(),
                    webhook.description.as_str().into(),
                    millis(webhook.updated_at).into(),
                ],
            )
            .await?;
        if changed == 0 {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<(), RepoError> {
        // The deliveries go with it by the foreign key's cascade.
        let deleted = self
            .webhook_execute(
                "DELETE FROM webhooks WHERE id = #1#",
                &[id.as_uuid().into()],
            )
            .await?;
        if deleted == 0 {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }

    async fn deliveries(
        &self,
        webhook: WebhookId,
        query: &DeliveryQuery,
    ) -> Result<Vec<Delivery>, RepoError> {
        let mut sql =
            format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = #1#");
        let mut parameters: Vec<Value> =
            vec![webhook.as_uuid().into(), i64::from(query.limit).into()];
        if let Some(state) = query.state {
            parameters.push(state.as_str().into());
            sql.push_str(&format!(" AND state = #{}#", parameters.len()));
        }
        if let Some(before) = query.before {
            parameters.push(before.as_uuid().into());
            sql.push_str(&format!(
                " AND seq < (SELECT seq FROM webhook_deliveries WHERE id = #{}#)",
                parameters.len()
            ));
        }
        sql.push_str(" ORDER BY seq DESC LIMIT #2#");
        self.webhook_query(&sql, &parameters)
            .await?
            .iter()
            .map(delivery_row)
            .collect()
    }

    async fn redeliver(
        &self,
        webhook: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
    ) -> Result<Delivery, RepoError> {
        let rows = self
            .webhook_query(
                &format!("{REDELIVER_SQL}{DELIVERY_COLUMNS}"),
                &[
                    millis(now).into(),
                    webhook.as_uuid().into(),
                    delivery.as_uuid().into(),
                ],
            )
            .await?;
        rows.first().map(delivery_row).ok_or(RepoError::NotFound)?
    }
}

#[async_trait]
impl WebhookOutbox for SeaOrmStore {
    async fn claim_due(
        &self,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, RepoError> {
        let lock = match self.backend() {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let sql = format!("{}{DELIVERY_COLUMNS}", CLAIM_SQL.replace("{lock}", lock));
        let mut rows = self
            .webhook_query(
                &sql,
                &[
                    holder.as_uuid().into(),
                    millis(until).into(),
                    millis(now).into(),
                    i64::from(limit).into(),
                ],
            )
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // RETURNING promises no order.
        rows.sort_by_key(|row| row.try_get::<i64>("", "seq").unwrap_or(i64::MAX));
        let webhooks = self.webhooks().await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = delivery_row(row)?;
            let data: String = row.try_get("", "data").map_err(repo_error)?;
            // A subscription deleted since the claim took its deliveries with it.
            let Some(webhook) = webhooks.iter().find(|w| w.id == delivery.webhook_id) else {
                continue;
            };
            due.push(DueDelivery {
                data: event_data(delivery.event, &data)?,
                url: webhook.url.clone(),
                secret_env: webhook.secret_env.clone(),
                delivery,
            });
        }
        Ok(due)
    }

    async fn finish(
        &self,
        delivery: DeliveryId,
        holder: LeaseHolder,
        outcome: &DeliveryOutcome,
    ) -> Result<(), RepoError> {
        let (state, attempts, next, error, delivered): (_, Option<u32>, _, _, _) = match outcome {
            DeliveryOutcome::Delivered { at } => (
                DeliveryState::Delivered,
                None,
                None,
                None,
                Some(millis(*at)),
            ),
            DeliveryOutcome::Retry {
                attempts,
                error,
                at,
            } => (
                DeliveryState::Pending,
                Some(*attempts),
                Some(millis(*at)),
                Some(error.clone()),
                None,
            ),
            DeliveryOutcome::Failed { attempts, error } => (
                DeliveryState::Failed,
                Some(*attempts),
                None,
                Some(error.clone()),
                None,
            ),
        };
        // A delivery's attempts count the successful one too.
        let attempts_sql = match attempts {
            Some(_) => "#2#",
            None => "attempts + 1",
        };
        let sql = FINISH_SQL.replace("#2#", attempts_sql);
        let changed = self
            .webhook_execute(
                &sql,
                &[
                    state.as_str().into(),
                    i64::from(attempts.unwrap_or(0)).into(),
                    next.into(),
                    error.into(),
                    delivered.into(),
                    delivery.as_uuid().into(),
                    holder.as_uuid().into(),
                ],
            )
            .await?;
        if changed == 0 {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }
}
