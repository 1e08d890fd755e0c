//! Messages as activities and activities as messages: the mapping table of
//! docs/directline.md, both ways.

use confab_domain::conversation::{ConversationId, Metadata};
use confab_domain::error::ValidationError;
use confab_domain::message::{Attachment, Message, Sender, Seq};
use confab_domain::service::MessageDraft;
use confab_domain::timestamp::Timestamp;

use super::wire::{
    Activity, Attachment as WireAttachment, CardAction, ChannelAccount, ConversationAccount,
    SuggestedActions,
};

/// The `channelId` of every activity confab sends.
pub(crate) const CHANNEL_ID: &str = "directline";

/// The metadata keys an activity's `channelData` and `value` are kept under, so that
/// they travel back to the client (and on to the bot) unchanged.
const CHANNEL_DATA_KEY: &str = "channelData";
const VALUE_KEY: &str = "value";

/// The sender id of system messages, which Direct Line shows as another bot.
const SYSTEM_ID: &str = "confab";

/// What a client's activity asks for.
#[derive(Debug, PartialEq)]
pub(crate) enum Posted {
    /// A message to store.
    Message(MessageDraft),
    /// The user is typing.
    Typing,
    /// An activity type confab has no place for (`event`, `conversationUpdate` …):
    /// acknowledged, not stored; docs/directline.md says so.
    Ignored,
}

/// Reads a client's activity.
///
/// # Errors
/// A message with neither text, value nor attachments, an attachment without a
/// `contentUrl` (cards are not supported), or one that confab's model refuses.
pub(crate) fn posted(activity: Activity) -> Result<Posted, ValidationError> {
    match activity.kind.as_str() {
        "message" => message_draft(activity).map(Posted::Message),
        "typing" => Ok(Posted::Typing),
        _ => Ok(Posted::Ignored),
    }
}

fn message_draft(activity: Activity) -> Result<MessageDraft, ValidationError> {
    let attachments = activity
        .attachments
        .iter()
        .map(attachment_of)
        .collect::<Result<Vec<_>, _>>()?;
    let text = activity.text.unwrap_or_default();
    // A card's submit button sends its form as `value`, often with no text; the bot
    // then sees the form as JSON text, and the value itself in metadata.
    let content = match &activity.value {
        Some(value) if text.trim().is_empty() => value.to_string(),
        _ => text,
    };
    let client_message_id = activity
        .channel_data
        .as_ref()
        .and_then(|data| data.get("clientActivityID"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let mut draft = MessageDraft::parse(&content, attachments, client_message_id.as_deref())?;
    let mut metadata = serde_json::Map::new();
    if let Some(channel_data) = activity.channel_data {
        metadata.insert(CHANNEL_DATA_KEY.to_owned(), channel_data);
    }
    if let Some(value) = activity.value {
        metadata.insert(VALUE_KEY.to_owned(), value);
    }
    draft.metadata = Metadata::parse(serde_json::Value::Object(metadata))?;
    Ok(draft)
}

fn attachment_of(attachment: &WireAttachment) -> Result<Attachment, ValidationError> {
    let url = attachment
        .content_url
        .as_deref()
        .ok_or(ValidationError::AttachmentField {
            field: "contentUrl",
        })?;
    let content_type = Some(attachment.content_type.as_str()).filter(|t| !t.is_empty());
    Attachment::parse(
        attachment_kind(content_type.unwrap_or_default()),
        url,
        content_type,
        attachment.name.as_deref(),
        None,
    )
}

/// confab's attachment kind for a media type: its top-level type where confab has a
/// kind of that name, `file` otherwise.
fn attachment_kind(content_type: &str) -> &'static str {
    match content_type.split('/').next().unwrap_or_default() {
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        _ => "file",
    }
}

/// The activity of a stored message. `bot_name` names the conversation's bot.
pub(crate) fn activity_of(message: &Message, bot_name: &str) -> Activity {
    let from = match message.sender {
        Sender::User => ChannelAccount {
            id: message.sender_id.clone(),
            name: None,
            role: Some("user".to_owned()),
        },
        Sender::Bot => ChannelAccount {
            id: message.sender_id.clone(),
            name: Some(bot_name.to_owned()),
            role: Some("bot".to_owned()),
        },
        Sender::System => ChannelAccount {
            id: SYSTEM_ID.to_owned(),
            name: Some(SYSTEM_ID.to_owned()),
            role: Some("bot".to_owned()),
        },
        // Direct Line knows users and bots only; a person answering in the bot's
        // place speaks from the bot's side, under their own id and name.
        Sender::Agent => ChannelAccount {
            id: message.sender_id.clone(),
            name: Some(message.sender_id.clone()),
            role: Some("bot".to_owned()),
        },
    };
    let metadata = message.metadata.as_map();
    let suggested_actions = (!message.suggestions.is_empty()).then(|| SuggestedActions {
        actions: message
            .suggestions
            .iter()
            .map(|suggestion| CardAction {
                kind: "imBack".to_owned(),
                title: suggestion.text.clone(),
                value: suggestion.text.clone(),
            })
            .collect(),
    });
    Activity {
        kind: "message".to_owned(),
        id: Some(message.id.to_string()),
        timestamp: Some(message.timestamp.to_rfc3339()),
        channel_id: Some(CHANNEL_ID.to_owned()),
        conversation: Some(conversation_account(message.conversation_id)),
        from: Some(from),
        text: Some(message.content.as_str().to_owned()),
        attachments: message
            .attachments
            .as_slice()
            .iter()
            .map(|attachment| WireAttachment {
                content_type: attachment
                    .content_type
                    .clone()
                    .unwrap_or_else(|| default_content_type(&attachment.kind).to_owned()),
                content_url: Some(attachment.url.clone()),
                name: attachment.name.clone(),
            })
            .collect(),
        suggested_actions,
        reply_to_id: message.reply_to.map(|id| id.to_string()),
        value: metadata.get(VALUE_KEY).cloned(),
        channel_data: metadata.get(CHANNEL_DATA_KEY).cloned(),
    }
}

/// A media type for an attachment stored without one, from its kind: Web Chat picks
/// how to show an attachment by its media type.
fn default_content_type(kind: &str) -> &'static str {
    match kind {
        "image" => "image/*",
        "audio" => "audio/*",
        "video" => "video/*",
        _ => "application/octet-stream",
    }
}

