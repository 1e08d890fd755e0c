//! The REST calls of Direct Line 3.0: tokens, starting and reconnecting to a
//! conversation, sending activities and polling for them.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use confab_domain::bot::BotId;
use confab_domain::conversation::{ConversationId, Metadata, PageSize};
use confab_domain::message::{HistoryCursor, Seq};
use confab_domain::service::{HistoryRequest, StartConversation};
use confab_domain::user::{Caller, UserId};
use serde::Deserialize;

use super::PREFIX;
use super::access::{self, Credential, Opened};
use super::error::DirectLineError;
use super::mapping::{self, Posted};
use super::wire::{Activity, ActivitySet, ConversationGrantBody, ResourceResponse, StartRequest};
use crate::extract::ApiJson;
use crate::state::AppState;

/// `?watermark=` of the reconnect and polling calls.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WatermarkQuery {
    watermark: Option<String>,
}

/// `POST /tokens/generate`: with a secret, starts a conversation with the secret's bot
/// and answers a token for it. The body may name the user (`user.id`); without one
/// the user is a new `dl_…` id.
pub(crate) async fn generate_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Option<ApiJson<StartRequest>>, crate::error::ApiError>,
) -> Result<Json<ConversationGrantBody>, DirectLineError> {
    let Credential::Secret(bot) = access::credential(&state, &headers, None)? else {
        return Err(DirectLineError::forbidden(
            "tokens are generated with a Direct Line secret; refresh a token with /tokens/refresh",
        ));
    };
    let request = body?.map(|ApiJson(request)| request).unwrap_or_default();
    let (user, conversation) = start(&state, &bot, &request).await?;
    Ok(Json(grant(&state, &user, conversation, None)?))
}

/// `POST /tokens/refresh`: a new token for the same conversation and user.
pub(crate) async fn refresh_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ConversationGrantBody>, DirectLineError> {
    let credential = access::credential(&state, &headers, None)?;
    let Credential::Token(token) = &credential else {
        return Err(DirectLineError::bad_argument(
            "a secret does not expire; refresh a token, not a secret",
        ));
    };
    let opened = access::open(&state, &credential, token.conversation).await?;
    Ok(Json(grant(
        &state,
        &opened.caller.user_id,
        opened.conversation.id,
        None,
    )?))
}

