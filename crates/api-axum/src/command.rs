//! Wire input → domain command, written once for REST and the WebSocket: a message
//! to send ([`message_draft`]) and a conversation to start ([`start_command`]). Both
//! transports parse the same fields the same way, so a value one refuses the other
//! refuses too, with the same error.

use confab_domain::bot::BotId;
use confab_domain::conversation::{Metadata, Title};
use confab_domain::error::ValidationError;
use confab_domain::message::Attachment;
use confab_domain::service::{MessageDraft, StartConversation};

use crate::dto::AttachmentBody;

/// A user message as the wire carries it.
pub(crate) struct MessageInput<'a> {
    /// The text.
    pub(crate) content: &'a str,
    /// Attached files and links.
    pub(crate) attachments: Vec<AttachmentBody>,
    /// The client's id for the message, from the body or `Idempotency-Key`.
    pub(crate) client_message_id: Option<&'a str>,
    /// Client data; absent is an empty object.
    pub(crate) metadata: Option<serde_json::Value>,
}

/// A conversation to start as the wire carries it.
pub(crate) struct StartInput<'a> {
    /// The bot's id.
    pub(crate) bot_id: &'a str,
    /// A first user message.
    pub(crate) initial_message: Option<&'a str>,
    /// The first message's client id.
    pub(crate) client_message_id: Option<&'a str>,
    /// A title.
    pub(crate) title: Option<&'a str>,
    /// Client data; absent is an empty object.
    pub(crate) metadata: Option<serde_json::Value>,
}

/// The message to send.
///
/// # Errors
/// The first field the model refuses: an attachment, then the content with its
/// attachments, the client id, then the metadata.
pub(crate) fn message_draft(input: MessageInput<'_>) -> Result<MessageDraft, ValidationError> {
    let attachments = input
        .attachments
        .into_iter()
        .map(Attachment::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let mut draft = MessageDraft::parse(input.content, attachments, input.client_message_id)?;
    draft.metadata = metadata(input.metadata)?;
    Ok(draft)
}

/// The conversation to start, with its first message when one is given.
///
/// # Errors
/// The first field the model refuses: the first message, then the bot id, the
/// title and the metadata.
pub(crate) fn start_command(input: StartInput<'_>) -> Result<StartConversation, ValidationError> {
    let initial_message = input
        .initial_message
        .map(|content| MessageDraft::parse(content, Vec::new(), input.client_message_id))
        .transpose()?;
    Ok(StartConversation {
        bot_id: BotId::parse(input.bot_id)?,
        initial_message,
        title: input.title.map(Title::parse).transpose()?,
        metadata: metadata(input.metadata)?,
    })
}

/// Client data; absent is an empty object.
fn metadata(value: Option<serde_json::Value>) -> Result<Metadata, ValidationError> {
    value.map_or(Ok(Metadata::default()), Metadata::parse)
}
