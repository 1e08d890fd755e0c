//! `/ws` under fuzzing: a property test (proptest, 10 000 cases) sends arbitrary
//! frames to one server through a small pool of sockets (`frames` makes them and
//! says which must be refused, `wire` sends them and reads the answers) and checks
//! that
//! - every frame the server sends is a JSON object of a documented type, and every
//!   `error` frame has a documented code and echoes only a `ref` the case sent;
//! - every frame the oracle knows to be bad gets its `error` frame, or the
//!   connection closes with a documented close code (1008 after 10 bad frames in a
//!   row, 1002 for a frame that breaks RFC 6455 itself);
//! - the server never panics: a panic hook counts panics on the server's threads,
//!   and after the cases `/healthz` answers and the server stops cleanly;
//! - a well-behaved socket of another user on the same server is unaffected: every
//!   tenth case it sends a message and gets its acknowledgement and the bot's reply,
//!   and nothing else.
//!
//! A case is cheap (a few frames and one round trip): after its frames the socket
//! sends a probe, a well-formed `typing` frame with a malformed id, whose `error`
//! frame (with the probe's `ref`) marks the end of the case's answers. A closed
//! socket is replaced by a new one at its next case.

mod frames;
mod wire;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::SinkExt;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Backend, TestApp, WsClient, spawn_app, spawn_app_with, user};
use crate::ws_fuzz::frames::{Fuzz, Ids, Verdict, Violation, case, verdict};
use crate::ws_fuzz::wire::{Event, READ_PATIENCE, next_frame, read, wire};

/// How many cases run: the issue asks for at least 10 000 in CI.
const CASES: u32 = 10_000;
/// Sockets the fuzzing user keeps open at once.
const POOL: usize = 4;
/// The well-behaved socket talks every this many cases.
const BYSTANDER_EVERY: usize = 10;
/// The threads that run the server, whose panics the hook counts.
const SERVER_THREADS: &str = "ws-fuzz-server";

/// Panics seen on the server's threads since the hook was installed.
static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_server_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with(SERVER_THREADS))
        {
            SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
}

/// How a case ended on its socket.
#[derive(Debug, Default)]
struct Outcome {
    /// Error frames other than the probe's.
    errors: usize,
    /// The close code, if the server closed the socket.
    closed: Option<u16>,
    /// The types of the frames received, for failure messages.
    seen: Vec<String>,
}

/// The fuzzing user's sockets, opened on demand.
struct Pool {
    address: std::net::SocketAddr,
    token: String,
    sockets: Vec<Option<WsClient>>,
    probes: u64,
    reconnects: u32,
    /// Cases whose close was overtaken by a reset.
    resets: u32,
    closes: std::collections::BTreeMap<u16, u32>,
    cases: usize,
    /// Time spent sending and reading, against the whole run's: the rest is
    /// proptest making the cases.
    on_the_wire: Duration,
    /// Data messages sent, those the oracle said must be refused in cases that
    /// ended with the probe, and the error frames those cases got.
    messages: usize,
    must_refuse: usize,
    errors: usize,
    /// Frames the fuzzing sockets received.
    received: usize,
}

impl Pool {
    async fn socket(&mut self, slot: usize) -> Result<&mut WsClient, String> {
        if self.sockets[slot].is_none() {
            let mut socket = WsClient::connect(self.address, &self.token)
                .await
                .map_err(|e| format!("a new socket is refused: {e}"))?;
            let hello = next_frame(&mut socket).await?;
            if hello["status"] != "connected" {
                return Err(format!("a new socket starts with {hello}"));
            }
            self.sockets[slot] = Some(socket);
            self.reconnects += 1;
        }
        Ok(self.sockets[slot].as_mut().expect("socket just opened"))
    }
}

