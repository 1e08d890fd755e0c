//! What the fuzzer sends: strategies for arbitrary frames (random bytes, text that is
//! almost JSON, valid frames with fields of the wrong type or with huge and negative
//! numbers, binary frames, fragmented messages, protocol violations) and the oracle
//! that says which of them the server must refuse.

use proptest::prelude::*;
use serde_json::Value;

/// Ids the frames may name: the fuzzing user's own session and conversation (valid
/// targets), and a well-formed id nobody has.
#[derive(Debug, Clone)]
pub struct Ids {
    pub session: String,
    pub conversation: String,
    pub unknown: String,
}

/// One thing sent on the socket.
#[derive(Clone)]
pub enum Fuzz {
    /// A text message in one frame.
    Text(String),
    /// A text message in several frames, with a ping between two of them when the
    /// flag is set (control frames may interleave with fragments).
    Fragmented(Vec<String>, bool),
    /// A binary message, in one frame or two.
    Binary(Vec<u8>, bool),
    /// A ping or pong with a payload; the server answers pings itself.
    Control { ping: bool, payload: Vec<u8> },
    /// A frame that breaks RFC 6455: the server must close the connection.
    Violation(Violation),
}

/// Long texts are cut in failure messages: a 64 KiB frame would bury the rest.
fn short(text: &str) -> String {
    if text.len() <= 160 {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(60).collect();
    format!("{head:?}… ({} bytes)", text.len())
}

impl std::fmt::Debug for Fuzz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(text) => write!(f, "Text({})", short(text)),
            Self::Fragmented(parts, ping) => {
                let parts: Vec<String> = parts.iter().map(|p| short(p)).collect();
                write!(f, "Fragmented([{}], ping: {ping})", parts.join(", "))
            }
            Self::Binary(bytes, split) => {
                write!(f, "Binary({} bytes, split: {split})", bytes.len())
            }
            Self::Control { ping, payload } => {
                write!(f, "Control(ping: {ping}, {} bytes)", payload.len())
            }
            Self::Violation(violation) => write!(f, "Violation({violation:?})"),
        }
    }
}

/// Frames that break the WebSocket protocol itself.
#[derive(Debug, Clone, Copy)]
pub enum Violation {
    /// A text frame that is not UTF-8.
    InvalidUtf8,
    /// A continuation frame with no message to continue.
    StrayContinuation,
    /// A data frame with a reserved opcode (3).
    ReservedOpcode,
    /// A ping split in fragments.
    FragmentedPing,
}

/// What the server must do with a text message, as far as the frame alone says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It must answer with an `error` frame.
    Refused,
    /// It may act on it or refuse it: only the state of the server knows.
    Either,
}

/// Where the oracle's bounds come from: docs/websocket.md's frame limit and the
/// frame types.
const MAX_FRAME_BYTES: usize = 64 * 1024;
const TYPES: [&str; 6] = [
    "message",
    "start",
    "subscribe",
    "unsubscribe",
    "typing",
    "ping",
];
const BOTS: [&str; 3] = ["echo", "echo-stream", "demo"];

fn is_string_or_null(value: Option<&Value>) -> bool {
    value.is_none_or(|v| v.is_string() || v.is_null())
}

/// Says whether `text` must be refused. It errs towards `Either`: it knows the
/// frame's shape (JSON, `type`, the type of each known field) and that a frame
/// naming no conversation of the user's own, or an unknown bot, cannot succeed.
pub fn verdict(text: &str, ids: &Ids) -> Verdict {
    if text.len() > MAX_FRAME_BYTES {
        return Verdict::Refused;
    }
    let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
        return Verdict::Refused;
    };
    let Some(kind) = frame.get("type").and_then(Value::as_str) else {
        return Verdict::Refused;
    };
    if !TYPES.contains(&kind) {
        return Verdict::Refused;
    }
    let own = |key: &str, id: &str| frame.get(key).and_then(Value::as_str) == Some(id);
    let targets_own = own("session_id", &ids.session) || own("conversation_id", &ids.conversation);
    let strings_ok = |keys: &[&str]| keys.iter().all(|k| is_string_or_null(frame.get(*k)));
    let refused = match kind {
        "ping" => false,
        "message" => {
            let content = frame.get("content");
            !strings_ok(&["session_id", "conversation_id", "client_message_id"])
                || !content.is_none_or(Value::is_string)
                || !frame
                    .get("attachments")
                    .is_none_or(|a| a.is_array() || a.is_null())
                || !targets_own
                || (content
                    .and_then(Value::as_str)
                    .is_none_or(|c| c.trim().is_empty())
                    && frame
                        .get("attachments")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty))
        }
        "start" => {
            !strings_ok(&["initial_message", "client_message_id", "title"])
                || !frame
                    .get("bot_id")
                    .and_then(Value::as_str)
                    .is_some_and(|bot| BOTS.contains(&bot))
        }
        "subscribe" => {
            !strings_ok(&["session_id", "conversation_id"])
                || !frame
                    .get("after_seq")
                    .is_none_or(|seq| seq.is_null() || seq.is_u64())
                || !targets_own
        }
        // unsubscribe, typing
        _ => !strings_ok(&["session_id", "conversation_id"]) || !targets_own,
    };
    if refused {
        Verdict::Refused
    } else {
        Verdict::Either
    }
}