/// A `typing` activity of the conversation's bot (or of confab, for `system`).
pub(crate) fn typing_of(
    conversation: ConversationId,
    sender: Sender,
    bot_id: &str,
    bot_name: &str,
) -> Activity {
    let (id, name) = match sender {
        Sender::System => (SYSTEM_ID, SYSTEM_ID),
        Sender::Bot | Sender::User | Sender::Agent => (bot_id, bot_name),
    };
    Activity {
        kind: "typing".to_owned(),
        id: Some(format!("typing-{}", uuid::Uuid::new_v4())),
        timestamp: Some(Timestamp::new(time::OffsetDateTime::now_utc()).to_rfc3339()),
        channel_id: Some(CHANNEL_ID.to_owned()),
        conversation: Some(conversation_account(conversation)),
        from: Some(ChannelAccount {
            id: id.to_owned(),
            name: Some(name.to_owned()),
            role: Some("bot".to_owned()),
        }),
        ..Activity::default()
    }
}

fn conversation_account(id: ConversationId) -> ConversationAccount {
    ConversationAccount { id: id.to_string() }
}

/// The watermark after `seq`: its decimal digits.
pub(crate) fn watermark_of(seq: Seq) -> String {
    seq.get().to_string()
}

/// Reads a client's watermark: empty or absent means "from the start"; anything else
/// must be a watermark confab gave out.
///
/// # Errors
/// A watermark that is not a decimal seq.
pub(crate) fn parse_watermark(value: Option<&str>) -> Result<Seq, String> {
    match value.map(str::trim) {
        None | Some("" | "-") => Ok(Seq::ZERO),
        Some(text) => text
            .parse::<u64>()
            .map(Seq::new)
            .map_err(|_| format!("`{text}` is not a watermark this server gave out")),
    }
}

#[cfg(test)]
mod tests {
    use confab_domain::message::{Attachments, MessageContent, MessageId, Suggestion};

    use super::*;

    fn stored(sender: Sender, seq: u64, content: &str, reply_to: Option<MessageId>) -> Message {
        Message {
            id: MessageId::from_uuid(uuid::Uuid::now_v7()),
            conversation_id: ConversationId::from_uuid(uuid::Uuid::from_u128(1)),
            seq: Seq::new(seq),
            sender,
            sender_id: match sender {
                Sender::User => "dl_alice".to_owned(),
                _ => "demo".to_owned(),
            },
            content: MessageContent::trusted(content),
            attachments: Attachments::none(),
            suggestions: Vec::new(),
            client_message_id: None,
            reply_to,
            timestamp: Timestamp::new(time::OffsetDateTime::now_utc()),
            metadata: Metadata::default(),
            feedback: None,
        }
    }

