//! `/webhooks`: the subscriptions of outgoing webhooks and their deliveries, for
//! administrators. What is sent, and how, is in docs/webhooks.md.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_domain::conversation::PageSize;
use confab_domain::webhook::{
    Delivery, DeliveryId, DeliveryQuery, DeliveryState, EventSet, SecretEnv, Webhook, WebhookUrl,
    parse_description,
};
use confab_domain::webhooks::{WebhookChanges, WebhookDraft};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, DeliveryPath, WebhookPath};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/webhooks/{id}",
            get(get_webhook)
                .patch(update_webhook)
                .delete(delete_webhook),
        )
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            post(redeliver),
        )
}

/// An event a subscription may ask for; only its schema is used, the domain reads the
/// names so that an unknown one is named in the error.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) enum EventTypeBody {
    /// A conversation was started.
    #[schema(rename = "conversation.started")]
    ConversationStarted,
    /// A message was stored: the user's, the bot's, an agent's or confab's own.
    #[schema(rename = "message.created")]
    MessageCreated,
    /// A conversation was archived.
    #[schema(rename = "conversation.archived")]
    ConversationArchived,
    /// An archived conversation was made active again.
    #[schema(rename = "conversation.unarchived")]
    ConversationUnarchived,
    /// A conversation was deleted (by its user, an administrator or retention).
    #[schema(rename = "conversation.deleted")]
    ConversationDeleted,
    /// A user rated a bot reply or changed their rating.
    #[schema(rename = "feedback.created")]
    FeedbackCreated,
    /// A conversation moved between its bot, the agents' queue and an agent.
    #[schema(rename = "handoff.changed")]
    HandoffChanged,
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct WebhookBody {
    /// Its id.
    #[schema(format = Uuid)]
    id: String,
    /// Where deliveries are POSTed.
    url: String,
    /// The events it gets.
    #[schema(value_type = Vec<EventTypeBody>)]
    events: Vec<String>,
    /// The environment variable holding the secret that signs its deliveries.
    secret_env: String,
    /// What it is for.
    description: String,
    /// When it was registered.
    #[schema(format = DateTime)]
    created_at: String,
    /// When it last changed.
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<Webhook> for WebhookBody {
    fn from(webhook: Webhook) -> Self {
        Self {
            id: webhook.id.to_string(),
            url: webhook.url.as_str().to_owned(),
            events: webhook
                .events
                .iter()
                .map(|event| event.as_str().to_owned())
                .collect(),
            secret_env: webhook.secret_env.as_str().to_owned(),
            description: webhook.description,
            created_at: webhook.created_at.to_rfc3339(),
            updated_at: webhook.updated_at.to_rfc3339(),
        }
    }
}

/// Every subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct WebhookListResponse {
    /// Oldest first.
    webhooks: Vec<WebhookBody>,
}

/// `POST /webhooks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWebhookBody {
    /// An absolute http or https URL.
    #[schema(
        max_length = 2048,
        pattern = "^https?://[^\\s/?#\\x00-\\x1f\\x7f-\\x9f]+[^\\s\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    url: String,
    /// The events to deliver, at least one.
    #[schema(value_type = Vec<EventTypeBody>, min_items = 1)]
    events: Vec<String>,
    /// The name of the environment variable, set on every instance, holding the
    /// signing secret. The secret itself is never stored or shown.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z_][A-Za-z0-9_]*$")]
    secret_env: String,
    /// What it is for, at most 1000 characters, without NUL.
    #[serde(default)]
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*$")]
    description: String,
}

/// `PATCH /webhooks/{id}`: the fields to change, at least one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub(crate) struct UpdateWebhookBody {
    /// A new URL.
    #[schema(
        max_length = 2048,
        pattern = "^https?://[^\\s/?#\\x00-\\x1f\\x7f-\\x9f]+[^\\s\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    url: Option<String>,
    /// New events; events recorded before the change keep their deliveries.
    #[schema(value_type = Option<Vec<EventTypeBody>>, min_items = 1)]
    events: Option<Vec<String>>,
    /// A new secret variable.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z_][A-Za-z0-9_]*$")]
    secret_env: Option<String>,
    /// A new description.
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeliveryStateBody {
    /// Waiting for its turn, its first attempt or a retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; only a redelivery sends it again.
    Failed,
}

