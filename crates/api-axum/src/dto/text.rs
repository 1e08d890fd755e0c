//! The rules of the API's text fields as named JSON Schema components (`BotId`,
//! `Title`, `BotName`, `ClientMessageId` …), so that the OpenAPI document accepts
//! exactly what the model accepts: the same lengths, and the same trimming written as
//! a pattern.
//!
//! Each type here is only a schema: a field keeps its Rust type (`String`) and names
//! one of these with `#[schema(value_type = …)]`, and the model still parses it.
//!
//! The model trims with Rust's [`char::is_whitespace`] and refuses NUL everywhere;
//! `ws!` spells that set as the inside of a character class, with escapes
//! that ECMA-262 (the document's dialect), Python and the `regex` crate read alike.

use std::borrow::Cow;

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat,
    Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// Rust's `char::is_whitespace` (Unicode `White_Space`), as the inside of a class.
macro_rules! ws {
    () => {
        r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// Text that is 1 to `N` characters once trimmed and holds no NUL: whitespace, then a
/// visible character, then up to `N - 2` characters and a last visible one, then
/// whitespace. The argument is `N - 2`.
macro_rules! trimmed_text {
    ($inner:literal) => {
        concat!(
            "^[",
            ws!(),
            "]*[^",
            ws!(),
            r"\u0000](?:[^\u0000]{0,",
            $inner,
            "}[^",
            ws!(),
            r"\u0000])?[",
            ws!(),
            "]*$"
        )
    };
}

/// Whitespace as the model trims it, for the inside of a character class; the
/// patterns spell it with `ws!`, and the tests check it against Rust's.
#[cfg(test)]
const WHITESPACE: &str = ws!();

/// A bot's id.
pub(crate) const BOT_ID_PATTERN: &str = "^[a-z0-9_-]{1,64}$";
/// A title: 1 to 200 characters after trimming.
pub(crate) const TITLE_PATTERN: &str = trimmed_text!("198");
/// A bot's name: 1 to 100 characters after trimming.
pub(crate) const BOT_NAME_PATTERN: &str = trimmed_text!("98");
/// Text with at least one character that is not whitespace, and no NUL.
pub(crate) const VISIBLE_TEXT_PATTERN: &str =
    concat!(r"^[^\u0000]*[^", ws!(), r"\u0000][^\u0000]*$");
/// A message seq: digits (leading zeros allowed) of a number below 10^19.
pub(crate) const SEQ_PATTERN: &str = "^0*[0-9]{1,19}$";
/// An absolute http(s) URL as the model accepts it: a non-empty host, and neither
/// whitespace nor control characters anywhere; and no brackets, which the model takes
/// only around an IPv6 address (that form is left out here rather than spelled out).
pub(crate) const HTTP_URL_PATTERN: &str = concat!(
    "^[hH][tT][tT][pP][sS]?://[^/?#\\[\\]",
    ws!(),
    r"\u0000-\u001f\u007f-\u009f][^\[\]",
    ws!(),
    r"\u0000-\u001f\u007f-\u009f]*$"
);

/// A string schema with a description, a pattern and length bounds.
fn text(description: &str, pattern: &str, min: Option<usize>, max: Option<usize>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(min)
        .max_length(max)
        .into()
}

/// Declares a zero-sized type whose schema is the component `$name`.
macro_rules! text_schema {
    ($(#[$doc:meta])* $type:ident, $name:literal, $schema:expr) => {
        $(#[$doc])*
        pub(crate) struct $type;

        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                RefOr::T($schema)
            }
        }

        impl ToSchema for $type {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

text_schema!(
    /// `BotId`: 1 to 64 of a-z, 0-9, `_` and `-`.
    BotIdText,
    "BotId",
    text(
        "A bot's id: 1 to 64 of a-z, 0-9, `_` and `-`.",
        BOT_ID_PATTERN,
        Some(1),
        Some(64),
    )
);

text_schema!(
    /// `Title`: 1 to 200 characters once trimmed, no NUL.
    TitleText,
    "Title",
    text(
        "A conversation's title: 1 to 200 characters once leading and trailing \
         whitespace is trimmed, without NUL.",
        TITLE_PATTERN,
        Some(1),
        None,
    )
);

text_schema!(
    /// `BotName`: 1 to 100 characters once trimmed, no NUL.
    BotNameText,
    "BotName",
    text(
        "The name shown to users: 1 to 100 characters once leading and trailing \
         whitespace is trimmed, without NUL.",
        BOT_NAME_PATTERN,
        Some(1),
        None,
    )
);

text_schema!(
    /// `ClientMessageId`: 1 to 128 characters, not only whitespace, no NUL.
    ClientMessageIdText,
    "ClientMessageId",
    text(
        "The client's own id for a message, which makes a retry safe: 1 to 128 \
         characters, not only whitespace, without NUL; unique per conversation.",
        VISIBLE_TEXT_PATTERN,
        Some(1),
        Some(128),
    )
);

text_schema!(
    /// `Seq`: a message's position, as text.
    SeqText,
    "Seq",
    text(
        "A message's seq, in decimal digits.",
        SEQ_PATTERN,
        Some(1),
        None,
    )
);

/// The schema of an attachment's `url`.
pub(crate) fn http_url() -> Schema {
    text(
        "An absolute http(s) URL with a host, of at most 2048 bytes, without whitespace \
         or control characters.",
        HTTP_URL_PATTERN,
        Some(1),
        Some(2048),
    )
}

text_schema!(
    /// `MessageText`: a user message's text when no attachment comes with it.
    MessageText,
    "MessageText",
    text(
        "A user message's text: at most 16 KiB of UTF-8 once trimmed, not only \
         whitespace, without NUL.",
        VISIBLE_TEXT_PATTERN,
        Some(1),
        Some(16 * 1024),
    )
);

text_schema!(
    /// `HistoryCursor`: where a page of history starts.
    HistoryCursorText,
    "HistoryCursor",
    AnyOfBuilder::new()
        .description(Some(
            "A position in a conversation: a message's seq (digits), a message's id \
             (UUID) or an RFC 3339 time.",
        ))
        .item(text("A seq.", SEQ_PATTERN, Some(1), None))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .into()
);

text_schema!(
    /// `SendMessageRequest`: [`SendMessageBody`](super::SendMessageBody) and the rule
    /// across its fields.
    SendMessageRequest,
    "SendMessageRequest",
    AllOfBuilder::new()
        .description(Some(
            "A message to send: `content` may be empty or whitespace only when at least \
             one attachment comes with it.",
        ))
        .item(Ref::from_schema_name("SendMessageBody"))
        .item(
            AnyOfBuilder::new()
                .item(
                    ObjectBuilder::new().property(
                        "content",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some(VISIBLE_TEXT_PATTERN)),
                    ),
                )
                .item(
                    ObjectBuilder::new()
                        .property("attachments", ArrayBuilder::new().min_items(Some(1)))
                        .required("attachments"),
                ),
        )
        .into()
);

text_schema!(
    /// `UpdateConversationRequest`: [`UpdateConversationBody`](super::UpdateConversationBody)
    /// with at least one of its fields.
    UpdateConversationRequest,
    "UpdateConversationRequest",
    AllOfBuilder::new()
        .description(Some("At least one of `status`, `title` and `metadata`."))
        .item(Ref::from_schema_name("UpdateConversationBody"))
        .item(
            AnyOfBuilder::new()
                .item(ObjectBuilder::new().required("status"))
                .item(ObjectBuilder::new().required("title"))
                .item(ObjectBuilder::new().required("metadata")),
        )
        .into()
);

/// An object schema that holds when `member` is absent: `{"not": {"required":
/// [member]}}`. utoipa has no `not`; JSON Schema reads the extension as the keyword.
pub(crate) fn absent(member: &str) -> ObjectBuilder {
    let not = serde_json::json!({ "required": [member] });
    ObjectBuilder::new().extensions(Some(Extensions::from_iter([("not", not)])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The characters a class body of single characters, `\t`-style and `\uXXXX`
    /// escapes and `a-b` ranges denotes: enough to read [`WHITESPACE`].
    fn class_members(class: &str) -> Vec<char> {
        let mut singles = Vec::new();
        let mut rest = class;
        while !rest.is_empty() {
            let (c, after) = if let Some(hex) = rest.strip_prefix(r"\u") {
                let code = u32::from_str_radix(&hex[..4], 16).expect("four hex digits");
                (char::from_u32(code).expect("a char"), &hex[4..])
            } else if let Some(after) = rest.strip_prefix(r"\t") {
                ('\t', after)
            } else if let Some(after) = rest.strip_prefix(r"\r") {
                ('\r', after)
            } else {
                let c = rest.chars().next().expect("a char");
                (c, &rest[c.len_utf8()..])
            };
            singles.push(c);
            rest = after;
        }
        let mut members = Vec::new();
        let mut i = 0;
        while i < singles.len() {
            if singles.get(i + 1) == Some(&'-') && i + 2 < singles.len() {
                members.extend(singles[i]..=singles[i + 2]);
                i += 3;
            } else {
                members.push(singles[i]);
                i += 1;
            }
        }
        members
    }

    #[test]
    fn the_whitespace_class_is_exactly_what_rust_trims() {
        let members = class_members(WHITESPACE);
        let whitespace: Vec<char> = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        assert_eq!(members, whitespace);
    }

    #[test]
    fn the_trimmed_text_patterns_leave_room_for_the_first_and_last_characters() {
        assert!(TITLE_PATTERN.contains("{0,198}"));
        assert!(BOT_NAME_PATTERN.contains("{0,98}"));
    }
}
