//! [`ApiError`]: every failure of the API as an RFC 9457 problem details response
//! (`application/problem+json`) with a stable `code` member.
//!
//! Domain errors become API errors in exactly one place, `From<DomainError>`, with an
//! exhaustive match so that a new domain variant cannot slip through unmapped. Causes of
//! server-side failures are logged once, when the error is made, and never reach the
//! client: a 5xx body says only "internal error" or "service unavailable".

use std::fmt;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use confab_domain::error::{DomainError, EventBusError, RepoError, ValidationError, error_chain};
use confab_domain::handoff::HandoffRefusal;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The stable, machine-readable kind of an error: the `code` member of the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the request is malformed or breaks a rule of the model.
    InvalidRequest,
    /// 401: no valid bearer token.
    Unauthorized,
    /// 403: the caller may not do this.
    Forbidden,
    /// 404: no such resource, or it belongs to someone else.
    NotFound,
    /// 405: the path exists but not with this method.
    MethodNotAllowed,
    /// 409: the conversation is archived and takes no messages.
    ConversationArchived,
    /// 409: a `client_message_id` was reused with different content.
    IdempotencyMismatch,
    /// 409: a bot with that id exists already.
    BotExists,
    /// 409: a claim of a conversation that is not waiting for an agent.
    HandoffNotWaiting,
    /// 409: another agent claimed the conversation first (or moved it meanwhile).
    HandoffTaken,
    /// 409: feedback on a message that is not a bot reply.
    NotABotReply,
    /// 413: the body or the message content is too large.
    PayloadTooLarge,
    /// 429: too many requests; `Retry-After` says when to retry.
    RateLimited,
    /// 500: a bug or a storage failure; the cause is in the server's log.
    Internal,
    /// 503: a backend cannot be reached now; retrying later may succeed.
    Unavailable,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::ConversationArchived => "conversation_archived",
            Self::IdempotencyMismatch => "idempotency_mismatch",
            Self::BotExists => "bot_exists",
            Self::HandoffNotWaiting => "handoff_not_waiting",
            Self::HandoffTaken => "handoff_taken",
            Self::NotABotReply => "not_a_bot_reply",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::ConversationArchived
            | Self::IdempotencyMismatch
            | Self::BotExists
            | Self::HandoffNotWaiting
            | Self::HandoffTaken
            | Self::NotABotReply => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short summary that is the same for every occurrence of the code (the
    /// problem's `title`).
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "Invalid request",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::ConversationArchived => "Conversation archived",
            Self::IdempotencyMismatch => "Idempotency key reused",
            Self::BotExists => "Bot exists",
            Self::HandoffNotWaiting => "Not waiting for an agent",
            Self::HandoffTaken => "Held by another agent",
            Self::NotABotReply => "Not a bot reply",
            Self::PayloadTooLarge => "Payload too large",
            Self::RateLimited => "Rate limited",
            Self::Internal => "Internal error",
            Self::Unavailable => "Service unavailable",
        }
    }

    /// The problem's `type`: a URN per code, stable and not meant to be dereferenced.
    pub fn type_uri(self) -> String {
        format!("urn:confab:problem:{}", self.as_str())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered to a client: a code and a human-readable detail that is safe to
/// show (it never carries a server-side cause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    detail: String,
    retry_after: Option<Duration>,
    /// Whether a 401 is about a token that was presented but is not valid, which
    /// RFC 6750 reports as `error="invalid_token"` in `WWW-Authenticate`.
    invalid_token: bool,
}

