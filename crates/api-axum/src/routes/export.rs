//! Exports: a conversation's whole history (`GET /conversations/{id}/export`) and,
//! for administrators, every conversation of a bot (`GET /exports/conversations`),
//! as JSON Lines or CSV.
//!
//! The body is streamed: the domain reads storage one page at a time as the client
//! reads the response, so memory stays flat however long the conversation is. A
//! storage failure after the first byte cannot change the status any more; it is
//! logged and the response is cut short, which the client sees as a truncated body.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use confab_domain::bot::BotId;
use confab_domain::message::Message;
use confab_domain::service::MessageStream;
use confab_domain::timestamp::Timestamp;
use futures::StreamExt;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::dto::MessageBody;
use crate::error::ApiError;
use crate::extract::{ApiQuery, ConversationPath};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/conversations/{id}/export", get(export_conversation))
        .route("/exports/conversations", get(export_bot))
}

/// The format of an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExportFormat {
    /// JSON Lines (`application/x-ndjson`): one message per line, shaped like the
    /// messages of `history`.
    #[default]
    Jsonl,
    /// CSV (`text/csv`) with a header row; attachments, suggestions and metadata are
    /// JSON text in their cells.
    Csv,
}

/// `GET /conversations/{id}/export`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportParams {
    /// `jsonl` (default) or `csv`.
    #[serde(default)]
    format: ExportFormat,
}

/// `GET /exports/conversations`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BotExportParams {
    /// The bot whose conversations to export.
    #[param(value_type = crate::dto::text::BotIdText)]
    bot_id: String,
    /// Only messages at or after this RFC 3339 time.
    #[serde(default)]
    #[param(format = DateTime)]
    from: Option<String>,
    /// Only messages before this RFC 3339 time.
    #[serde(default)]
    #[param(format = DateTime)]
    to: Option<String>,
    /// `jsonl` (default) or `csv`.
    #[serde(default)]
    format: ExportFormat,
}

/// The whole history of a conversation, oldest first, streamed as JSON Lines (one
/// message per line, as in `history`) or, with `format=csv`, as CSV with a header row.
#[utoipa::path(
    get,
    path = "/conversations/{id}/export",
    tag = "conversations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The conversation's id."),
        ExportParams,
    ),
    responses(
        (status = 200, description = "Every message, one per line.", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        crate::problems::ResourceErrors,
    )
)]
pub(crate) async fn export_conversation(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ConversationPath(id): ConversationPath,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let messages = state.service.export(&caller, id).await?;
    Ok(streamed(
        messages,
        params.format,
        &format!("conversation-{id}"),
    ))
}

/// Administrators: every message of every conversation with a bot, conversation by
/// conversation, each message carrying its `conversation_id`; optionally only those
/// with `from <= timestamp < to`.
#[utoipa::path(
    get,
    path = "/exports/conversations",
    tag = "admin",
    security(("bearer" = [])),
    params(BotExportParams),
    responses(
        (status = 200, description = "Every message, one per line.", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        crate::problems::AdminErrors,
    )
)]
pub(crate) async fn export_bot(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(params): ApiQuery<BotExportParams>,
) -> Result<Response, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden(
            "only administrators may export a bot's conversations",
        ));
    }
    let bot = BotId::parse(&params.bot_id)?;
    let from = params
        .from
        .as_deref()
        .map(Timestamp::parse_rfc3339)
        .transpose()?;
    let to = params
        .to
        .as_deref()
        .map(Timestamp::parse_rfc3339)
        .transpose()?;
    let name = format!("bot-{bot}");
    let messages = state.admin.export_bot(&caller, bot, from, to)?;
    Ok(streamed(messages, params.format, &name))
}

/// The response streaming `messages` in `format`, offered for download as `name`.
fn streamed(messages: MessageStream, format: ExportFormat, name: &str) -> Response {
    let (content_type, extension) = match format {
        ExportFormat::Jsonl => ("application/x-ndjson", "jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let header_row = match format {
        ExportFormat::Jsonl => None,
        ExportFormat::Csv => Some(Ok(Bytes::from_static(CSV_HEADER.as_bytes()))),
    };
    let lines = messages.map(move |item| match item {
        Ok(message) => Ok(Bytes::from(match format {
            ExportFormat::Jsonl => json_line(message),
            ExportFormat::Csv => csv_row(message),
        })),
        Err(error) => {
            tracing::error!(%error, "export cut short by a storage failure");
            Err(error)
        }
    });
    let body = Body::from_stream(futures::stream::iter(header_row).chain(lines));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{name}.{extension}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn json_line(message: Message) -> Vec<u8> {
    // A MessageBody is strings, numbers and a JSON object: serialising cannot fail,
    // and an empty line would be the visible sign if it ever did.
    let mut line = serde_json::to_vec(&MessageBody::from(message)).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The CSV columns, in order.
const CSV_HEADER: &str = "conversation_id,id,seq,timestamp,sender,sender_id,content,\
                          reply_to,client_message_id,attachments,suggestions,metadata,\
                          feedback_rating,feedback_comment\r\n";

fn csv_row(message: Message) -> Vec<u8> {
    let sender = message.sender.as_str();
    let (rating, comment) = message.feedback.as_ref().map_or(("", String::new()), |f| {
        (
            f.rating.as_str(),
            f.comment
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
        )
    });
    let body = MessageBody::from(message);
    let cells = [
        body.conversation_id.to_string(),
        body.id.to_string(),
        body.seq.to_string(),
        body.timestamp.to_rfc3339(),
        sender.to_owned(),
        body.sender_id,
        body.content,
        body.reply_to.map(|id| id.to_string()).unwrap_or_default(),
        body.client_message_id.unwrap_or_default(),
        json_text(&body.attachments),
        json_text(&body.suggestions),
        body.metadata.to_string(),
        rating.to_owned(),
        comment,
    ];
    let mut row = cells
        .iter()
        .map(|cell| csv_cell(cell))
        .collect::<Vec<_>>()
        .join(",");
    row.push_str("\r\n");
    row.into_bytes()
}

/// A list cell as JSON text; lists of plain structs always serialise.
fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

/// A CSV cell by RFC 4180: quoted, with quotes doubled, when it holds a comma, a
/// quote or a line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_with_commas_quotes_or_line_breaks_are_quoted() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
    }
}