/// Sends one case's frames and its probe on `slot`, then reads every answer up to
/// the probe's error or the close.
///
/// A case is cut after its first protocol violation, and then sends no probe: the
/// server closes at once, and bytes still arriving at a closed socket make the
/// kernel answer with a reset that can overtake the close frame.
async fn run_case(pool: &mut Pool, slot: usize, case: &[Fuzz], ids: &Ids) -> Result<(), String> {
    pool.probes += 1;
    let probe = format!("\u{2691}probe-{}", pool.probes);
    let case = match case.iter().position(|f| matches!(f, Fuzz::Violation(_))) {
        Some(at) => &case[..=at],
        None => case,
    };
    let violation = matches!(case.last(), Some(Fuzz::Violation(_)));
    // Frames the oracle says must be refused, and data messages (text or binary),
    // of which 10 refused in a row close the socket with 1008.
    let (mut refused, mut messages) = (0, 0);
    let mut references: Vec<String> = vec![probe.clone()];
    for fuzz in case {
        match fuzz {
            Fuzz::Text(text) => note(text, ids, &mut refused, &mut references),
            Fuzz::Fragmented(parts, _) => note(&parts.concat(), ids, &mut refused, &mut references),
            Fuzz::Binary(..) => refused += 1,
            Fuzz::Control { .. } | Fuzz::Violation(_) => continue,
        }
        messages += 1;
    }
    pool.messages += messages;
    let socket = pool.socket(slot).await?;
    let mut sent = Ok(());
    for message in case.iter().flat_map(wire) {
        sent = socket.stream.feed(message).await;
        if sent.is_err() {
            break;
        }
    }
    if sent.is_ok() && !violation {
        let probe_frame = json!({ "type": "typing", "session_id": "not-a-session", "ref": probe });
        sent = socket
            .stream
            .send(Message::Text(probe_frame.to_string().into()))
            .await;
    } else if sent.is_ok() {
        sent = socket.stream.flush().await;
    }
    let mut outcome = Outcome::default();
    loop {
        match read(socket).await? {
            Event::Frame(frame) => {
                outcome
                    .seen
                    .push(frame["type"].as_str().unwrap_or_default().to_owned());
                if frame["type"] != "error" {
                    continue;
                }
                if frame["ref"] == json!(probe) {
                    break;
                }
                if let Some(reference) = frame["ref"].as_str()
                    && !references.iter().any(|r| r.starts_with(reference))
                {
                    return Err(format!("an error frame echoes a ref never sent: {frame}"));
                }
                outcome.errors += 1;
            }
            Event::Closed(code) => {
                outcome.closed = Some(code);
                break;
            }
            Event::Dropped(why) => {
                // Only a close that the server may send while the client still
                // sends (after 10 bad frames, with more of the case behind them)
                // can be overtaken by the reset.
                pool.sockets[slot] = None;
                if messages >= 10 && !violation {
                    pool.resets += 1;
                    return Ok(());
                }
                return Err(format!(
                    "the connection ended without a close frame ({why}) after {:?} \
                     (send result {sent:?}): {case:?}",
                    outcome.seen
                ));
            }
        }
    }
    pool.received += outcome.seen.len();
    match outcome.closed {
        None => {
            if violation {
                return Err(format!(
                    "a protocol violation left the socket open: {case:?}"
                ));
            }
            if outcome.errors < refused {
                return Err(format!(
                    "{} error frames for {refused} frames that must be refused: {case:?}",
                    outcome.errors
                ));
            }
            pool.must_refuse += refused;
            pool.errors += outcome.errors;
        }
        Some(code) => {
            *pool.closes.entry(code).or_default() += 1;
            pool.sockets[slot] = None;
            let allowed: &[u16] = if violation { &[1002, 1008] } else { &[1008] };
            if !allowed.contains(&code) || (code == 1008 && messages < 10) {
                return Err(format!(
                    "closed with {code} after {:?}: {case:?}",
                    outcome.seen
                ));
            }
        }
    }
    Ok(())
}

fn note(text: &str, ids: &Ids, refused: &mut usize, references: &mut Vec<String>) {
    if verdict(text, ids) == Verdict::Refused {
        *refused += 1;
    }
    if let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) {
        for key in ["ref", "client_message_id"] {
            if let Some(reference) = frame.get(key).and_then(Value::as_str) {
                references.push(reference.to_owned());
            }
        }
    }
}