impl ApiError {
    /// An error with this code and detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            retry_after: None,
            invalid_token: false,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, detail)
    }

    /// 401 `unauthorized` for a request that carries no bearer token.
    pub fn missing_token() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "this request needs an Authorization: Bearer token",
        )
    }

    /// 401 `unauthorized` for a bearer token that is malformed, forged or expired.
    pub fn invalid_token(detail: impl Into<String>) -> Self {
        Self {
            invalid_token: true,
            ..Self::new(ErrorCode::Unauthorized, detail)
        }
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, detail)
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, detail)
    }

    /// 429 `rate_limited`, with `Retry-After` in whole seconds (at least one).
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(ErrorCode::RateLimited, "too many requests; retry later")
        }
    }

    /// 500 `internal`. The cause is logged here, once; the client sees only
    /// "internal error".
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error_chain(cause), "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// 503 `unavailable`. The cause is logged here, once.
    pub fn unavailable(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(error = %error_chain(cause), "backend unavailable");
        Self::new(ErrorCode::Unavailable, "service unavailable; retry later")
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// How long a rate-limited client should wait.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The human-readable detail, safe to show to the client.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The problem details body of this error.
    pub fn problem(&self) -> Problem {
        Problem {
            type_uri: self.code.type_uri(),
            title: self.code.title().to_owned(),
            status: self.code.status().as_u16(),
            detail: self.detail.clone(),
            code: self.code.as_str().to_owned(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Serialising a struct of strings and an integer cannot fail; the fallback only
        // keeps this path free of unwrap.
        let body = serde_json::to_vec(&self.problem()).unwrap_or_else(|_| {
            br#"{"type":"about:blank","title":"Internal error","status":500,"detail":"internal error","code":"internal"}"#.to_vec()
        });
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.code == ErrorCode::Unauthorized {
            let challenge = if self.invalid_token {
                r#"Bearer error="invalid_token""#
            } else {
                "Bearer"
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(retry_after) = self.retry_after {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0);
            if let Ok(value) = HeaderValue::from_str(&format!("{seconds:.0}")) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Invalid(invalid) => invalid.into(),
            DomainError::ConversationNotFound => Self::not_found("conversation not found"),
            DomainError::SessionNotFound => Self::not_found("session not found"),
            DomainError::MessageNotFound => Self::not_found("message not found"),
            DomainError::NotABotReply => Self::new(
                ErrorCode::NotABotReply,
                "feedback is given on the bot's replies only",
            ),
            DomainError::BotNotFound(id) => Self::not_found(format!("bot not found: {id}")),
            DomainError::BotExists(id) => {
                Self::new(ErrorCode::BotExists, format!("bot exists already: {id}"))
            }
            DomainError::ConversationArchived => Self::new(
                ErrorCode::ConversationArchived,
                "conversation is archived; unarchive it to send messages",
            ),
            DomainError::IdempotencyMismatch => Self::new(
                ErrorCode::IdempotencyMismatch,
                "client_message_id was already used with different content",
            ),
            DomainError::Forbidden => Self::forbidden("not allowed"),
            DomainError::WebhookNotFound => Self::not_found("webhook not found"),
            DomainError::DeliveryNotFound => Self::not_found("delivery not found"),
            DomainError::Handoff(refusal) => {
                let code = match refusal {
                    HandoffRefusal::NotWaiting => ErrorCode::HandoffNotWaiting,
                    HandoffRefusal::HeldByAnother | HandoffRefusal::Contended => {
                        ErrorCode::HandoffTaken
                    }
                    HandoffRefusal::NotHolder | HandoffRefusal::NotAllowed => ErrorCode::Forbidden,
                };
                Self::new(code, refusal.to_string())
            }
            DomainError::Storage(repo) => repo.into(),
            DomainError::Events(EventBusError::Unavailable(cause)) => {
                Self::unavailable(cause.as_ref())
            }
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(error: RepoError) -> Self {
        match error {
            // The service maps the not-found cases it expects to precise variants; one
            // that still arrives here is a record that vanished in a race, which is
            // truthfully a 404 rather than a server failure.
            RepoError::NotFound => Self::not_found("not found"),
            RepoError::Unavailable(cause) => Self::unavailable(cause.as_ref()),
            RepoError::Conflict | RepoError::Internal(_) => Self::internal(&error),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        let code = match &error {
            // Content over the limit is a payload that is too large, the same answer a
            // body over the byte limit gets.
            ValidationError::ContentTooLong { .. } => ErrorCode::PayloadTooLarge,
            ValidationError::EmptyContent
            | ValidationError::TooManyAttachments { .. }
            | ValidationError::AttachmentUrl(_)
            | ValidationError::AttachmentField { .. }
            | ValidationError::InvalidBotId(_)
            | ValidationError::InvalidBotName
            | ValidationError::InvalidBot(_)
            | ValidationError::InvalidUserId
            | ValidationError::InvalidTitle
            | ValidationError::InvalidMetadata { .. }
            | ValidationError::InvalidClientMessageId
            | ValidationError::InvalidLimit { .. }
            | ValidationError::InvalidId { .. }
            | ValidationError::InvalidCursor(_)
            | ValidationError::UnknownCursorMessage(_)
            | ValidationError::InvalidListCursor
            | ValidationError::OffsetWithCursor
            | ValidationError::InvalidTimestamp(_)
            | ValidationError::TimestampOutOfRange
            | ValidationError::EmptyChange
            | ValidationError::InvalidSearch(_)
            | ValidationError::InvalidWebhook(_)
            | ValidationError::InvalidComment { .. }
            | ValidationError::MissingTarget
            | ValidationError::NulCharacter { .. } => ErrorCode::InvalidRequest,
        };
        Self::new(code, error.to_string())
    }
}

/// An RFC 9457 problem details object, the body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:confab:problem:not_found",
    "title": "Not found",
    "status": 404,
    "detail": "conversation not found",
    "code": "not_found"
}))]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:confab:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The stable machine-readable code: `invalid_request`, `unauthorized`,
    /// `forbidden`, `not_found`, `method_not_allowed`, `conversation_archived`,
    /// `idempotency_mismatch`, `bot_exists`, `payload_too_large`, `rate_limited`,
    /// `internal` or `unavailable`.
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_unavailable_is_503_and_hides_the_cause() {
        let cause: confab_domain::error::BoxError = "connection refused to 10.0.0.5".into();
        let error = ApiError::from(DomainError::Storage(RepoError::Unavailable(cause)));
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code().as_str(), "unavailable");
        assert!(!error.detail().contains("10.0.0.5"));
    }

    #[test]
    fn other_storage_failures_are_500_saying_only_internal_error() {
        let cause: confab_domain::error::BoxError = "syntax error near SELECT".into();
        let error = ApiError::from(DomainError::Storage(RepoError::Internal(cause)));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.detail(), "internal error");
        let conflict = ApiError::from(DomainError::Storage(RepoError::Conflict));
        assert_eq!(conflict.detail(), "internal error");
    }

    #[test]
    fn every_domain_error_maps_to_its_stable_code() {
        let cases = [
            (DomainError::ConversationNotFound, "not_found", 404),
            (DomainError::SessionNotFound, "not_found", 404),
            (DomainError::BotNotFound("x".into()), "not_found", 404),
            (DomainError::BotExists("x".into()), "bot_exists", 409),
            (
                DomainError::ConversationArchived,
                "conversation_archived",
                409,
            ),
            (
                DomainError::IdempotencyMismatch,
                "idempotency_mismatch",
                409,
            ),
            (DomainError::Forbidden, "forbidden", 403),
            (
                DomainError::Invalid(ValidationError::EmptyContent),
                "invalid_request",
                400,
            ),
            (
                DomainError::Invalid(ValidationError::ContentTooLong {
                    max: 16,
                    actual: 17,
                }),
                "payload_too_large",
                413,
            ),
        ];
        for (domain, code, status) in cases {
            let error = ApiError::from(domain);
            assert_eq!(error.code().as_str(), code);
            assert_eq!(error.status().as_u16(), status);
        }
    }

    #[test]
    fn an_unauthorized_response_carries_a_bearer_challenge() {
        let response = ApiError::missing_token().into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let forged = ApiError::invalid_token("bad signature").into_response();
        assert_eq!(
            forged.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
    }

    #[test]
    fn a_rate_limited_response_says_when_to_retry() {
        let response = ApiError::rate_limited(Duration::from_millis(1500)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