impl From<DeliveryState> for DeliveryStateBody {
    fn from(state: DeliveryState) -> Self {
        match state {
            DeliveryState::Pending => Self::Pending,
            DeliveryState::Delivered => Self::Delivered,
            DeliveryState::Failed => Self::Failed,
        }
    }
}

impl From<DeliveryStateBody> for DeliveryState {
    fn from(state: DeliveryStateBody) -> Self {
        match state {
            DeliveryStateBody::Pending => Self::Pending,
            DeliveryStateBody::Delivered => Self::Delivered,
            DeliveryStateBody::Failed => Self::Failed,
        }
    }
}

/// One event for one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct DeliveryBody {
    /// Its id: the `X-Confab-Delivery` header and the body's `id`, the same on every
    /// attempt.
    #[schema(format = Uuid)]
    id: String,
    /// The subscription.
    #[schema(format = Uuid)]
    webhook_id: String,
    /// The event.
    #[serde(rename = "type")]
    #[schema(value_type = EventTypeBody)]
    kind: String,
    /// The conversation it happened to.
    #[schema(format = Uuid)]
    conversation_id: String,
    /// Where it stands.
    state: DeliveryStateBody,
    /// Attempts made since it was recorded or last redelivered.
    attempts: u32,
    /// When it is next tried, while pending.
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// When the event happened.
    #[schema(format = DateTime)]
    created_at: String,
    /// When the receiver accepted it.
    #[schema(format = DateTime)]
    delivered_at: Option<String>,
}

impl From<Delivery> for DeliveryBody {
    fn from(delivery: Delivery) -> Self {
        Self {
            id: delivery.id.to_string(),
            webhook_id: delivery.webhook_id.to_string(),
            kind: delivery.event.as_str().to_owned(),
            conversation_id: delivery.conversation_id.to_string(),
            state: delivery.state.into(),
            attempts: delivery.attempts,
            next_attempt_at: delivery.next_attempt_at.map(|at| at.to_rfc3339()),
            last_error: delivery.last_error,
            created_at: delivery.created_at.to_rfc3339(),
            delivered_at: delivery.delivered_at.map(|at| at.to_rfc3339()),
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct DeliveryListResponse {
    /// Newest first.
    deliveries: Vec<DeliveryBody>,
    /// Pass as `before` for the next page; null on the last.
    #[schema(format = Uuid)]
    next_cursor: Option<String>,
}

/// `GET /webhooks/{id}/deliveries`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveriesParams {
    /// Only deliveries in this state.
    #[serde(default)]
    #[param(inline)]
    state: Option<DeliveryStateBody>,
    /// Only deliveries older than this one: the previous page's `next_cursor`.
    #[param(format = Uuid)]
    before: Option<String>,
    /// How many, 1 to 100; 50 by default.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
}

const DELIVERIES_DEFAULT: u32 = 50;
const DELIVERIES_MAX: u32 = 100;

/// Lists every subscription (administrators only).
#[utoipa::path(
    get,
    path = "/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every subscription, oldest first.", body = WebhookListResponse),
        crate::problems::AdminErrors,
    )
)]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<WebhookListResponse>, ApiError> {
    let webhooks = state.webhooks.list(&caller).await?;
    Ok(Json(WebhookListResponse {
        webhooks: webhooks.into_iter().map(WebhookBody::from).collect(),
    }))
}

/// Registers a subscription (administrators only). Events that happen from now on
/// are delivered to it. The variable named by `secret_env` must be set on this
/// server, or the request is refused with 400.
#[utoipa::path(
    post,
    path = "/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = CreateWebhookBody,
    responses(
        (status = 201, description = "The new subscription.", body = WebhookBody, links(
            ("GetWebhook" = (operation_id = "get_webhook", parameters(("id" = "$response.body#/id")))),
            ("UpdateWebhook" = (operation_id = "update_webhook", parameters(("id" = "$response.body#/id")))),
            ("DeleteWebhook" = (operation_id = "delete_webhook", parameters(("id" = "$response.body#/id")))),
            ("ListDeliveries" = (operation_id = "deliveries", parameters(("id" = "$response.body#/id")))),
        )),
        crate::problems::AdminErrors,
    )
)]
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateWebhookBody>,
) -> Result<(StatusCode, Json<WebhookBody>), ApiError> {
    let draft = WebhookDraft {
        url: WebhookUrl::parse(&body.url)?,
        events: EventSet::parse(&body.events)?,
        secret_env: SecretEnv::parse(&body.secret_env)?,
        description: parse_description(&body.description)?,
    };
    let webhook = state.webhooks.create(&caller, draft).await?;
    Ok((StatusCode::CREATED, Json(webhook.into())))
}

