//! The fuzzing sockets' side of the wire: the frames that carry a fuzzed message
//! (raw frames for fragments and protocol violations), and reading what the server
//! answers, checked against docs/websocket.md.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

use crate::helpers::WsClient;
use crate::ws_fuzz::frames::{Fuzz, Violation};

/// How long any one read waits. A guard against a hang, not a performance bound.
pub const READ_PATIENCE: Duration = Duration::from_secs(15);

/// The server's frame types (docs/websocket.md).
const SERVER_TYPES: [&str; 8] = [
    "status",
    "message",
    "delta",
    "typing",
    "started",
    "subscribed",
    "pong",
    "error",
];
/// The `error` frames' codes (docs/websocket.md).
const ERROR_CODES: [&str; 7] = [
    "invalid_request",
    "payload_too_large",
    "not_found",
    "conversation_archived",
    "idempotency_mismatch",
    "unavailable",
    "rate_limited",
];
/// The close codes (docs/websocket.md).
const CLOSE_CODES: [u16; 5] = [1000, 1001, 1002, 1008, 1013];

/// What the server did next.
#[derive(Debug)]
pub enum Event {
    /// A JSON frame of a documented type.
    Frame(Value),
    /// A close frame with a documented code.
    Closed(u16),
    /// The connection ended without a close frame: a reset, or an end of stream.
    Dropped(String),
}

/// The next JSON frame or the end of the connection, skipping pings and pongs. An
/// error for anything the protocol does not allow: no answer in time, a frame that
/// is not JSON or of an undocumented type or code, an undocumented close code.
pub async fn read(socket: &mut WsClient) -> Result<Event, String> {
    loop {
        let next = tokio::time::timeout(READ_PATIENCE, socket.stream.next())
            .await
            .map_err(|_| "the server answered nothing in time".to_owned())?;
        return match next {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text)
                    .map_err(|e| format!("a frame that is not JSON ({e}): {text}"))?;
                check_server_frame(&frame)?;
                Ok(Event::Frame(frame))
            }
            Some(Ok(Message::Close(Some(close)))) => {
                let code = u16::from(close.code);
                if !CLOSE_CODES.contains(&code) {
                    return Err(format!("closed with an undocumented code: {close:?}"));
                }
                Ok(Event::Closed(code))
            }
            Some(Ok(Message::Close(None))) => Err("closed without a code".to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => Err(format!("an unexpected message: {other:?}")),
            Some(Err(error)) => Ok(Event::Dropped(error.to_string())),
            None => Ok(Event::Dropped("end of stream".to_owned())),
        };
    }
}

/// The next JSON frame; an error if the connection ended.
pub async fn next_frame(socket: &mut WsClient) -> Result<Value, String> {
    match read(socket).await? {
        Event::Frame(frame) => Ok(frame),
        other => Err(format!("the socket ended: {other:?}")),
    }
}

fn check_server_frame(frame: &Value) -> Result<(), String> {
    let kind = frame["type"].as_str().unwrap_or_default();
    if !SERVER_TYPES.contains(&kind) {
        return Err(format!("an undocumented frame: {frame}"));
    }
    if kind == "error" && !ERROR_CODES.contains(&frame["code"].as_str().unwrap_or_default()) {
        return Err(format!("an error frame with an undocumented code: {frame}"));
    }
    Ok(())
}

/// The frames that carry one fuzzed message.
pub fn wire(fuzz: &Fuzz) -> Vec<Message> {
    let text = |data: &[u8], first: bool, fin: bool| {
        let opcode = if first { Data::Text } else { Data::Continue };
        Message::Frame(Frame::message(data.to_vec(), OpCode::Data(opcode), fin))
    };
    match fuzz {
        Fuzz::Text(text) => vec![Message::Text(text.clone().into())],
        Fuzz::Fragmented(parts, ping) => {
            let mut frames = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                if *ping && i == 1 {
                    frames.push(Message::Ping(b"between".to_vec().into()));
                }
                frames.push(text(part.as_bytes(), i == 0, i + 1 == parts.len()));
            }
            frames
        }
        Fuzz::Binary(bytes, false) => vec![Message::Binary(bytes.clone().into())],
        Fuzz::Binary(bytes, true) => {
            let (a, b) = bytes.split_at(bytes.len() / 2);
            vec![
                Message::Frame(Frame::message(
                    a.to_vec(),
                    OpCode::Data(Data::Binary),
                    false,
                )),
                Message::Frame(Frame::message(
                    b.to_vec(),
                    OpCode::Data(Data::Continue),
                    true,
                )),
            ]
        }
        Fuzz::Control {
            ping: true,
            payload,
        } => vec![Message::Ping(payload.clone().into())],
        Fuzz::Control {
            ping: false,
            payload,
        } => vec![Message::Pong(payload.clone().into())],
        Fuzz::Violation(Violation::InvalidUtf8) => {
            vec![text(b"{\"type\":\"\xff\xfe\"}", true, true)]
        }
        Fuzz::Violation(Violation::StrayContinuation) => vec![text(b"{}", false, true)],
        Fuzz::Violation(Violation::ReservedOpcode) => vec![Message::Frame(Frame::message(
            b"{}".to_vec(),
            OpCode::Data(Data::Reserved(3)),
            true,
        ))],
        Fuzz::Violation(Violation::FragmentedPing) => vec![Message::Frame(Frame::from_payload(
            FrameHeader {
                is_final: false,
                opcode: OpCode::Control(Control::Ping),
                ..FrameHeader::default()
            },
            b"half".to_vec().into(),
        ))],
    }
}