/// The well-behaved user: one message, its acknowledgement and the bot's reply,
/// with nothing else in between but the bot's typing.
async fn bystander_talks(socket: &mut WsClient, ids: &Ids, n: usize) -> Result<(), String> {
    let id = format!("bystander-{n}");
    socket
        .stream
        .send(Message::Text(
            json!({ "type": "message", "session_id": ids.session, "content": format!("hello {n}"),
                    "client_message_id": id })
            .to_string()
            .into(),
        ))
        .await
        .map_err(|e| format!("the bystander cannot send: {e}"))?;
    let mut acknowledged = None;
    loop {
        let frame = next_frame(socket)
            .await
            .map_err(|e| format!("the bystander's socket: {e}"))?;
        match frame["type"].as_str() {
            Some("message") if frame["client_message_id"] == json!(id) => {
                acknowledged = frame["id"].as_str().map(str::to_owned);
            }
            Some("message")
                if acknowledged.is_some()
                    && frame["reply_to"].as_str() == acknowledged.as_deref() =>
            {
                if frame["content"] != json!(format!("hello {n}")) {
                    return Err(format!("the bystander got another reply: {frame}"));
                }
                return Ok(());
            }
            Some("typing" | "delta") => {}
            _ => return Err(format!("the bystander got {frame}")),
        }
    }
}

async fn setup(app: &TestApp, user_name: &str) -> (String, Ids) {
    let token = user(user_name);
    let started = app.started(&token, "echo").await;
    let ids = Ids {
        session: started["session_id"].as_str().expect("session").to_owned(),
        conversation: started["conversation_id"].as_str().expect("id").to_owned(),
        unknown: "0193a000-0000-7000-8000-000000000000".to_owned(),
    };
    (token, ids)
}

#[test]
fn arbitrary_frames_get_errors_or_documented_closes_and_spare_other_sockets() {
    count_server_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .expect("runtime");
    // Closed sockets are replaced at once, before the server may have released
    // their slots: the per-user socket limit is not what this test is about.
    let app = runtime.block_on(spawn_app_with(Backend::Sqlite, |config| {
        config.limits.sockets_per_user = 0;
    }));
    let (fuzzer_token, ids) = runtime.block_on(setup(&app, "fuzzer"));
    let (bystander_token, bystander_ids) = runtime.block_on(setup(&app, "bystander"));
    let bystander = runtime.block_on(async {
        let mut socket = app.ws(&bystander_token).await;
        assert_eq!(socket.next_json().await["status"], "connected");
        socket
            .send_json(json!({ "type": "subscribe", "session_id": bystander_ids.session }))
            .await;
        assert_eq!(socket.next_of("subscribed").await["last_seq"], 0);
        socket
    });
    let pool = RefCell::new(Pool {
        address: app.address,
        token: fuzzer_token,
        sockets: (0..POOL).map(|_| None).collect(),
        probes: 0,
        reconnects: 0,
        resets: 0,
        closes: Default::default(),
        cases: 0,
        on_the_wire: Duration::ZERO,
        messages: 0,
        must_refuse: 0,
        errors: 0,
        received: 0,
    });
    let started = std::time::Instant::now();
    let bystander = RefCell::new(bystander);

    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    });
    let strategy = (0..POOL, case(&ids));
    let result = runner.run(&strategy, |(slot, case)| {
        let mut pool = pool.borrow_mut();
        pool.cases += 1;
        let n = pool.cases;
        let pool = &mut *pool;
        let wire_started = std::time::Instant::now();
        let result = runtime.block_on(async {
            tokio::time::timeout(READ_PATIENCE * 4, run_case(pool, slot, &case, &ids))
                .await
                .unwrap_or_else(|_| Err("the case took too long".to_owned()))
        });
        if result.is_err() {
            // Whatever the socket still holds belongs to the failed case.
            pool.sockets[slot] = None;
        }
        result.map_err(TestCaseError::fail)?;
        if n.is_multiple_of(BYSTANDER_EVERY) {
            let mut bystander = bystander.borrow_mut();
            let bystander = &mut *bystander;
            runtime
                .block_on(bystander_talks(bystander, &bystander_ids, n))
                .map_err(TestCaseError::fail)?;
        }
        pool.on_the_wire += wire_started.elapsed();
        if SERVER_PANICS.load(Ordering::SeqCst) > 0 {
            return Err(TestCaseError::fail("the server panicked"));
        }
        Ok(())
    });
    let pool = pool.into_inner();
    let mut bystander = bystander.into_inner();
    eprintln!(
        "ws fuzz: {} cases run in {:.1?} ({:.1?} on the wire), {} data messages sent; \
         where the probe answered, {} had to be refused and got {} error frames; \
         {} frames received; \
         {} sockets opened, closes by code {:?}, {} closes lost to a reset",
        pool.cases,
        started.elapsed(),
        pool.on_the_wire,
        pool.messages,
        pool.must_refuse,
        pool.errors,
        pool.received,
        pool.reconnects,
        pool.closes,
        pool.resets
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
    runtime.block_on(async {
        bystander_talks(&mut bystander, &bystander_ids, 0)
            .await
            .expect("the bystander still talks");
        assert_eq!(app.get_public("/healthz").await.status(), 200);
        app.stop().await;
    });
    assert_eq!(
        SERVER_PANICS.load(Ordering::SeqCst),
        0,
        "the server panicked"
    );
}

