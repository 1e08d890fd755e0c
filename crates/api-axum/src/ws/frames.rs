//! Reading one client text frame: its size, its JSON, the `ref` its error frames
//! echo, its `type`, then its fields. A frame refused here counts as a bad frame; the
//! socket stays open until too many come in a row.

use crate::config::WsSettings;
use crate::error::ErrorCode;
use crate::ws::protocol::{CLIENT_FRAME_TYPES, ClientFrame};

/// A frame that could not be read, and the error frame that answers it.
#[derive(Debug)]
pub(super) struct Refusal {
    /// The error frame's `code`.
    pub(super) code: ErrorCode,
    /// What was wrong.
    pub(super) message: String,
    /// The frame's `ref`, when it could be read.
    pub(super) reference: Option<String>,
}

/// A frame that was read, with the `ref` (or `client_message_id`) its error frames
/// echo, cut to `max_ref_chars` characters.
#[derive(Debug)]
pub(super) struct Parsed {
    /// The frame.
    pub(super) frame: ClientFrame,
    /// What its error frames echo as `ref`.
    pub(super) reference: Option<String>,
}

/// Reads `text` as a client frame.
///
/// # Errors
/// A frame over `max_frame_bytes`, not JSON, of an unknown `type`, or whose fields do
/// not fit its type.
pub(super) fn parse(text: &str, settings: &WsSettings) -> Result<Parsed, Refusal> {
    if text.len() > settings.max_frame_bytes {
        return Err(Refusal {
            code: ErrorCode::PayloadTooLarge,
            message: format!(
                "frame is {} bytes; at most {} are allowed",
                text.len(),
                settings.max_frame_bytes
            ),
            reference: None,
        });
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| Refusal {
        code: ErrorCode::InvalidRequest,
        message: format!("invalid JSON: {error}"),
        reference: None,
    })?;
    let reference = value
        .get("ref")
        .or_else(|| value.get("client_message_id"))
        .and_then(|r| r.as_str())
        .map(|r| r.chars().take(settings.max_ref_chars).collect::<String>());
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_owned();
    if !CLIENT_FRAME_TYPES.contains(&kind.as_str()) {
        return Err(Refusal {
            code: ErrorCode::InvalidRequest,
            message: format!(
                "unknown frame type {kind:?}; expected one of {}",
                CLIENT_FRAME_TYPES.join(", ")
            ),
            reference,
        });
    }
    match serde_json::from_value(value) {
        Ok(frame) => Ok(Parsed { frame, reference }),
        Err(error) => Err(Refusal {
            code: ErrorCode::InvalidRequest,
            message: format!("invalid {kind} frame: {error}"),
            reference,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WsSettings {
        WsSettings {
            max_frame_bytes: 64,
            max_ref_chars: 4,
            ..WsSettings::default()
        }
    }

    #[test]
    fn a_known_frame_is_read_with_its_ref() {
        let parsed = parse(r#"{"type":"ping","ref":"r1"}"#, &settings()).expect("parsed");
        assert!(matches!(parsed.frame, ClientFrame::Ping));
        assert_eq!(parsed.reference.as_deref(), Some("r1"));
    }

    #[test]
    fn a_long_ref_is_cut_to_max_ref_chars() {
        let refusal = parse(r#"{"type":"nope","ref":"abcdefgh"}"#, &settings()).unwrap_err();
        assert_eq!(refusal.reference.as_deref(), Some("abcd"));
        assert_eq!(refusal.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn a_frame_over_max_frame_bytes_is_payload_too_large() {
        let text = format!(r#"{{"type":"ping","ref":"{}"}}"#, "x".repeat(64));
        let refusal = parse(&text, &settings()).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::PayloadTooLarge);
        assert_eq!(refusal.reference, None);
    }
}
