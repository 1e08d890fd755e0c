//! Extractors whose rejections are [`ApiError`]s, so that a malformed body, query
//! string or path answers with our problem details like every other error, instead of
//! axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use confab_domain::bot::BotId;
use confab_domain::conversation::ConversationId;
use confab_domain::message::MessageId;
use confab_domain::webhook::{DeliveryId, WebhookId};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest request body accepted, in bytes. A message's content is at most 16 KiB
/// and its metadata another 16 KiB; the rest is room for attachments and JSON escaping.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON request body, parsed whatever the `Content-Type` says (clients such as
/// `curl -d` often send a form type for JSON).
///
/// As `Option<ApiJson<T>>` an empty body is `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid_request(
                "the request body is empty; a JSON object is expected",
            ));
        }
        parse_json(&bytes).map(Self)
    }
}

impl<T, S> OptionalFromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        parse_json(&bytes).map(|value| Some(Self(value)))
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(failure)
                if failure.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::payload_too_large(format!(
                    "the request body is larger than {} KiB",
                    BODY_LIMIT / 1024
                ))
            }
            other => ApiError::invalid_request(format!(
                "cannot read the request body: {}",
                other.body_text()
            )),
        })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            ApiError::invalid_request(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::invalid_request(format!("invalid JSON body at {path}: {inner}"))
        }
    })
}

/// A query string parsed into `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| Self(value))
            .map_err(|rejection| {
                ApiError::invalid_request(format!(
                    "invalid query string: {}",
                    query_failure(&rejection.body_text())
                ))
            })
    }
}

/// axum words its query failures "Failed to deserialize query string: <why>"; only the
/// why is worth repeating.
fn query_failure(text: &str) -> &str {
    text.split_once(": ").map_or(text, |(_, why)| why)
}

/// The `{id}` of a conversation path, parsed as a conversation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationPath(pub ConversationId);

impl<S: Send + Sync> FromRequestParts<S> for ConversationPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = path_segment(parts, state).await?;
        raw.parse::<ConversationId>()
            .map(Self)
            .map_err(ApiError::from)
    }
}

/// The `{id}` of a bot path, parsed as a bot id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotPath(pub BotId);

impl<S: Send + Sync> FromRequestParts<S> for BotPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = path_segment(parts, state).await?;
        BotId::parse(&raw).map(Self).map_err(ApiError::from)
    }
}

/// The `{id}` and `{message_id}` of a path naming one message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagePath(pub ConversationId, pub MessageId);

impl<S: Send + Sync> FromRequestParts<S> for MessagePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((conversation, message)) =
            Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|rejection| {
                    ApiError::invalid_request(format!("invalid path: {}", rejection.body_text()))
                })?;
        Ok(Self(conversation.parse()?, message.parse()?))
    }
}

async fn path_segment<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<String, ApiError> {
    Path::<String>::from_request_parts(parts, state)
        .await
        .map(|Path(raw)| raw)
        .map_err(|rejection| {
            ApiError::invalid_request(format!("invalid path: {}", rejection.body_text()))
        })
}

/// The `{id}` of a webhook path, parsed as a webhook id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookPath(pub WebhookId);

impl<S: Send + Sync> FromRequestParts<S> for WebhookPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = path_segment(parts, state).await?;
        raw.parse::<WebhookId>().map(Self).map_err(ApiError::from)
    }
}

/// The `{id}` and `{delivery_id}` of a path naming one delivery of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPath(pub WebhookId, pub DeliveryId);

impl<S: Send + Sync> FromRequestParts<S> for DeliveryPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((webhook, delivery)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::invalid_request(format!("invalid path: {}", rejection.body_text()))
            })?;
        Ok(Self(webhook.parse()?, delivery.parse()?))
    }
}
