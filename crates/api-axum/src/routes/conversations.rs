//! The conversation routes of the seed: start, send, history, list, and one
//! conversation's get, patch and delete.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_domain::bot::BotId;
use confab_domain::conversation::{
    ConversationChange, ConversationFilter, ListCursor, ListPosition, ListQuery, Metadata,
    PageSize, Title,
};
use confab_domain::error::{DomainError, ValidationError};
use confab_domain::message::{HistoryCursor, Message};
use confab_domain::service::HistoryRequest;

use crate::auth::Authenticated;
use crate::command::{MessageInput, StartInput, message_draft, start_command};
use crate::dto::{
    ConversationBody, ConversationListResponse, DeliveryStatus, HistoryParams, HistoryResponse,
    LARGEST_POSITION, ListParams, MessageBody, SendMessageBody, SentResponse,
    StartConversationBody, StartedResponse, UpdateConversationBody, WaitParams,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, ConversationPath};
use crate::state::AppState;

/// The header that may carry a message's `client_message_id`.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/conversations", get(list_conversations))
        .route("/conversations/start", post(start_conversation))
        .route(
            "/conversations/{id}",
            get(get_conversation)
                .patch(update_conversation)
                .delete(delete_conversation),
        )
        .route("/conversations/{id}/messages", post(send_message))
        .route("/conversations/{id}/history", get(history))
}

/// Starts a conversation with a bot, optionally with a first message.
#[utoipa::path(
    post,
    path = "/conversations/start",
    tag = "conversations",
    security(("bearer" = [])),
    params(WaitParams),
    request_body = StartConversationBody,
    responses(
        (status = 201, description = "The conversation was started.", body = StartedResponse, links(
            ("SendMessage" = (operation_id = "send_message", parameters(("id" = "$response.body#/conversation_id")))),
            ("History" = (operation_id = "history", parameters(("id" = "$response.body#/conversation_id")))),
            ("GetConversation" = (operation_id = "get_conversation", parameters(("id" = "$response.body#/conversation_id")))),
            ("UpdateConversation" = (operation_id = "update_conversation", parameters(("id" = "$response.body#/conversation_id")))),
            ("Export" = (operation_id = "export_conversation", parameters(("id" = "$response.body#/conversation_id")))),
            ("Events" = (operation_id = "events", parameters(("id" = "$response.body#/conversation_id")))),
            ("DeleteConversation" = (operation_id = "delete_conversation", parameters(("id" = "$response.body#/conversation_id")))),
        )),
        crate::problems::ResourceErrors,
        (status = 413, response = crate::problems::PayloadTooLarge),
    )
)]
pub(crate) async fn start_conversation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(wait): ApiQuery<WaitParams>,
    ApiJson(body): ApiJson<StartConversationBody>,
) -> Result<(StatusCode, Json<StartedResponse>), ApiError> {
    let command = start_command(StartInput {
        bot_id: &body.bot_id,
        initial_message: body.initial_message.as_deref(),
        client_message_id: body.client_message_id.as_deref(),
        title: body.title.as_deref(),
        metadata: body.metadata,
    })?;
    let started = state.service.start(&caller, command).await?;
    let replies = match (&started.initial_message, wait.wait) {
        (Some(message), Some(true)) => Some(replies_to(&state, message).await?),
        (None, Some(true)) => Some(Vec::new()),
        (_, _) => None,
    };
    let conversation = started.conversation;
    Ok((
        StatusCode::CREATED,
        Json(StartedResponse {
            conversation_id: conversation.id.to_string(),
            session_id: conversation.session_id.to_string(),
            status: conversation.status.into(),
            bot_id: conversation.bot_id.to_string(),
            created_at: conversation.created_at.to_rfc3339(),
            initial_message_id: started.initial_message.map(|m| m.id.to_string()),
            replies,
        }),
    ))
}

