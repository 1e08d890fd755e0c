//! The error responses of the OpenAPI description: one response component per
//! problem kind, and the groups of them that operations share, each defined once.
//!
//! An operation lists the groups that fit it (`RequestErrors` for an authenticated
//! request with parameters or a body, `ResourceErrors` when it names a resource that
//! may not exist, `AdminErrors` for administrators' operations) and adds any status of
//! its own, such as 409 or 413, as a single response.

use std::collections::BTreeMap;

use utoipa::openapi::response::Response;
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, ToResponse};

use crate::error::Problem;

/// The request is malformed or breaks a rule (`invalid_request`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) struct BadRequest(Problem);

/// No valid bearer token (`unauthorized`); `WWW-Authenticate: Bearer` is set.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) struct Unauthorized(Problem);

/// The caller may not do this (`forbidden`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) struct Forbidden(Problem);

/// No such resource, or it is not the caller's (`not_found`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) struct NotFound(Problem);

/// The conversation is archived (`conversation_archived`) or the `client_message_id`
/// was used with different content (`idempotency_mismatch`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) struct Conflict(Problem);

/// Feedback on a message that is not the bot's (`not_a_bot_reply`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) struct NotABotReply(Problem);

/// Another agent claimed the conversation first (`handoff_taken`), or nobody asked
/// for a person (`handoff_not_waiting`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) struct HandoffConflict(Problem);

/// The body is over 64 KiB or the content over 16 KiB (`payload_too_large`).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) struct PayloadTooLarge(Problem);

/// A bug or a storage failure (`internal`); the body says only "internal error".
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) struct Internal(Problem);

/// A backend cannot be reached now (`unavailable`); retry later.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) struct Unavailable(Problem);

/// References to response components by name, keyed by status.
fn refs<const N: usize>(entries: [(&str, &str); N]) -> BTreeMap<String, RefOr<Response>> {
    entries
        .into_iter()
        .map(|(status, name)| (status.to_owned(), RefOr::Ref(Ref::from_response_name(name))))
        .collect()
}

/// The name under which a response component is registered.
fn name<'a, R: ToResponse<'a>>() -> &'a str {
    R::response().0
}

/// What any authenticated operation may answer: 401, 500 and 503.
pub(crate) struct AuthenticatedErrors;

impl IntoResponses for AuthenticatedErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs([
            ("401", name::<Unauthorized>()),
            ("500", name::<Internal>()),
            ("503", name::<Unavailable>()),
        ])
    }
}

/// An authenticated operation with parameters or a body: [`AuthenticatedErrors`] and
/// 400.
pub(crate) struct RequestErrors;

impl IntoResponses for RequestErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = AuthenticatedErrors::responses();
        responses.extend(refs([("400", name::<BadRequest>())]));
        responses
    }
}

/// An operation on a resource that may not exist or not be the caller's:
/// [`RequestErrors`] and 404.
pub(crate) struct ResourceErrors;

impl IntoResponses for ResourceErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = RequestErrors::responses();
        responses.extend(refs([("404", name::<NotFound>())]));
        responses
    }
}

/// An operation some callers may not perform (administrators only, or only on
/// their own data): [`RequestErrors`] and 403.
pub(crate) struct AdminErrors;

impl IntoResponses for AdminErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = RequestErrors::responses();
        responses.extend(refs([("403", name::<Forbidden>())]));
        responses
    }
}
