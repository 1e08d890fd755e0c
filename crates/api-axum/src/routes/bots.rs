//! `GET /bots` and `GET /bots/{id}`: the bots a user can start a conversation with;
//! `POST /bots`, `PATCH /bots/{id}` and `DELETE /bots/{id}`: the registry, for
//! administrators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use confab_domain::admin::{BotChanges, BotDraft};
use confab_domain::bot::{BotId, BotName, EngineKind, EngineSpec};
use confab_domain::error::DomainError;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::dto::text::{BotIdText, BotNameText};
use crate::dto::{BotBody, BotListResponse};
use crate::error::ApiError;
use crate::extract::{ApiJson, BotPath};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/bots", get(list_bots).post(create_bot))
        .route(
            "/bots/{id}",
            get(get_bot).patch(update_bot).delete(delete_bot),
        )
}

/// Lists every bot, ordered by id.
#[utoipa::path(
    get,
    path = "/bots",
    tag = "bots",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every bot.", body = BotListResponse, links(
            ("StartConversation" = (operation_id = "start_conversation", request_body = json!({"bot_id": "$response.body#/bots/0/id"}))),
            ("GetBot" = (operation_id = "get_bot", parameters(("id" = "$response.body#/bots/0/id")))),
        )),
        crate::problems::AuthenticatedErrors,
    )
)]
pub(crate) async fn list_bots(
    State(state): State<AppState>,
    _caller: Authenticated,
) -> Result<Json<BotListResponse>, ApiError> {
    let bots = state.service.bots().await?;
    Ok(Json(BotListResponse {
        bots: bots.into_iter().map(BotBody::from).collect(),
    }))
}

/// One bot.
#[utoipa::path(
    get,
    path = "/bots/{id}",
    tag = "bots",
    security(("bearer" = [])),
    params(("id" = BotIdText, Path, description = "The bot's id.")),
    responses(
        (status = 200, description = "The bot.", body = BotBody),
        crate::problems::ResourceErrors,
    )
)]
pub(crate) async fn get_bot(
    State(state): State<AppState>,
    _caller: Authenticated,
    BotPath(id): BotPath,
) -> Result<Json<BotBody>, ApiError> {
    Ok(Json(state.service.bot(&id).await?.into()))
}

/// `POST /bots`: a bot to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBotBody {
    /// The slug that will address the bot: 1 to 64 of a-z, 0-9, `_` and `-`.
    #[schema(example = "support", value_type = BotIdText)]
    pub(crate) id: String,
    /// The name shown to users, 1 to 100 characters.
    #[schema(example = "Support", value_type = BotNameText)]
    pub(crate) name: String,
    /// What the bot does, at most 1000 characters, without NUL.
    #[serde(default)]
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*$")]
    pub(crate) description: String,
    /// The engine.
    #[schema(example = "openai", value_type = EngineKindBody)]
    pub(crate) kind: String,
    /// The engine's settings (see docs/bots.md); secrets are named by environment
    /// variable, never given here. The engine is built from them when the bot is
    /// saved, so settings it cannot use (a rules file that does not parse, an
    /// environment variable that is not set) are refused with 400.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) settings: serde_json::Map<String, serde_json::Value>,
}

/// `PATCH /bots/{id}`: the fields to change. A new `kind` comes with its
/// `settings`; new `settings` alone keep the kind.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBotBody {
    /// A new name.
    #[schema(value_type = Option<BotNameText>)]
    pub(crate) name: Option<String>,
    /// A new description, at most 1000 characters, without NUL.
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*$")]
    pub(crate) description: Option<String>,
    /// A new engine kind.
    #[schema(value_type = Option<EngineKindBody>)]
    pub(crate) kind: Option<String>,
    /// New engine settings, replacing the old ones whole.
    #[schema(value_type = Option<Object>)]
    pub(crate) settings: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A bot's engine kind on the wire; only its schema is used, [`engine_kind`] reads
