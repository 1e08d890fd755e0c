//! The OpenAPI 3.1 description of the REST API, generated from the handlers'
//! `#[utoipa::path]` attributes and the DTOs' schemas, so it cannot drift from the code.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

use crate::error;
use crate::problems;
use crate::routes::{analytics, batch, bots, conversations, events, export, guest, meta};

/// The name of the bearer security scheme in the document.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "confab",
        description = "A conversation server for chatbots. Every path is also served under \
                       `/api`. Errors are RFC 9457 problem details \
                       (`application/problem+json`) with a stable `code` member.",
    ),
    paths(
        conversations::start_conversation,
        conversations::send_message,
        conversations::history,
        conversations::list_conversations,
        conversations::get_conversation,
        conversations::update_conversation,
        conversations::delete_conversation,
        batch::batch,
        export::export_conversation,
        export::export_bot,
        analytics::summary,
        events::events,
        bots::list_bots,
        bots::get_bot,
        bots::create_bot,
        bots::update_bot,
        bots::delete_bot,
        guest::guest,
        meta::healthz,
        meta::openapi_json,
        crate::ops::readyz,
        crate::ops::metrics,
    ),
    components(
        schemas(error::Problem),
        responses(
            problems::BadRequest,
            problems::Unauthorized,
            problems::Forbidden,
            problems::NotFound,
            problems::Conflict,
            problems::PayloadTooLarge,
            problems::Internal,
            problems::Unavailable,
        )
    ),
    modifiers(&Security, &Servers),
    tags(
        (name = "conversations", description = "Start, talk in, page through and manage conversations."),
        (name = "admin", description = "Administrators: exports across conversations and analytics."),
        (name = "bots", description = "The bots users can talk to, and their registry (administrators)."),
        (name = "auth", description = "Tokens for guests."),
        (name = "meta", description = "Health, readiness, metrics and this document."),
    )
)]
struct ApiDoc;

/// Declares the bearer scheme the operations' `security` refers to.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Lists the two places the API is served: the root and `/api`.
struct Servers;

impl Modify for Servers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.servers = Some(vec![Server::new("/"), Server::new("/api")]);
    }
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