/// Sends a user message. A retry with the same `client_message_id` (or
/// `Idempotency-Key`) and content answers 200 with the original message.
#[utoipa::path(
    post,
    path = "/conversations/{id}/messages",
    tag = "conversations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The conversation's id."),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = r"^[!-~]([ -~]{0,126}[!-~])?$", description = "The message's client_message_id, as a header: 1 to 128 visible ASCII characters (spaces inside). When the body has a `client_message_id` too, both must be equal."),
        WaitParams,
    ),
    request_body = crate::dto::text::SendMessageRequest,
    responses(
        (status = 201, description = "The message was stored.", body = SentResponse),
        (status = 200, description = "A retry: the original message.", body = SentResponse),
        crate::problems::ResourceErrors,
        (status = 409, response = crate::problems::Conflict),
        (status = 413, response = crate::problems::PayloadTooLarge),
    )
)]
pub(crate) async fn send_message(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ConversationPath(id): ConversationPath,
    ApiQuery(wait): ApiQuery<WaitParams>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendMessageBody>,
) -> Result<(StatusCode, Json<SentResponse>), ApiError> {
    let client_message_id = client_message_id(&headers, body.client_message_id.as_deref())?;
    let draft = message_draft(MessageInput {
        content: &body.content,
        attachments: body.attachments,
        client_message_id,
        metadata: body.metadata,
    })?;
    let sent = state.service.send(&caller, id, draft).await?;
    let replies = match wait.wait {
        Some(true) => Some(replies_to(&state, &sent.message).await?),
        Some(false) | None => None,
    };
    let status = if sent.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let message = sent.message;
    Ok((
        status,
        Json(SentResponse {
            message_id: message.id.to_string(),
            conversation_id: message.conversation_id.to_string(),
            seq: message.seq.get(),
            timestamp: message.timestamp.to_rfc3339(),
            status: DeliveryStatus::Delivered,
            replies,
        }),
    ))
}

/// One page of a conversation's messages, oldest first.
#[utoipa::path(
    get,
    path = "/conversations/{id}/history",
    tag = "conversations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The conversation's id."),
        HistoryParams,
    ),
    responses(
        (status = 200, description = "A page of history.", body = HistoryResponse),
        crate::problems::ResourceErrors,
    )
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ConversationPath(id): ConversationPath,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let request = HistoryRequest {
        before: params
            .before
            .as_deref()
            .map(HistoryCursor::parse)
            .transpose()?,
        after: params
            .after
            .as_deref()
            .map(HistoryCursor::parse)
            .transpose()?,
        limit: page_size(
            params.limit,
            PageSize::HISTORY_DEFAULT,
            PageSize::HISTORY_MAX,
        )?,
    };
    let page = state.service.history(&caller, id, request).await?;
    Ok(Json(HistoryResponse {
        conversation_id: id.to_string(),
        messages: page.messages.into_iter().map(MessageBody::from).collect(),
        has_more: page.has_more,
    }))
}

/// The caller's conversations, newest activity first.
#[utoipa::path(
    get,
    path = "/conversations",
    tag = "conversations",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of conversations.", body = ConversationListResponse),
        crate::problems::RequestErrors,
    )
)]
pub(crate) async fn list_conversations(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<ConversationListResponse>, ApiError> {
    if params
        .offset
        .is_some_and(|offset| offset > LARGEST_POSITION)
    {
        return Err(ApiError::invalid_request(format!(
            "offset must be at most {LARGEST_POSITION}"
        )));
    }
    let position = match (params.offset, params.cursor.as_deref()) {
        (Some(_), Some(_)) => return Err(ValidationError::OffsetWithCursor.into()),
        (_, Some(cursor)) => ListPosition::After(ListCursor::decode(cursor)?),
        (offset, None) => ListPosition::Offset(offset.unwrap_or(0)),
    };
    let query = ListQuery {
        filter: ConversationFilter {
            bot_id: params.bot_id.as_deref().map(BotId::parse).transpose()?,
            status: params.status.map(Into::into),
        },
        position,
        limit: page_size(params.limit, PageSize::LIST_DEFAULT, PageSize::LIST_MAX)?,
    };
    let page = state.service.list(&caller, &query).await?;
    let names = if page.conversations.is_empty() {
        HashMap::new()
    } else {
        bot_names(&state).await?
    };
    Ok(Json(ConversationListResponse {
        conversations: page
            .conversations
            .into_iter()
            .map(|conversation| {
                let name = names.get(conversation.bot_id.as_str()).cloned();
                ConversationBody::new(conversation, name)
            })
            .collect(),
        total: page.total,
        has_more: page.has_more,
        next_cursor: page.next_cursor.map(|cursor| cursor.encode()),
    }))
}

/// One conversation.
#[utoipa::path(
    get,
    path = "/conversations/{id}",
    tag = "conversations",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The conversation's id.")),
    responses(
        (status = 200, description = "The conversation.", body = ConversationBody),
        crate::problems::ResourceErrors,
    )
)]
pub(crate) async fn get_conversation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ConversationPath(id): ConversationPath,
) -> Result<Json<ConversationBody>, ApiError> {
    let conversation = state.service.conversation(&caller, id).await?;
    let name = bot_name(&state, &conversation.bot_id).await?;
    Ok(Json(ConversationBody::new(conversation, name)))
}