/// One subscription (administrators only).
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The subscription's id.")),
    responses(
        (status = 200, description = "The subscription.", body = WebhookBody),
        crate::problems::AdminErrors,
        (status = 404, response = crate::problems::NotFound),
    )
)]
pub(crate) async fn get_webhook(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    WebhookPath(id): WebhookPath,
) -> Result<Json<WebhookBody>, ApiError> {
    Ok(Json(state.webhooks.get(&caller, id).await?.into()))
}

/// Changes a subscription (administrators only); events recorded from now on follow
/// the new settings, and pending deliveries go to the new URL.
#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The subscription's id.")),
    request_body = UpdateWebhookBody,
    responses(
        (status = 200, description = "The subscription as it now is.", body = WebhookBody),
        crate::problems::AdminErrors,
        (status = 404, response = crate::problems::NotFound),
    )
)]
pub(crate) async fn update_webhook(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    WebhookPath(id): WebhookPath,
    ApiJson(body): ApiJson<UpdateWebhookBody>,
) -> Result<Json<WebhookBody>, ApiError> {
    let changes = WebhookChanges {
        url: body.url.as_deref().map(WebhookUrl::parse).transpose()?,
        events: body.events.as_deref().map(EventSet::parse).transpose()?,
        secret_env: body
            .secret_env
            .as_deref()
            .map(SecretEnv::parse)
            .transpose()?,
        description: body
            .description
            .as_deref()
            .map(parse_description)
            .transpose()?,
    };
    Ok(Json(
        state.webhooks.update(&caller, id, changes).await?.into(),
    ))
}

/// Removes a subscription and its deliveries (administrators only); nothing more is
/// sent to it.
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The subscription's id.")),
    responses(
        (status = 204, description = "The subscription is gone."),
        crate::problems::AdminErrors,
        (status = 404, response = crate::problems::NotFound),
    )
)]
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    WebhookPath(id): WebhookPath,
) -> Result<StatusCode, ApiError> {
    state.webhooks.delete(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A subscription's deliveries, newest first (administrators only): what was sent,
/// what waits, and what failed for good.
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The subscription's id."),
        DeliveriesParams,
    ),
    responses(
        (status = 200, description = "A page of deliveries.", body = DeliveryListResponse),
        crate::problems::AdminErrors,
        (status = 404, response = crate::problems::NotFound),
    )
)]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    WebhookPath(id): WebhookPath,
    ApiQuery(params): ApiQuery<DeliveriesParams>,
) -> Result<Json<DeliveryListResponse>, ApiError> {
    let limit = match params.limit {
        Some(limit) => PageSize::parse(limit, DELIVERIES_MAX)?,
        None => PageSize::clamped(DELIVERIES_DEFAULT, DELIVERIES_MAX),
    };
    let query = DeliveryQuery {
        state: params.state.map(Into::into),
        before: params
            .before
            .as_deref()
            .map(str::parse::<DeliveryId>)
            .transpose()?,
        limit: limit.get(),
    };
    let deliveries = state.webhooks.deliveries(&caller, id, &query).await?;
    let full = u32::try_from(deliveries.len()).is_ok_and(|len| len == limit.get());
    let next_cursor = full
        .then(|| deliveries.last().map(|last| last.id.to_string()))
        .flatten();
    Ok(Json(DeliveryListResponse {
        deliveries: deliveries.into_iter().map(DeliveryBody::from).collect(),
        next_cursor,
    }))
}

/// Sends a delivery again (administrators only), a failed one usually: it becomes
/// pending with a fresh count of attempts, keeps its id, and goes out after the
/// conversation's earlier pending events.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The subscription's id."),
        ("delivery_id" = String, Path, format = Uuid, description = "The delivery's id."),
    ),
    responses(
        (status = 200, description = "The delivery, pending again.", body = DeliveryBody),
        crate::problems::AdminErrors,
        (status = 404, response = crate::problems::NotFound),
    )
)]
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    DeliveryPath(id, delivery): DeliveryPath,
) -> Result<Json<DeliveryBody>, ApiError> {
    Ok(Json(
        state
            .webhooks
            .redeliver(&caller, id, delivery)
            .await?
            .into(),
    ))
}
