//! `POST /conversations/batch`: archive, unarchive or delete many conversations at
//! once, by id (anyone, their own conversations) or, for administrators, by filter
//! with an optional dry run.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use confab_domain::bot::BotId;
use confab_domain::conversation::ConversationId;
use confab_domain::conversation::ConversationSelection;
use confab_domain::service::{BATCH_MAX_IDS, BatchAction, BatchOutcome};
use confab_domain::timestamp::Timestamp;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::auth::Authenticated;
use crate::dto::text::{BotIdText, absent};
use crate::dto::{StatusBody, present};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/conversations/batch", post(batch))
}

/// What a batch does.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BatchActionBody {
    /// Set the status to `archived`.
    Archive,
    /// Set the status to `active`.
    Unarchive,
    /// Erase the conversation, its session and messages.
    Delete,
}

impl From<BatchActionBody> for BatchAction {
    fn from(action: BatchActionBody) -> Self {
        match action {
            BatchActionBody::Archive => Self::Archive,
            BatchActionBody::Unarchive => Self::Unarchive,
            BatchActionBody::Delete => Self::Delete,
        }
    }
}

/// Which conversations an administrator's batch acts on, across every user. Unset
/// members do not filter; at least one must be set, and none may be null.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub(crate) struct BatchFilterBody {
    /// Only conversations with this bot.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = BotIdText)]
    bot_id: Option<String>,
    /// Only conversations in this status.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    status: Option<StatusBody>,
    /// Only conversations whose last activity is older than this RFC 3339 time.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, format = DateTime)]
    inactive_before: Option<String>,
}

/// `POST /conversations/batch`: either `ids` or (administrators only) `filter`, as
/// the document's `BatchRequest` says.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchBody {
    /// What to do.
    action: BatchActionBody,
    /// The conversations, 1 to 100 ids; each gets a result in this order.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<uuid::Uuid>, min_items = 1, max_items = 100)]
    ids: Option<Vec<String>>,
    /// Administrators: act on every conversation matching this instead.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    filter: Option<BatchFilterBody>,
    /// With `filter`: only count the matching conversations, change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// The document's schema of a batch: [`BatchBody`] with exactly one of `ids` and
/// `filter`, and `dry_run` only with `filter`.
pub(crate) struct BatchRequest;

impl PartialSchema for BatchRequest {
    fn schema() -> RefOr<Schema> {
        let dry_run_false = ObjectBuilder::new()
            .schema_type(Type::Boolean)
            .enum_values(Some([false]));
        AllOfBuilder::new()
            .description(Some(
                "Either `ids` or `filter` (administrators only), not both; `dry_run` \
                 only with `filter`.",
            ))
            .item(Ref::from_schema_name(BatchBody::name()))
            .item(
                OneOfBuilder::new()
                    .item(
                        AllOfBuilder::new()
                            .item(
                                ObjectBuilder::new()
                                    .required("ids")
                                    .property("dry_run", dry_run_false),
                            )
                            .item(absent("filter")),
                    )
                    .item(
                        AllOfBuilder::new()
                            .item(ObjectBuilder::new().required("filter"))
                            .item(absent("ids")),
                    ),
            )
            .into()
    }
}

impl ToSchema for BatchRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("BatchRequest")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((BatchBody::name().into_owned(), BatchBody::schema()));
        BatchBody::schemas(schemas);
    }
}

/// What happened to one conversation of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BatchStatusBody {
    /// Done (also when it already had the requested status).
    Ok,
    /// No such conversation, or not the caller's.
    NotFound,
    /// A storage failure; nothing changed for this id, a retry may succeed.
    Failed,
}

/// One id's result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BatchItemBody {
    /// The conversation.
    #[schema(format = Uuid)]
    id: String,
    /// What happened to it.
    status: BatchStatusBody,
}

/// The answer to a batch: `results` for a batch by ids; `matched`, `changed` and
/// `dry_run` for a batch by filter.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BatchResponse {
    /// One result per id, in request order (batch by ids).
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<Vec<BatchItemBody>>,
    /// Conversations matching the filter (batch by filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    matched: Option<u64>,
    /// Conversations changed (batch by filter; 0 for a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<u64>,
    /// Whether this was a dry run (batch by filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
}

/// Archives, unarchives or deletes up to 100 conversations by id, with one result per
/// id in request order (others' and unknown ids are `not_found`); or, for
/// administrators, every conversation matching a filter, with `dry_run` to count them
/// first. Subscribers of each changed conversation get a `status` event.
#[utoipa::path(
    post,
    path = "/conversations/batch",
    tag = "conversations",
    security(("bearer" = [])),
    request_body = BatchRequest,
    responses(
        (status = 200, description = "The batch ran.", body = BatchResponse),
        crate::problems::AdminErrors,
    )
)]
pub(crate) async fn batch(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Json<BatchResponse>, ApiError> {
    let action = BatchAction::from(body.action);
    match (body.ids, body.filter) {
        (Some(ids), None) => {
            if body.dry_run {
                return Err(ApiError::invalid_request(
                    "dry_run goes with filter, not with ids",
                ));
            }
            if ids.is_empty() || ids.len() > BATCH_MAX_IDS {
                return Err(ApiError::invalid_request(format!(
                    "ids must hold 1 to {BATCH_MAX_IDS} conversation ids, not {}",
                    ids.len()
                )));
            }
            let ids = ids
                .iter()
                .map(|id| id.parse::<ConversationId>())
                .collect::<Result<Vec<_>, _>>()?;
            let results = state.service.batch(&caller, action, &ids).await?;
            Ok(Json(BatchResponse {
                results: Some(
                    results
                        .into_iter()
                        .map(|result| BatchItemBody {
                            id: result.id.to_string(),
                            status: match result.outcome {
                                BatchOutcome::Ok => BatchStatusBody::Ok,
                                BatchOutcome::NotFound => BatchStatusBody::NotFound,
                                BatchOutcome::Failed => BatchStatusBody::Failed,
                            },
                        })
                        .collect(),
                ),
                matched: None,
                changed: None,
                dry_run: None,
            }))
        }
        (None, Some(filter)) => {
            if !caller.is_admin() {
                return Err(ApiError::forbidden(
                    "only administrators may act on conversations by filter",
                ));
            }
            let selection = ConversationSelection {
                bot_id: filter.bot_id.as_deref().map(BotId::parse).transpose()?,
                status: filter.status.map(Into::into),
                inactive_before: filter
                    .inactive_before
                    .as_deref()
                    .map(Timestamp::parse_rfc3339)
                    .transpose()?,
                ..ConversationSelection::default()
            };
            if selection == ConversationSelection::default() {
                return Err(ApiError::invalid_request(
                    "filter must set at least one of bot_id, status and inactive_before",
                ));
            }
            let outcome = state
                .admin
                .act_on_selection(&caller, action, &selection, body.dry_run)
                .await?;
            Ok(Json(BatchResponse {
                results: None,
                matched: Some(outcome.matched),
                changed: Some(outcome.changed),
                dry_run: Some(body.dry_run),
            }))
        }
        (Some(_), Some(_)) => Err(ApiError::invalid_request(
            "give either ids or filter, not both",
        )),
        (None, None) => Err(ApiError::invalid_request("give ids or filter")),
    }
}