/// Archives (`status: archived`), unarchives (`status: active`), renames or re-tags a
/// conversation.
#[utoipa::path(
    patch,
    path = "/conversations/{id}",
    tag = "conversations",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The conversation's id.")),
    request_body = crate::dto::text::UpdateConversationRequest,
    responses(
        (status = 200, description = "The conversation as it now is.", body = ConversationBody),
        crate::problems::ResourceErrors,
        (status = 413, response = crate::problems::PayloadTooLarge),
    )
)]
pub(crate) async fn update_conversation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ConversationPath(id): ConversationPath,
    ApiJson(body): ApiJson<UpdateConversationBody>,
) -> Result<Json<ConversationBody>, ApiError> {
    let change = ConversationChange {
        status: body.status.map(Into::into),
        title: body.title.as_deref().map(Title::parse).transpose()?,
        metadata: body.metadata.map(Metadata::parse).transpose()?,
    };
    let conversation = state.service.update(&caller, id, change).await?;
    let name = bot_name(&state, &conversation.bot_id).await?;
    Ok(Json(ConversationBody::new(conversation, name)))
}

/// Erases a conversation, its session and every message.
#[utoipa::path(
    delete,
    path = "/conversations/{id}",
    tag = "conversations",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The conversation's id.")),
    responses(
        (status = 204, description = "The conversation is gone."),
        crate::problems::ResourceErrors,
    )
)]
pub(crate) async fn delete_conversation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ConversationPath(id): ConversationPath,
) -> Result<StatusCode, ApiError> {
    state.service.delete(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The bot's replies to `message`, waiting at most the configured time.
async fn replies_to(state: &AppState, message: &Message) -> Result<Vec<MessageBody>, ApiError> {
    let replies = state
        .service
        .await_replies(message, state.config.wait_timeout)
        .await?;
    Ok(replies.into_iter().map(MessageBody::from).collect())
}

/// The message's client id from the body or the `Idempotency-Key` header; both may be
/// given only when they agree.
fn client_message_id<'a>(
    headers: &'a HeaderMap,
    from_body: Option<&'a str>,
) -> Result<Option<&'a str>, ApiError> {
    let from_header = headers
        .get(IDEMPOTENCY_KEY)
        .map(|value| {
            value.to_str().map_err(|_| {
                ApiError::invalid_request("the Idempotency-Key header must be visible ASCII")
            })
        })
        .transpose()?;
    match (from_header, from_body) {
        (Some(header), Some(body)) if header != body => Err(ApiError::invalid_request(
            "the Idempotency-Key header and client_message_id differ",
        )),
        (header, body) => Ok(body.or(header)),
    }
}

pub(crate) fn page_size(
    limit: Option<u64>,
    default: PageSize,
    max: u32,
) -> Result<PageSize, ValidationError> {
    limit.map_or(Ok(default), |limit| PageSize::parse(limit, max))
}

/// The name of a bot, or `None` when it has been removed since.
pub(crate) async fn bot_name(state: &AppState, bot: &BotId) -> Result<Option<String>, ApiError> {
    match state.service.bot(bot).await {
        Ok(bot) => Ok(Some(bot.name.as_str().to_owned())),
        Err(DomainError::BotNotFound(_)) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

pub(crate) async fn bot_names(state: &AppState) -> Result<HashMap<String, String>, ApiError> {
    Ok(state
        .service
        .bots()
        .await?
        .into_iter()
        .map(|bot| (bot.id.to_string(), bot.name.as_str().to_owned()))
        .collect())
}