/// JSON texts that are valid values of the wrong type, or numbers no field takes.
fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-1".to_owned()),
        Just("0".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("1e400".to_owned()),
        Just("-0.0".to_owned()),
        Just("1.5".to_owned()),
        Just(format!("1{}", "0".repeat(300))),
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("\"\"".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        Just(format!("{}1{}", "[".repeat(200), "]".repeat(200))),
        Just(format!("\"{}\"", "é".repeat(9000))),
        Just("[{\"type\":\"image\",\"url\":\"javascript:alert(1)\"}]".to_owned()),
        Just("\"0193a000-0000-7000-8000-00000000000\"".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| serde_json::to_string(&n).unwrap_or_else(|_| "0".into())),
        "[ -~]{0,24}".prop_map(|s| Value::String(s).to_string()),
    ]
}

/// A valid frame of each type, as (key, JSON text) pairs so that values can be
/// replaced by text no `Value` can hold (1e400, lone surrogates).
fn template(ids: &Ids) -> impl Strategy<Value = Vec<(String, String)>> + use<> {
    let quoted = |s: &str| Value::String(s.to_owned()).to_string();
    let (s, c, u) = (
        quoted(&ids.session),
        quoted(&ids.conversation),
        quoted(&ids.unknown),
    );
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    // `subscribe` asks for no replay (`after_seq` past the end): the fuzzing
    // conversation grows to thousands of messages, and replaying them at every
    // subscribe made up six frames in seven the sockets read. A mutation to `0`
    // still replays now and then.
    let templates = vec![
        pairs(&[("type", "\"ping\"")]),
        pairs(&[
            ("type", "\"message\""),
            ("session_id", &s),
            ("content", "\"hello\""),
        ]),
        pairs(&[
            ("type", "\"message\""),
            ("conversation_id", &c),
            ("content", "\"hi\""),
            ("client_message_id", "\"c-1\""),
        ]),
        pairs(&[
            ("type", "\"message\""),
            ("session_id", &u),
            ("content", "\"lost\""),
        ]),
        pairs(&[
            ("type", "\"subscribe\""),
            ("session_id", &s),
            ("after_seq", "4294967296"),
        ]),
        pairs(&[("type", "\"subscribe\""), ("conversation_id", &c)]),
        pairs(&[("type", "\"unsubscribe\""), ("session_id", &s)]),
        pairs(&[("type", "\"typing\""), ("conversation_id", &c)]),
        pairs(&[("type", "\"typing\""), ("session_id", &u)]),
        pairs(&[
            ("type", "\"start\""),
            ("bot_id", "\"echo\""),
            ("initial_message", "\"hey\""),
            ("title", "\"t\""),
        ]),
        pairs(&[("type", "\"start\""), ("bot_id", "\"nobody\"")]),
    ];
    (
        proptest::sample::select(templates),
        proptest::option::of("[a-z0-9-]{0,12}|[a-z]{130,140}"),
    )
        .prop_map(|(mut pairs, reference)| {
            if let Some(reference) = reference {
                pairs.push(("ref".to_owned(), Value::String(reference).to_string()));
            }
            pairs
        })
}

