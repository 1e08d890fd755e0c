//! One WebSocket connection: a reader that handles client frames in order, a writer
//! that drains a bounded queue into the socket and pings, and one forwarder task per
//! followed conversation.
//!
//! Back-pressure: everything the socket sends goes through one bounded queue. A
//! forwarder that cannot place a frame within `send_timeout` means the peer does not
//! read; the connection is then closed with 1013 and the peer resumes with
//! `subscribe` + `after_seq`. Forwarders wait on their own queue only, and the event
//! bus never waits for them, so one slow reader never stalls the others.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use confab_domain::conversation::{ConversationId, Metadata};
use confab_domain::error::{DomainError, ValidationError};
use confab_domain::message::{Attachment, Seq};
use confab_domain::service::{MessageDraft, StartConversation};
use confab_domain::session::SessionId;
use confab_domain::user::Caller;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::limits::Limiter;
use crate::ops::Shutdown;
use crate::ws::WsSettings;
use crate::ws::protocol::{CLIENT_FRAME_TYPES, ClientFrame, ServerFrame, Target};

/// Close code: the server is going away or the peer was silent too long.
const GOING_AWAY: u16 = 1001;
/// Close code: the peer broke the protocol repeatedly.
const POLICY_VIOLATION: u16 = 1008;
/// Close code: the peer reads too slowly; try again later.
const TRY_AGAIN_LATER: u16 = 1013;

/// The close reason for a peer that reads too slowly.
const TOO_SLOW: &str = "reading too slowly; resume with subscribe and after_seq";

