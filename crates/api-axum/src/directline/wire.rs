//! The JSON shapes of Direct Line 3.0, as its clients (Web Chat, `botframework-directlinejs`,
//! the mobile samples) send and read them: camelCase, optional members left out.
//!
//! Incoming activities are read leniently, the way the Direct Line service reads them:
//! members confab does not use (`locale`, `entities`, `localTimestamp` …) are ignored,
//! not refused, since every client sends some of them.

use serde::{Deserialize, Serialize};

/// An activity: a message, a typing signal, or anything else a client sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Activity {
    /// `message`, `typing`, `event` …
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When it was stored, ISO 8601 in UTC with milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationAccount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ChannelAccount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_actions: Option<SuggestedActions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_id: Option<String>,
    /// What an Adaptive Card's submit action sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// The client's own data; Web Chat puts `clientActivityID` here and matches the
    /// echo of its message by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_data: Option<serde_json::Value>,
}

/// Who sent an activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChannelAccount {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `user` or `bot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// The conversation an activity belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConversationAccount {
    #[serde(default)]
    pub id: String,
}

/// A file or link on an activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attachment {
    #[serde(default)]
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Quick replies offered with a bot's message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SuggestedActions {
    #[serde(default)]
    pub actions: Vec<CardAction>,
}

/// One quick reply; confab's are `imBack`: a click sends `value` as the user's text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CardAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub value: String,
}

/// What the stream pushes and polling returns: activities and the watermark after them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct ActivitySet {
    pub activities: Vec<Activity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
}

/// The answer of `POST /conversations`, `GET /conversations/{id}` and the token routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConversationGrantBody {
    pub conversation_id: String,
    pub token: String,
    /// Seconds until the token expires; snake case, unlike the rest, as in Direct Line.
    #[serde(rename = "expires_in")]
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
}

/// The body of `POST /tokens/generate` and `POST /conversations`; all optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct StartRequest {
    #[serde(default)]
    pub user: Option<ChannelAccount>,
}

/// The answer of `POST /activities`: the id of the stored activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ResourceResponse {
    pub id: String,
}