/// the text so that an unknown kind is named in the error.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub(crate) enum EngineKindBody {
    /// Replies with the user's own text.
    Echo,
    /// Rule-based replies from a script.
    Script,
    /// Any OpenAI-compatible chat completions endpoint.
    Openai,
    /// An HTTP endpoint of the deployer's.
    Webhook,
}

fn engine_kind(kind: &str) -> Result<EngineKind, ApiError> {
    EngineKind::parse(kind).ok_or_else(|| {
        ApiError::invalid_request(format!(
            "unknown bot kind {kind:?}: expected echo, script, openai or webhook"
        ))
    })
}

/// Creates a bot (administrators only). Its engine is built once to check the
/// settings, so a missing environment variable or malformed rules file is a 400.
#[utoipa::path(
    post,
    path = "/bots",
    tag = "bots",
    security(("bearer" = [])),
    request_body = CreateBotBody,
    responses(
        (status = 201, description = "The new bot.", body = BotBody, links(
            ("GetBot" = (operation_id = "get_bot", parameters(("id" = "$response.body#/id")))),
            ("UpdateBot" = (operation_id = "update_bot", parameters(("id" = "$response.body#/id")))),
            ("DeleteBot" = (operation_id = "delete_bot", parameters(("id" = "$response.body#/id")))),
            ("StartConversation" = (operation_id = "start_conversation", request_body = json!({"bot_id": "$response.body#/id"}))),
        )),
        crate::problems::AdminErrors,
        (status = 409, response = crate::problems::Conflict),
    )
)]
pub(crate) async fn create_bot(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateBotBody>,
) -> Result<(StatusCode, Json<BotBody>), ApiError> {
    let draft = BotDraft {
        id: BotId::parse(&body.id)?,
        name: BotName::parse(&body.name)?,
        description: body.description,
        engine: EngineSpec {
            kind: engine_kind(&body.kind)?,
            settings: body.settings,
        },
    };
    let bot = state.bot_admin.create(&caller, draft).await?;
    Ok((StatusCode::CREATED, Json(bot.into())))
}

/// Changes a bot (administrators only); the next reply uses the new settings.
#[utoipa::path(
    patch,
    path = "/bots/{id}",
    tag = "bots",
    security(("bearer" = [])),
    params(("id" = BotIdText, Path, description = "The bot's id.")),
    request_body = UpdateBotBody,
    responses(
        (status = 200, description = "The bot as it now is.", body = BotBody),
        crate::problems::AdminErrors,
        (status = 404, response = crate::problems::NotFound),
    )
)]
pub(crate) async fn update_bot(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    BotPath(id): BotPath,
    ApiJson(body): ApiJson<UpdateBotBody>,
) -> Result<Json<BotBody>, ApiError> {
    // Before the bot is read for its kind: whether a bot exists is no answer for a
    // caller who may not change it.
    if !caller.is_admin() {
        return Err(DomainError::Forbidden.into());
    }
    let engine = match (body.kind, body.settings) {
        (None, None) => None,
        (Some(kind), settings) => Some(EngineSpec {
            kind: engine_kind(&kind)?,
            settings: settings.unwrap_or_default(),
        }),
        (None, Some(settings)) => Some(EngineSpec {
            kind: state.service.bot(&id).await?.engine.kind,
            settings,
        }),
    };
    let changes = BotChanges {
        name: body.name.as_deref().map(BotName::parse).transpose()?,
        description: body.description,
        engine,
    };
    Ok(Json(
        state.bot_admin.update(&caller, &id, changes).await?.into(),
    ))
}

/// Deletes a bot (administrators only). Its active conversations are archived
/// first: their history stays readable, and nothing is left orphaned.
#[utoipa::path(
    delete,
    path = "/bots/{id}",
    tag = "bots",
    security(("bearer" = [])),
    params(("id" = BotIdText, Path, description = "The bot's id.")),
    responses(
        (status = 204, description = "The bot is gone; its conversations are archived."),
        crate::problems::AdminErrors,
        (status = 404, response = crate::problems::NotFound),
    )
)]
pub(crate) async fn delete_bot(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    BotPath(id): BotPath,
) -> Result<StatusCode, ApiError> {
    state.bot_admin.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