/// Each way of breaking RFC 6455, and a message over the 1 MiB the protocol library
/// reads at most, closes the socket with 1002 and spares the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_break_the_websocket_protocol_close_with_1002() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = user("breaker");
    let oversized = Fuzz::Text(format!(
        r#"{{"type":"ping","pad":"{}"}}"#,
        "x".repeat(1024 * 1024)
    ));
    let cases = [
        Fuzz::Violation(Violation::InvalidUtf8),
        Fuzz::Violation(Violation::StrayContinuation),
        Fuzz::Violation(Violation::ReservedOpcode),
        Fuzz::Violation(Violation::FragmentedPing),
        oversized,
    ];
    for fuzz in cases {
        let mut socket = app.ws(&token).await;
        assert_eq!(
            next_frame(&mut socket).await.unwrap()["status"],
            "connected"
        );
        let sent = async {
            for message in wire(&fuzz) {
                socket.stream.feed(message).await?;
            }
            socket.stream.flush().await
        }
        .await;
        if let Err(error) = sent {
            // The oversized frame is refused from its header: the server may close,
            // and the kernel reset the connection, before the client has written the
            // rest of the megabyte.
            assert!(
                matches!(fuzz, Fuzz::Text(_)),
                "{fuzz:?}: sending failed: {error}"
            );
            continue;
        }
        match read(&mut socket).await {
            Ok(Event::Closed(code)) => assert_eq!(code, 1002, "{fuzz:?}"),
            // The library refuses the oversized frame from its header and the
            // socket closes with most of the megabyte unread: the kernel may then
            // answer with a reset that overtakes the close frame.
            Ok(Event::Dropped(_)) if matches!(fuzz, Fuzz::Text(_)) => {}
            other => panic!("{fuzz:?}: {other:?}"),
        }
    }
    let mut socket = app.ws(&token).await;
    assert_eq!(
        next_frame(&mut socket).await.unwrap()["status"],
        "connected"
    );
    assert!(socket.frames_until_pong().await.is_empty());
    app.stop().await;
}

/// The tenth bad frame in a row gets its error frame too, before the 1008 close:
/// a client learns what was wrong with each frame it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_frame_gets_its_error_before_the_1008_close() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = user("garbage");
    for round in 0..20 {
        let mut socket = app.ws(&token).await;
        assert_eq!(
            next_frame(&mut socket).await.unwrap()["status"],
            "connected"
        );
        for n in 0..10 {
            let frame = json!({ "type": "nope", "ref": format!("bad-{n}") });
            socket
                .stream
                .feed(Message::Text(frame.to_string().into()))
                .await
                .expect("sent");
        }
        socket.stream.flush().await.expect("flushed");
        let mut refs = Vec::new();
        loop {
            match read(&mut socket).await {
                Ok(Event::Frame(frame)) => refs.push(frame["ref"].as_str().unwrap().to_owned()),
                Ok(Event::Closed(code)) => {
                    assert_eq!(code, 1008);
                    break;
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
        let expected: Vec<String> = (0..10).map(|n| format!("bad-{n}")).collect();
        assert_eq!(refs, expected, "round {round}");
    }
    app.stop().await;
}