    fn message_activity(text: &str) -> Activity {
        Activity {
            kind: "message".to_owned(),
            text: Some(text.to_owned()),
            ..Activity::default()
        }
    }

    #[test]
    fn a_message_activity_becomes_a_draft_with_its_client_id_and_channel_data() {
        let activity = Activity {
            channel_data: Some(serde_json::json!({"clientActivityID": "abc-1", "x": 1})),
            ..message_activity("hello")
        };
        let Posted::Message(draft) = posted(activity).expect("valid") else {
            panic!("not a message");
        };
        assert_eq!(draft.content.as_str(), "hello");
        assert_eq!(
            draft.client_message_id.as_ref().map(|id| id.as_str()),
            Some("abc-1")
        );
        assert_eq!(
            draft.metadata.to_value(),
            serde_json::json!({"channelData": {"clientActivityID": "abc-1", "x": 1}})
        );
    }

    #[test]
    fn a_card_submission_without_text_is_sent_as_its_value() {
        let activity = Activity {
            text: None,
            value: Some(serde_json::json!({"size": "large"})),
            ..message_activity("")
        };
        let Posted::Message(draft) = posted(activity).expect("valid") else {
            panic!("not a message");
        };
        assert_eq!(draft.content.as_str(), r#"{"size":"large"}"#);
        assert_eq!(
            draft.metadata.to_value(),
            serde_json::json!({"value": {"size": "large"}})
        );
    }

    #[test]
    fn an_empty_message_and_an_attachment_without_url_are_refused() {
        assert!(posted(message_activity("  ")).is_err());
        let card = Activity {
            attachments: vec![WireAttachment {
                content_type: "application/vnd.microsoft.card.adaptive".to_owned(),
                content_url: None,
                name: None,
            }],
            ..message_activity("look")
        };
        assert!(posted(card).is_err());
    }

    #[test]
    fn typing_and_other_activity_types_are_told_apart() {
        let typing = Activity {
            kind: "typing".to_owned(),
            ..Activity::default()
        };
        assert_eq!(posted(typing), Ok(Posted::Typing));
        let event = Activity {
            kind: "event".to_owned(),
            ..Activity::default()
        };
        assert_eq!(posted(event), Ok(Posted::Ignored));
    }

    #[test]
    fn a_bot_reply_maps_to_a_message_activity_with_suggested_actions() {
        let question = stored(Sender::User, 1, "pizza", None);
        let mut reply = stored(Sender::Bot, 2, "What size?", Some(question.id));
        reply.suggestions = vec![Suggestion {
            text: "large".to_owned(),
        }];
        let activity = activity_of(&reply, "Demo");
        assert_eq!(activity.kind, "message");
        assert_eq!(activity.id, Some(reply.id.to_string()));
        assert_eq!(activity.reply_to_id, Some(question.id.to_string()));
        assert_eq!(activity.channel_id.as_deref(), Some("directline"));
        let from = activity.from.expect("from");
        assert_eq!(from.role.as_deref(), Some("bot"));
        assert_eq!(from.name.as_deref(), Some("Demo"));
        let actions = activity.suggested_actions.expect("suggestions").actions;
        assert_eq!(
            actions,
            vec![CardAction {
                kind: "imBack".to_owned(),
                title: "large".to_owned(),
                value: "large".to_owned()
            }]
        );
        let timestamp = activity.timestamp.expect("timestamp");
        assert!(
            timestamp.ends_with('Z') && timestamp.contains('.'),
            "{timestamp}"
        );
    }

    #[test]
    fn a_user_message_carries_its_channel_data_back() {
        let mut message = stored(Sender::User, 1, "hi", None);
        message.metadata =
            Metadata::parse(serde_json::json!({"channelData": {"clientActivityID": "c1"}}))
                .expect("metadata");
        let activity = activity_of(&message, "Echo");
        assert_eq!(
            activity.channel_data,
            Some(serde_json::json!({"clientActivityID": "c1"}))
        );
        assert_eq!(activity.from.and_then(|f| f.role).as_deref(), Some("user"));
    }

    #[test]
    fn watermarks_are_seqs_and_empty_means_the_start() {
        assert_eq!(parse_watermark(None), Ok(Seq::ZERO));
        assert_eq!(parse_watermark(Some("")), Ok(Seq::ZERO));
        assert_eq!(parse_watermark(Some("12")), Ok(Seq::new(12)));
        assert!(parse_watermark(Some("abc")).is_err());
        assert_eq!(watermark_of(Seq::new(12)), "12");
    }
}