/// `POST /conversations`: with a secret, starts a conversation with its bot; with a
/// token from `/tokens/generate`, answers that token's conversation. Either way with
/// a fresh token and the stream's URL.
pub(crate) async fn start_conversation(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Option<ApiJson<StartRequest>>, crate::error::ApiError>,
) -> Result<Response, DirectLineError> {
    let credential = access::credential(&state, &headers, None)?;
    let (user, conversation) = match &credential {
        Credential::Secret(bot) => {
            let request = body?.map(|ApiJson(request)| request).unwrap_or_default();
            start(&state, bot, &request).await?
        }
        Credential::Token(token) => {
            let opened = access::open(&state, &credential, token.conversation).await?;
            (opened.caller.user_id, opened.conversation.id)
        }
    };
    let body = grant(&state, &user, conversation, Some((&headers, Seq::ZERO)))?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /conversations/{id}?watermark=W`: reconnecting; a fresh token and a stream
/// URL that resumes after `W`.
pub(crate) async fn reconnect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<WatermarkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConversationGrantBody>, DirectLineError> {
    let watermark = watermark(query)?;
    let opened = open_path(&state, &headers, &id).await?;
    Ok(Json(grant(
        &state,
        &opened.caller.user_id,
        opened.conversation.id,
        Some((&headers, watermark)),
    )?))
}

/// `POST /conversations/{id}/activities`: a message is stored as the user's message
/// (and answered by the bot), `typing` tells the other side; other types are
/// acknowledged and dropped.
pub(crate) async fn post_activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<ApiJson<Activity>, crate::error::ApiError>,
) -> Result<Json<ResourceResponse>, DirectLineError> {
    let opened = open_path(&state, &headers, &id).await?;
    let ApiJson(activity) = body?;
    let id = match mapping::posted(activity)? {
        Posted::Message(draft) => {
            state
                .limiter
                .try_send(&opened.caller.user_id)
                .map_err(crate::error::ApiError::rate_limited)?;
            let sent = state
                .service
                .send(&opened.caller, opened.conversation.id, draft)
                .await?;
            sent.message.id.to_string()
        }
        Posted::Typing => {
            state
                .service
                .typing(&opened.caller, opened.conversation.id)
                .await?;
            uuid::Uuid::new_v4().to_string()
        }
        Posted::Ignored => uuid::Uuid::new_v4().to_string(),
    };
    Ok(Json(ResourceResponse { id }))
}

/// `GET /conversations/{id}/activities?watermark=W`: the messages after `W`, for
/// clients that poll instead of holding the stream.
pub(crate) async fn get_activities(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<WatermarkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ActivitySet>, DirectLineError> {
    let after = watermark(query)?;
    let opened = open_path(&state, &headers, &id).await?;
    let page = state
        .service
        .history(
            &opened.caller,
            opened.conversation.id,
            HistoryRequest {
                before: None,
                after: Some(HistoryCursor::Seq(after)),
                limit: PageSize::HISTORY_LARGEST,
            },
        )
        .await?;
    let last = page.messages.last().map_or(after, |message| message.seq);
    let bot_name = access::bot_name(&state, &opened.conversation.bot_id).await;
    Ok(Json(ActivitySet {
        activities: page
            .messages
            .iter()
            .map(|message| mapping::activity_of(message, &bot_name))
            .collect(),
        watermark: Some(mapping::watermark_of(last)),
    }))
}

/// `POST /conversations/{id}/upload`: confab stores no files, so uploads are
/// refused; a client sends attachments as URLs in an activity instead.
pub(crate) async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, DirectLineError> {
    open_path(&state, &headers, &id).await?;
    Err(DirectLineError::bad_argument(
        "file uploads are not supported by this server; send attachments as https URLs (contentUrl) in POST /activities",
    ))
}

/// Any other path under the prefix.
pub(crate) async fn not_found() -> DirectLineError {
    DirectLineError::not_found("no such Direct Line operation")
}

/// A Direct Line path with another method than its own.
pub(crate) async fn method_not_allowed() -> DirectLineError {
    crate::error::ApiError::new(
        crate::error::ErrorCode::MethodNotAllowed,
        "this Direct Line path does not take that method",
    )
    .into()
}

async fn open_path(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<Opened, DirectLineError> {
    let credential = access::credential(state, headers, None)?;
    let id = parse_conversation(id)?;
    access::open(state, &credential, id).await
}

pub(crate) fn parse_conversation(id: &str) -> Result<ConversationId, DirectLineError> {
    id.parse::<ConversationId>()
        .map_err(|_| DirectLineError::not_found("no such conversation"))
}

fn watermark(
    query: Result<Query<WatermarkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Seq, DirectLineError> {
    let Query(query) =
        query.map_err(|rejection| DirectLineError::bad_argument(rejection.body_text()))?;
    mapping::parse_watermark(query.watermark.as_deref()).map_err(DirectLineError::bad_argument)
}

/// Starts a conversation of the request's user (or a new `dl_…` one) with `bot`.
async fn start(
    state: &AppState,
    bot: &BotId,
    request: &StartRequest,
) -> Result<(UserId, ConversationId), DirectLineError> {
    let user = match request.user.as_ref().map(|user| user.id.trim()) {
        Some(id) if !id.is_empty() => UserId::parse(id)
            .map_err(|_| DirectLineError::bad_argument("user.id is not a valid user id"))?,
        _ => UserId::parse(&format!("dl_{}", uuid::Uuid::new_v4().simple()))?,
    };
    let started = state
        .service
        .start(
            &Caller::user(user.clone()),
            StartConversation {
                bot_id: bot.clone(),
                initial_message: None,
                title: None,
                metadata: Metadata::parse(serde_json::json!({ "channel": "directline" }))?,
            },
        )
        .await?;
    Ok((user, started.conversation.id))
}

/// The answer naming a conversation: a fresh conversation token, and with `stream`
/// the stream URL (resuming after the given watermark) as the request's host sees it.
fn grant(
    state: &AppState,
    user: &UserId,
    conversation: ConversationId,
    stream: Option<(&HeaderMap, Seq)>,
) -> Result<ConversationGrantBody, DirectLineError> {
    let ttl = state.config.directline.token_ttl;
    let issued = state
        .auth
        .issue_for_conversation(user, conversation, ttl)
        .map_err(|error| crate::error::ApiError::internal(&error))?;
    let stream_url =
        stream.map(|(headers, after)| stream_url(headers, conversation, &issued.token, after));
    Ok(ConversationGrantBody {
        conversation_id: conversation.to_string(),
        token: issued.token,
        expires_in: ttl.as_secs(),
        stream_url,
    })
}

/// `ws[s]://<host>/v3/directline/conversations/{id}/stream?t=<token>[&watermark=W]`:
/// the host the client reached, `wss` behind a proxy that says it terminated TLS.
fn stream_url(
    headers: &HeaderMap,
    conversation: ConversationId,
    token: &str,
    after: Seq,
) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty() && host.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or("127.0.0.1");
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    let scheme = if secure { "wss" } else { "ws" };
    let mut url =
        format!("{scheme}://{host}{PREFIX}/conversations/{conversation}/stream?t={token}");
    if after > Seq::ZERO {
        url.push_str("&watermark=");
        url.push_str(&mapping::watermark_of(after));
    }
    url
}