/// Why the server closes a connection.
type CloseReason = Option<(u16, &'static str)>;

/// Serves one upgraded connection until either side closes it.
pub(crate) async fn serve(
    socket: WebSocket,
    state: AppState,
    caller: Caller,
    limiter: Option<Limiter>,
    shutdown: Option<Shutdown>,
) {
    let settings = state.config.ws;
    let (sink, stream) = socket.split();
    let (outbox, queue) = mpsc::channel(settings.queue_capacity.max(1));
    let (close, close_signal) = watch::channel(None);
    // A stopping server closes the socket the way a peer's misbehaviour does: through
    // the close signal, which ends the reader and makes the writer send the frame.
    let on_shutdown = shutdown.map(|shutdown| {
        let close = close.clone();
        tokio::spawn(async move {
            shutdown.stopping().await;
            close.send_if_modified(|current| {
                let first = current.is_none();
                if first {
                    *current = Some((GOING_AWAY, "server shutting down"));
                }
                first
            });
        })
    });
    let writer = tokio::spawn(write_loop(
        sink,
        queue,
        close_signal.clone(),
        settings.ping_interval,
    ));
    let mut connection = Connection {
        state,
        caller,
        settings,
        outbox,
        close,
        followed: HashMap::new(),
        sessions: HashMap::new(),
        bad_frames: 0,
        limiter,
    };
    connection
        .push(ServerFrame::Status {
            status: "connected",
            user_id: Some(connection.caller.user_id.to_string()),
            conversation_id: None,
            session_id: None,
        })
        .await;
    connection.read_loop(stream, close_signal).await;
    connection.shut(GOING_AWAY, "closing");
    if let Some(task) = on_shutdown {
        task.abort();
    }
    for (_, task) in connection.followed.drain() {
        task.abort();
    }
    drop(connection);
    // The writer sends the close frame; a peer that does not read cannot take it, so
    // the socket is dropped after a short wait instead.
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(2), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

struct Connection {
    state: AppState,
    caller: Caller,
    settings: WsSettings,
    outbox: mpsc::Sender<String>,
    close: watch::Sender<CloseReason>,
    followed: HashMap<ConversationId, JoinHandle<()>>,
    /// The conversation of each session this socket named and may see. A session
    /// belongs to one conversation for good, so it is looked up once per socket;
    /// every service call still checks the conversation itself.
    sessions: HashMap<SessionId, ConversationId>,
    bad_frames: u32,
    limiter: Option<Limiter>,
}

impl Connection {
    async fn read_loop(
        &mut self,
        mut stream: SplitStream<WebSocket>,
        mut close_signal: watch::Receiver<CloseReason>,
    ) {
        loop {
            let next = tokio::select! {
                biased;
                _ = close_signal.changed() => return,
                next = tokio::time::timeout(self.settings.idle_timeout, stream.next()) => next,
            };
            let message = match next {
                Err(_silent_too_long) => {
                    self.shut(GOING_AWAY, "idle timeout");
                    return;
                }
                Ok(None | Some(Err(_))) => return,
                Ok(Some(Ok(message))) => message,
            };
            match message {
                // Boxed: handling a frame runs the service's futures, whose state
                // would otherwise be part of every socket's task while it idles.
                Message::Text(text) => Box::pin(self.handle_text(text.as_str())).await,
                Message::Binary(_) => {
                    self.refuse(
                        ErrorCode::InvalidRequest,
                        "binary frames are not supported; send JSON text frames".to_owned(),
                        None,
                    )
                    .await;
                }
                // Pings are answered by the library; any frame shows the peer is alive.
                Message::Ping(_) | Message::Pong(_) => {}
                Message::Close(_) => return,
            }
            if self.bad_frames >= self.settings.max_bad_frames {
                self.shut(POLICY_VIOLATION, "too many invalid frames");
                return;
            }
        }
    }

    async fn handle_text(&mut self, text: &str) {
        if text.len() > self.settings.max_frame_bytes {
            let message = format!(
                "frame is {} bytes; at most {} are allowed",
                text.len(),
                self.settings.max_frame_bytes
            );
            self.refuse(ErrorCode::PayloadTooLarge, message, None).await;
            return;
        }
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(error) => {
                self.refuse(
                    ErrorCode::InvalidRequest,
                    format!("invalid JSON: {error}"),
                    None,
                )
                .await;
                return;
            }
        };
        let reference = value
            .get("ref")
            .or_else(|| value.get("client_message_id"))
            .and_then(|r| r.as_str())
            .map(|r| r.chars().take(128).collect::<String>());
        let kind = value
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_owned();
        if !CLIENT_FRAME_TYPES.contains(&kind.as_str()) {
            let message = format!(
                "unknown frame type {kind:?}; expected one of {}",
                CLIENT_FRAME_TYPES.join(", ")
            );
            self.refuse(ErrorCode::InvalidRequest, message, reference)
                .await;
            return;
        }
        let frame: ClientFrame = match serde_json::from_value(value) {
            Ok(frame) => frame,
            Err(error) => {
                self.refuse(
                    ErrorCode::InvalidRequest,
                    format!("invalid {kind} frame: {error}"),
                    reference,
                )
                .await;
                return;
            }
        };
        self.bad_frames = 0;
        if let (ClientFrame::Message { .. } | ClientFrame::Start { .. }, Some(limiter)) =
            (&frame, &self.limiter)
            && let Err(retry_after) = limiter.try_send(&self.caller.user_id)
        {
            let error = ApiError::rate_limited(retry_after);
            self.push(ServerFrame::Error {
                code: error.code().as_str(),
                message: format!(
                    "too many messages; retry in {} ms",
                    retry_after.as_millis().max(1)
                ),
                reference,
            })
            .await;
            return;
        }
        if let Err(error) = self.handle(frame).await {
            let error = ApiError::from(error);
            self.push(ServerFrame::Error {
                code: error.code().as_str(),
                message: error.detail().to_owned(),
                reference,
            })
            .await;
        }
    }

    async fn handle(&mut self, frame: ClientFrame) -> Result<(), DomainError> {
        match frame {
            ClientFrame::Ping => self.push(ServerFrame::Pong).await,
            ClientFrame::Message {
                target,
                content,
                attachments,
                client_message_id,
            } => {
                // A conversation named by id is not looked up here: following it and
                // sending to it both check that the caller may see it.
                let id = match &target {
                    Target {
                        session_id: None,
                        conversation_id: Some(conversation),
                    } => conversation.parse()?,
                    _ => self.resolve(&target).await?,
                };
                let attachments = attachments
                    .into_iter()
                    .map(Attachment::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                let draft =
                    MessageDraft::parse(&content, attachments, client_message_id.as_deref())?;
                // Follow first, so the stored message comes back as the acknowledgement.
                if !self.followed.contains_key(&id) {
                    self.follow(id, None, false).await?;
                }
                let sent = self.state.service.send(&self.caller, id, draft).await?;
                if !sent.created {
                    // An idempotent retry publishes nothing; acknowledge it directly.
                    let conversation = self.state.service.conversation(&self.caller, id).await?;
                    self.push(ServerFrame::Message {
                        session_id: conversation.session_id.to_string(),
                        message: sent.message.into(),
                    })
                    .await;
                }
            }
            ClientFrame::Start {
                bot_id,
                initial_message,
                client_message_id,
                title,
            } => {
                let initial_message = match initial_message {
                    Some(content) => Some(MessageDraft::parse(
                        &content,
                        Vec::new(),
                        client_message_id.as_deref(),
                    )?),
                    None => None,
                };
                // The conversation starts empty and the socket follows it before the
                // first message is sent, so the socket sees every delta of the bot's
                // first reply, not only those published after it caught up.
                let command = StartConversation {
                    bot_id: confab_domain::bot::BotId::parse(&bot_id)?,
                    initial_message: None,
                    title: title
                        .as_deref()
                        .map(confab_domain::conversation::Title::parse)
                        .transpose()?,
                    metadata: Metadata::default(),
                };
                let started = self.state.service.start(&self.caller, command).await?;
                let conversation = started.conversation;
                self.push(ServerFrame::Started {
                    conversation_id: conversation.id.to_string(),
                    session_id: conversation.session_id.to_string(),
                    status: conversation.status.as_str(),
                })
                .await;
                self.follow(conversation.id, Some(Seq::ZERO), false).await?;
                if let Some(draft) = initial_message {
                    self.state
                        .service
                        .send(&self.caller, conversation.id, draft)
                        .await?;
                }
            }
            ClientFrame::Subscribe { target, after_seq } => {
                let id = self.resolve(&target).await?;
                self.follow(id, after_seq.map(Seq::new), true).await?;
            }
            ClientFrame::Unsubscribe { target } => {
                let id = self.resolve(&target).await?;
                if let Some(task) = self.followed.remove(&id) {
                    task.abort();
                }
            }
            ClientFrame::Typing { target } => {
                let id = self.resolve(&target).await?;
                self.state.service.typing(&self.caller, id).await?;
            }
        }
        Ok(())
    }

    /// The conversation a frame names, if the caller may see it.
    async fn resolve(&mut self, target: &Target) -> Result<ConversationId, DomainError> {
        match (&target.session_id, &target.conversation_id) {
            (Some(session), _) => {
                let session: SessionId = session.parse()?;
                if let Some(id) = self.sessions.get(&session) {
                    return Ok(*id);
                }
                let id = self
                    .state
                    .service
                    .conversation_by_session(&self.caller, session)
                    .await?
                    .id;
                self.sessions.insert(session, id);
                Ok(id)
            }
            (None, Some(conversation)) => {
                let id: ConversationId = conversation.parse()?;
                Ok(self.state.service.conversation(&self.caller, id).await?.id)
            }
            (None, None) => Err(ValidationError::MissingTarget.into()),
        }
    }

    /// Starts forwarding a conversation's events to this socket, replacing an earlier
    /// subscription to it.
    async fn follow(
        &mut self,
        id: ConversationId,
        after: Option<Seq>,
        announce: bool,
    ) -> Result<(), DomainError> {
        if let Some(task) = self.followed.remove(&id) {
            task.abort();
        }
        let (conversation, mut events) = self.state.service.follow(&self.caller, id, after).await?;
        if announce {
            self.push(ServerFrame::Subscribed {
                conversation_id: conversation.id.to_string(),
                session_id: conversation.session_id.to_string(),
                last_seq: conversation.last_seq.get(),
            })
            .await;
        }
        let outbox = self.outbox.clone();
        let close = self.close.clone();
        let send_timeout = self.settings.send_timeout;
        let task = tokio::spawn(async move {
            while let Some(item) = events.next().await {
                let frame = match item {
                    Ok(event) => ServerFrame::from_event(event),
                    Err(error) => {
                        let error = ApiError::from(error);
                        ServerFrame::Error {
                            code: error.code().as_str(),
                            message: error.detail().to_owned(),
                            reference: None,
                        }
                    }
                };
                match outbox.send_timeout(frame.to_text(), send_timeout).await {
                    Ok(()) => {}
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        close.send_replace(Some((TRY_AGAIN_LATER, TOO_SLOW)));
                        return;
                    }
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
                }
            }
        });
        self.followed.insert(id, task);
        Ok(())
    }

    async fn refuse(&mut self, code: ErrorCode, message: String, reference: Option<String>) {
        self.bad_frames += 1;
        self.push(ServerFrame::Error {
            code: code.as_str(),
            message,
            reference,
        })
        .await;
    }

    /// Queues a reply to the client. It waits while the queue is full: the reader then
    /// reads no more frames from a peer that does not read its answers.
    async fn push(&self, frame: ServerFrame) {
        // A peer that does not read its answers is as slow as one that does not read
        // its events. A closed queue means the writer stopped; the read loop ends on
        // its own then.
        let sent = self
            .outbox
            .send_timeout(frame.to_text(), self.settings.send_timeout)
            .await;
        if let Err(mpsc::error::SendTimeoutError::Timeout(_)) = sent {
            self.shut(TRY_AGAIN_LATER, TOO_SLOW);
        }
    }

    fn shut(&self, code: u16, reason: &'static str) {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some((code, reason));
                true
            } else {
                false
            }
        });
    }
}

/// Frames written per flush at most, so that a busy socket still lets pings and the
/// close signal through.
const FRAMES_PER_FLUSH: usize = 64;

/// Writes `first` and whatever else is queued already, then flushes once: a user
/// message and the bot's answer arrive as a burst of frames (the echo, typing, the
/// reply, typing), and one write for the burst costs a system call instead of four.
async fn write_queued(
    sink: &mut SplitSink<WebSocket, Message>,
    queue: &mut mpsc::Receiver<String>,
    first: String,
) -> Result<(), axum::Error> {
    sink.feed(Message::Text(first.into())).await?;
    for _ in 1..FRAMES_PER_FLUSH {
        match queue.try_recv() {
            Ok(text) => sink.feed(Message::Text(text.into())).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<String>,
    mut close_signal: watch::Receiver<CloseReason>,
    ping_interval: Duration,
) {
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    loop {
        tokio::select! {
            biased;
            _ = close_signal.changed() => break,
            frame = queue.recv() => match frame {
                Some(text) => {
                    if write_queued(&mut sink, &mut queue, text).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
    let (code, reason) = (*close_signal.borrow()).unwrap_or((GOING_AWAY, "closing"));
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    let _ = sink.close().await;
}
