//! The OpenAPI 3.1 description of the REST API, generated from the handlers'
//! `#[utoipa::path]` attributes and the DTOs' schemas, so it cannot drift from the code,
//! and `GET /openapi.json`, which serves it.
//!
//! This module depends on the routes and not the reverse: the router adds
//! [`routes`] next to the REST routes.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

use crate::dto::{SendMessageBody, StatusBody, text};
use crate::error;
use crate::problems;
use crate::routes::{
    analytics, batch, bots, conversations, events, export, feedback, guest, handoff, meta, search,
    webhooks,
};
use crate::state::AppState;

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
        handoff::request_handoff,
        handoff::queue,
        handoff::held,
        handoff::claim,
        handoff::release,
        search::search,
        feedback::rate,
        feedback::unrate,
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
        webhooks::list_webhooks,
        webhooks::create_webhook,
        webhooks::get_webhook,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        webhooks::deliveries,
        webhooks::redeliver,
        guest::guest,
        meta::healthz,
        openapi_json,
        crate::ops::readyz,
        crate::ops::metrics,
    ),
    components(
        schemas(
            error::Problem,
            StatusBody,
            SendMessageBody,
            text::BotIdText,
            text::BotNameText,
            text::TitleText,
            text::ClientMessageIdText,
            text::MessageText,
            text::SeqText,
            text::HistoryCursorText,
            text::UpdateConversationRequest,
            crate::dto::UpdateConversationBody,
            bots::EngineKindBody,
            webhooks::EventTypeBody,
            export::ExportFormat,
            events::ServerSentEvent,
        ),
        responses(
            problems::BadRequest,
            problems::Unauthorized,
            problems::Forbidden,
            problems::NotFound,
            problems::Conflict,
            problems::HandoffConflict,
            problems::NotABotReply,
            problems::PayloadTooLarge,
            problems::Internal,
            problems::Unavailable,
        )
    ),
    modifiers(&Security, &Servers, &Workarounds),
    tags(
        (name = "conversations", description = "Start, talk in, page through and manage conversations."),
        (name = "handoff", description = "People taking conversations over from bots: asking for one, the agents' queue, claiming and releasing."),
        (name = "admin", description = "Administrators: exports across conversations and analytics."),
        (name = "bots", description = "The bots users can talk to, and their registry (administrators)."),
        (name = "webhooks", description = "Outgoing webhooks (administrators): subscriptions to events, and their deliveries."),
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

/// Mends what utoipa 5.5 writes wrongly: a link's members in snake case
/// (`operation_id`, where OpenAPI says `operationId`), and `min_properties` on a
/// struct written as `maxProperties`.
struct Workarounds;

impl Modify for Workarounds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::extensions::Extensions;
        use utoipa::openapi::schema::Schema;

        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if response.links.is_empty() {
                        continue;
                    }
                    let links: serde_json::Map<String, serde_json::Value> = response
                        .links
                        .iter()
                        .filter_map(|(name, link)| {
                            let RefOr::T(link) = link else { return None };
                            let mut value = serde_json::json!({
                                "operationId": link.operation_id,
                                "parameters": link.parameters,
                            });
                            if let Some(body) = &link.request_body {
                                value["requestBody"] = body.clone();
                            }
                            if !link.description.is_empty() {
                                value["description"] = link.description.clone().into();
                            }
                            Some((name.clone(), value))
                        })
                        .collect();
                    response.links.clear();
                    let extensions = response.extensions.get_or_insert_with(Extensions::default);
                    extensions.merge(Extensions::from_iter([("links", links)]));
                }
            }
        }
        let schemas = openapi.components.as_mut().map(|c| &mut c.schemas);
        if let Some(RefOr::T(Schema::Object(filter))) =
            schemas.and_then(|schemas| schemas.get_mut("BatchFilterBody"))
        {
            filter.max_properties = None;
            filter.min_properties = Some(1);
        }
    }
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /openapi.json`; it needs no token.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document.", content_type = "application/json"))
)]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
