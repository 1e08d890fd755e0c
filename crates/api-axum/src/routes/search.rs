//! `GET /search`: full-text search over the messages the caller may see (their own
//! conversations; everyone's for administrators). What a word is, and the snippet,
//! are the domain's (`confab_domain::search`).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use confab_domain::bot::BotId;
use confab_domain::conversation::PageSize;
use confab_domain::search::{
    SearchCursor, SearchHit, SearchOrder, SearchQuery, SearchScope, SearchText,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::dto::{MessageBody, StatusBody};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::routes::conversations::page_size;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

/// The order of results.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SearchOrderBody {
    /// Newest message first.
    #[default]
    Newest,
    /// Best match first (the database's own relevance), then newest.
    Rank,
}

/// `GET /search`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// What to look for: 1 to 8 words (runs of letters and digits, each at most 64
    /// characters; everything else separates them), every one of which a message must
    /// hold, as a whole word in any case.
    #[param(min_length = 1, max_length = 200)]
    q: String,
    /// Only conversations with this bot.
    #[serde(default)]
    #[param(value_type = Option<crate::dto::text::BotIdText>)]
    bot_id: Option<String>,
    /// Only conversations in this status.
    #[serde(default)]
    #[param(inline)]
    status: Option<StatusBody>,
    /// `newest` (the default) or `rank`.
    #[serde(default)]
    #[param(inline)]
    order: Option<SearchOrderBody>,
    /// How many results, 1 to 50; 20 by default.
    #[param(minimum = 1, maximum = 50)]
    limit: Option<u64>,
    /// The `next_cursor` of the previous page, with the same `order`.
    cursor: Option<String>,
}

/// A piece of a snippet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct SnippetPartBody {
    /// The text.
    text: String,
    /// Whether it is one of the query's words, to show highlighted.
    highlight: bool,
}

/// One found message.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct SearchHitBody {
    /// Its conversation.
    #[schema(format = Uuid)]
    conversation_id: String,
    /// The message, as history shows it.
    message: MessageBody,
    /// Its text around the first match, in pieces; `…` marks text left out.
    snippet: Vec<SnippetPartBody>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct SearchResponse {
    /// The found messages, in the asked order.
    results: Vec<SearchHitBody>,
    /// Pass as `cursor` (with the same `order`) for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Full-text search over the caller's messages (everyone's for administrators):
/// messages holding every word of `q`, newest first or best match first.
#[utoipa::path(
    get,
    path = "/search",
    tag = "conversations",
    security(("bearer" = [])),
    params(SearchParams),
    responses(
        (status = 200, description = "A page of results.", body = SearchResponse),
        crate::problems::AdminErrors,
    )
)]
pub(crate) async fn search(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    let query = SearchQuery {
        text: SearchText::parse(&params.q)?,
        // The service sets the caller's own scope.
        scope: SearchScope::User(caller.user_id.clone()),
        bot_id: params.bot_id.as_deref().map(BotId::parse).transpose()?,
        status: params.status.map(Into::into),
        order: match params.order.unwrap_or_default() {
            SearchOrderBody::Newest => SearchOrder::Newest,
            SearchOrderBody::Rank => SearchOrder::Rank,
        },
        cursor: params
            .cursor
            .as_deref()
            .map(SearchCursor::decode)
            .transpose()?,
        limit: page_size(
            params.limit,
            PageSize::clamped(SearchQuery::DEFAULT_LIMIT, SearchQuery::MAX_LIMIT),
            SearchQuery::MAX_LIMIT,
        )?,
    };
    let page = state.service.search(&caller, query).await?;
    Ok(Json(SearchResponse {
        results: page.hits.into_iter().map(hit_body).collect(),
        next_cursor: page.next_cursor.map(|cursor| cursor.encode()),
    }))
}

fn hit_body(hit: SearchHit) -> SearchHitBody {
    SearchHitBody {
        conversation_id: hit.message.conversation_id.to_string(),
        message: MessageBody::from(hit.message),
        snippet: hit
            .snippet
            .into_iter()
            .map(|part| SnippetPartBody {
                text: part.text,
                highlight: part.highlight,
            })
            .collect(),
    }
}
