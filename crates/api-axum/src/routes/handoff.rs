//! Handoff: a user (or an admin) asks for a person, and agents work the queue:
//! list it, claim a conversation, list theirs, give one back to its bot. Agents
//! send and read through the conversation routes, on the conversations they hold.

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_domain::conversation::{Conversation, PageSize};
use confab_domain::service::{HANDOFF_LIST_MAX, HandoffEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::dto::{ConversationBody, MessageBody};
use crate::error::ApiError;
use crate::extract::{ApiQuery, ConversationPath};
use crate::routes::conversations::{bot_name, bot_names, page_size};
use crate::state::AppState;

/// How many conversations a listing holds unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 50;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/conversations/{id}/handoff", post(request_handoff))
        .route("/agent/queue", get(queue))
        .route("/agent/conversations", get(held))
        .route("/agent/conversations/{id}/claim", post(claim))
        .route("/agent/conversations/{id}/release", post(release))
}

/// `GET /agent/queue` and `GET /agent/conversations`.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HandoffListParams {
    /// How many conversations, 1 to 100; 50 by default.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
}

/// A conversation in handoff, with its latest messages.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct HandoffEntryBody {
    /// The conversation; `handoff_since` tells how long it has waited or been held.
    conversation: ConversationBody,
    /// Its latest messages (at most 5), oldest first: what the user wants.
    recent_messages: Vec<MessageBody>,
}

/// Conversations in handoff, the longest waiting (or held) first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct HandoffListResponse {
    /// The conversations.
    conversations: Vec<HandoffEntryBody>,
}

/// Asks for a person to take the conversation over from its bot: by its user, or
/// by an admin (also to move it out of an agent's hands back to the queue). Asking
/// again changes nothing. Until an agent gives it back, the bot answers nothing.
#[utoipa::path(
    post,
    path = "/conversations/{id}/handoff",
    tag = "handoff",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The conversation's id.")),
    responses(
        (status = 200, description = "The conversation, waiting for an agent (or with one already).", body = ConversationBody),
        crate::problems::ResourceErrors,
        (status = 403, response = crate::problems::Forbidden),
    )
)]
pub(crate) async fn request_handoff(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ConversationPath(id): ConversationPath,
) -> Result<Json<ConversationBody>, ApiError> {
    let conversation = state.service.request_handoff(&caller, id).await?;
    conversation_body(&state, conversation).await
}

/// The conversations waiting for an agent, the longest waiting first, each with its
/// latest messages. Agents and admins only.
#[utoipa::path(
    get,
    path = "/agent/queue",
    tag = "handoff",
    security(("bearer" = [])),
    params(HandoffListParams),
    responses(
        (status = 200, description = "The queue.", body = HandoffListResponse),
        crate::problems::AdminErrors,
    )
)]
pub(crate) async fn queue(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(params): ApiQuery<HandoffListParams>,
) -> Result<Json<HandoffListResponse>, ApiError> {
    let entries = state.service.handoff_queue(&caller, limit(params)?).await?;
    list_response(&state, entries).await
}

/// The conversations the calling agent holds, the longest held first, each with its
/// latest messages.
#[utoipa::path(
    get,
    path = "/agent/conversations",
    tag = "handoff",
    security(("bearer" = [])),
    params(HandoffListParams),
    responses(
        (status = 200, description = "The caller's conversations.", body = HandoffListResponse),
        crate::problems::AdminErrors,
    )
)]
pub(crate) async fn held(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(params): ApiQuery<HandoffListParams>,
) -> Result<Json<HandoffListResponse>, ApiError> {
    let entries = state
        .service
        .held_conversations(&caller, limit(params)?)
        .await?;
    list_response(&state, entries).await
}

/// Takes a waiting conversation over: the caller writes as `agent` from now on, and
/// the bot stays silent. The first claim wins; a later one is `409 handoff_taken`,
/// a claim of a conversation nobody asked a person for `409 handoff_not_waiting`.
#[utoipa::path(
    post,
    path = "/agent/conversations/{id}/claim",
    tag = "handoff",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The conversation's id.")),
    responses(
        (status = 200, description = "The conversation, held by the caller.", body = ConversationBody),
        crate::problems::ResourceErrors,
        (status = 403, response = crate::problems::Forbidden),
        (status = 409, response = crate::problems::HandoffConflict),
    )
)]
pub(crate) async fn claim(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ConversationPath(id): ConversationPath,
) -> Result<Json<ConversationBody>, ApiError> {
    let conversation = state.service.claim(&caller, id).await?;
    conversation_body(&state, conversation).await
}

/// Gives the conversation back to its bot, which answers the user's next message.
/// By the agent who holds it, or an admin.
#[utoipa::path(
    post,
    path = "/agent/conversations/{id}/release",
    tag = "handoff",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The conversation's id.")),
    responses(
        (status = 200, description = "The conversation, with its bot again.", body = ConversationBody),
        crate::problems::ResourceErrors,
        (status = 403, response = crate::problems::Forbidden),
        (status = 409, response = crate::problems::HandoffConflict),
    )
)]
pub(crate) async fn release(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ConversationPath(id): ConversationPath,
) -> Result<Json<ConversationBody>, ApiError> {
    let conversation = state.service.release(&caller, id).await?;
    conversation_body(&state, conversation).await
}

fn limit(params: HandoffListParams) -> Result<PageSize, ApiError> {
    let default = PageSize::clamped(DEFAULT_LIMIT, HANDOFF_LIST_MAX);
    Ok(page_size(params.limit, default, HANDOFF_LIST_MAX)?)
}

async fn conversation_body(
    state: &AppState,
    conversation: Conversation,
) -> Result<Json<ConversationBody>, ApiError> {
    let name = bot_name(state, &conversation.bot_id).await?;
    Ok(Json(ConversationBody::new(conversation, name)))
}

async fn list_response(
    state: &AppState,
    entries: Vec<HandoffEntry>,
) -> Result<Json<HandoffListResponse>, ApiError> {
    let names = if entries.is_empty() {
        HashMap::new()
    } else {
        bot_names(state).await?
    };
    Ok(Json(HandoffListResponse {
        conversations: entries
            .into_iter()
            .map(|entry| {
                let name = names.get(entry.conversation.bot_id.as_str()).cloned();
                HandoffEntryBody {
                    conversation: ConversationBody::new(entry.conversation, name),
                    recent_messages: entry.recent.into_iter().map(MessageBody::from).collect(),
                }
            })
            .collect(),
    }))
}