fn render(pairs: &[(String, String)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// A change to a valid frame's fields.
fn field_mutation(pairs: Vec<(String, String)>) -> impl Strategy<Value = Vec<(String, String)>> {
    let n = pairs.len();
    (0..n, odd_value(), 0..6u8, "[a-z_]{1,12}").prop_map(move |(i, value, how, key)| {
        let mut pairs = pairs.clone();
        match how {
            0 | 1 => pairs[i].1 = value,
            2 => {
                pairs.remove(i);
            }
            3 => pairs.push((pairs[i].0.clone(), value)),
            4 => pairs[i].0 = key,
            _ => pairs.push((key, value)),
        }
        pairs
    })
}

/// A change to a frame's text: it stays UTF-8, and is almost always no longer JSON.
fn text_mutation(text: String) -> impl Strategy<Value = String> {
    let chars = text.chars().count().max(1);
    (
        0..chars,
        0..chars,
        0..6u8,
        proptest::sample::select(vec![
            '{',
            '}',
            '[',
            ']',
            '"',
            ',',
            ':',
            '\\',
            ' ',
            '0',
            'é',
            '\u{0}',
            '\u{1F600}',
        ]),
    )
        .prop_map(move |(at, to, how, c)| {
            let mut chars: Vec<char> = text.chars().collect();
            let (at, to) = (at.min(chars.len()), to.min(chars.len()));
            match how {
                0 => {
                    if at < chars.len() {
                        chars.remove(at);
                    }
                }
                1 => chars.insert(at, c),
                2 => chars.truncate(at),
                3 => {
                    if at < chars.len() {
                        chars[at] = c;
                    }
                }
                4 => {
                    let (lo, hi) = (at.min(to), at.max(to));
                    let slice: Vec<char> = chars[lo..hi].to_vec();
                    chars.splice(hi..hi, slice);
                }
                _ => chars.reverse(),
            }
            chars.into_iter().collect()
        })
}

/// A text message: random, a valid frame, a valid frame with a field changed, or a
/// valid frame with its text changed.
pub fn text(ids: &Ids) -> impl Strategy<Value = String> + use<> {
    prop_oneof![
        2 => any::<String>(),
        1 => "[{}\\[\\]\":,a-z0-9 ]{0,40}",
        2 => template(ids).prop_map(|pairs| render(&pairs)),
        5 => template(ids).prop_flat_map(field_mutation).prop_map(|pairs| render(&pairs)),
        4 => template(ids).prop_flat_map(|pairs| text_mutation(render(&pairs))),
        1 => (MAX_FRAME_BYTES - 64..MAX_FRAME_BYTES + 4096).prop_map(|n| {
            format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(n))
        }),
    ]
}

fn split(text: String, cuts: Vec<usize>) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (chars.len() + 1)).collect();
    cuts.sort_unstable();
    let mut parts = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain([chars.len()]) {
        parts.push(chars[from..cut].iter().collect());
        from = cut;
    }
    parts
}

/// One thing to send.
pub fn fuzz(ids: &Ids) -> impl Strategy<Value = Fuzz> + use<> {
    let violation = prop_oneof![
        Just(Violation::InvalidUtf8),
        Just(Violation::StrayContinuation),
        Just(Violation::ReservedOpcode),
        Just(Violation::FragmentedPing),
    ];
    prop_oneof![
        24 => text(ids).prop_map(Fuzz::Text),
        6 => (text(ids), proptest::collection::vec(any::<usize>(), 1..4), any::<bool>())
            .prop_map(|(text, cuts, ping)| Fuzz::Fragmented(split(text, cuts), ping)),
        4 => (proptest::collection::vec(any::<u8>(), 0..64), any::<bool>())
            .prop_map(|(bytes, split)| Fuzz::Binary(bytes, split)),
        2 => (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..125))
            .prop_map(|(ping, payload)| Fuzz::Control { ping, payload }),
        1 => violation.prop_map(Fuzz::Violation),
    ]
}

/// A case: a few frames, sometimes more than the bad frames the server tolerates in
/// a row (10), so that the 1008 close is reached too.
pub fn case(ids: &Ids) -> impl Strategy<Value = Vec<Fuzz>> + use<> {
    prop_oneof![
        4 => proptest::collection::vec(fuzz(ids), 1..=3),
        1 => proptest::collection::vec(fuzz(ids), 9..=12),
    ]
}
