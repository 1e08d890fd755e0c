//! Errors on the Direct Line routes, in Direct Line's shape: `{"error": {"code",
//! "message"}}` with the status its clients act on. `botframework-directlinejs` reads
//! 403 as "the token expired" (it stops and waits for a new one), 404 as "the
//! conversation ended", 429 with `Retry-After` as "wait", any other 4xx as a failure
//! of that one call, and retries 5xx.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::GrantRejection;
use crate::error::{ApiError, ErrorCode};

/// An error answered on a Direct Line route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirectLineError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

#[derive(Serialize)]
struct ErrorResponse<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl DirectLineError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `BadArgument`: the request is malformed or breaks a rule.
    pub(crate) fn bad_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadArgument", message)
    }

    /// 401 `Unauthorized`: no `Authorization: Bearer` header.
    pub(crate) fn missing_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "an Authorization: Bearer header with a Direct Line secret or token is required",
        )
    }

    /// 403 `Forbidden`: the credentials do not open this.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    /// 404 `NotFound`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }
}

impl From<GrantRejection> for DirectLineError {
    fn from(rejection: GrantRejection) -> Self {
        match rejection {
            GrantRejection::Expired => Self::new(
                StatusCode::FORBIDDEN,
                "TokenExpired",
                "the token has expired",
            ),
            GrantRejection::Invalid(why) => Self::forbidden(why),
        }
    }
}

/// confab's own errors keep their status; their code becomes the nearest Direct Line
/// code.
impl From<ApiError> for DirectLineError {
    fn from(error: ApiError) -> Self {
        let code = match error.code() {
            ErrorCode::InvalidRequest => "BadArgument",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::NotFound => "NotFound",
            ErrorCode::MethodNotAllowed => "MethodNotAllowed",
            ErrorCode::ConversationArchived => "ConversationArchived",
            ErrorCode::IdempotencyMismatch
            | ErrorCode::BotExists
            | ErrorCode::HandoffNotWaiting
            | ErrorCode::HandoffTaken
            | ErrorCode::NotABotReply => "Conflict",
            ErrorCode::PayloadTooLarge => "MessageSizeTooBig",
            ErrorCode::RateLimited => "TooManyRequests",
            ErrorCode::Internal | ErrorCode::Unavailable => "ServiceError",
        };
        Self {
            status: error.status(),
            code,
            message: error.detail().to_owned(),
            retry_after: error.retry_after(),
        }
    }
}

impl From<confab_domain::error::DomainError> for DirectLineError {
    fn from(error: confab_domain::error::DomainError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<confab_domain::error::ValidationError> for DirectLineError {
    fn from(error: confab_domain::error::ValidationError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for DirectLineError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorBody {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(retry_after) = self.retry_after {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0);
            if let Ok(value) = HeaderValue::from_str(&format!("{seconds:.0}")) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
