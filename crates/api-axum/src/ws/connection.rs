//! One connection's reader side: each client frame is read, checked against the send
//! rate, and run against the service (send, start, subscribe, unsubscribe, typing,
//! ping), in order; what it answers goes to the writer's queue.

use std::collections::HashMap;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use confab_domain::conversation::ConversationId;
use confab_domain::error::{DomainError, ValidationError};
use confab_domain::message::Seq;
use confab_domain::session::SessionId;
use confab_domain::user::Caller;
use futures::StreamExt;
use futures::stream::SplitStream;
use tokio::sync::{mpsc, watch};

use crate::command::{MessageInput, StartInput, message_draft, start_command};
use crate::config::WsSettings;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::ws::close::{
    CloseReason, GOING_AWAY, POLICY_VIOLATION, PROTOCOL_ERROR, TOO_SLOW, TRY_AGAIN_LATER,
    close_once,
};
use crate::ws::forward::{Forwarder, forward};
use crate::ws::frames::{self, Parsed};
use crate::ws::protocol::{ClientFrame, ServerFrame, Target};

/// One socket's state, owned by its reader.
pub(super) struct Connection {
    state: AppState,
    caller: Caller,
    settings: WsSettings,
    outbox: mpsc::Sender<Utf8Bytes>,
    close: watch::Sender<CloseReason>,
    followed: HashMap<ConversationId, Forwarder>,
    /// The conversation of each session this socket named and may see. A session
    /// belongs to one conversation for good, so it is looked up once per socket;
    /// every service call still checks the conversation itself.
    sessions: HashMap<SessionId, ConversationId>,
    bad_frames: u32,
}

impl Connection {
    /// A connection of `caller` that queues its frames into `outbox`.
    pub(super) fn new(
        state: AppState,
        caller: Caller,
        outbox: mpsc::Sender<Utf8Bytes>,
        close: watch::Sender<CloseReason>,
    ) -> Self {
        Self {
            settings: state.config.ws,
            state,
            caller,
            outbox,
            close,
            followed: HashMap::new(),
            sessions: HashMap::new(),
            bad_frames: 0,
        }
    }

    /// Reads frames until the peer leaves, falls silent for `idle_timeout`, sends too
    /// many bad frames in a row, or the close signal fires.
    pub(super) async fn read_loop(
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
                Ok(None) => return,
                Ok(Some(Err(_unreadable))) => {
                    // The library refused a frame, or the connection broke. The
                    // peer is told why when it can still hear it, rather than
                    // with the 1001 of a server going away, which asks it to come
                    // back and send the same again.
                    self.shut(PROTOCOL_ERROR, "invalid WebSocket frame");
                    return;
                }
                Ok(Some(Ok(message))) => message,
            };
            match message {
                // Boxed: handling a frame runs the service's futures, whose state
                // would otherwise be part of every socket's task while it idles.
                Message::Text(text) => Box::pin(self.handle_text(text.as_str())).await,
                // Boxed for the same reason.
                Message::Binary(_) => {
                    Box::pin(self.refuse(
                        ErrorCode::InvalidRequest,
                        "binary frames are not supported; send JSON text frames".to_owned(),
                        None,
                    ))
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

    /// Handles one text frame: refuses it when it cannot be read or the caller sends
    /// too fast, otherwise runs it and answers a failure with an error frame.
    async fn handle_text(&mut self, text: &str) {
        let Parsed { frame, reference } = match frames::parse(text, &self.settings) {
            Ok(parsed) => parsed,
            Err(refusal) => {
                self.refuse(refusal.code, refusal.message, refusal.reference)
                    .await;
                return;
            }
        };
        self.bad_frames = 0;
        if let ClientFrame::Message { .. } | ClientFrame::Start { .. } = &frame
            && let Err(retry_after) = self.state.limiter.try_send(&self.caller.user_id)
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
                let draft = message_draft(MessageInput {
                    content: &content,
                    attachments,
                    client_message_id: client_message_id.as_deref(),
                    metadata: None,
                })?;
                // Follow first, so the stored message comes back as the acknowledgement;
                // a forwarder whose follow failed for good is replaced.
                if self.followed.get(&id).is_none_or(Forwarder::ended) {
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
                let mut command = start_command(StartInput {
                    bot_id: &bot_id,
                    initial_message: initial_message.as_deref(),
                    client_message_id: client_message_id.as_deref(),
                    title: title.as_deref(),
                    metadata: None,
                })?;
                // The conversation starts empty and the socket follows it before the
                // first message is sent, so the socket sees every delta of the bot's
                // first reply, not only those published after it caught up.
                let initial_message = command.initial_message.take();
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
                if let Some(forwarder) = self.followed.remove(&id) {
                    forwarder.abort();
                }
            }
            ClientFrame::Typing { target } => {
                let id = self.resolve(&target).await?;
                self.state.service.typing(&self.caller, id).await?;
            }
            ClientFrame::Handoff { target } => {
                let id = self.resolve(&target).await?;
                self.state.service.request_handoff(&self.caller, id).await?;
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
        if let Some(forwarder) = self.followed.remove(&id) {
            forwarder.abort();
        }
        let (conversation, events) = self.state.service.follow(&self.caller, id, after).await?;
        if announce {
            self.push(ServerFrame::Subscribed {
                conversation_id: conversation.id.to_string(),
                session_id: conversation.session_id.to_string(),
                last_seq: conversation.last_seq.get(),
            })
            .await;
        }
        let forwarder = forward(
            events,
            self.outbox.clone(),
            self.close.clone(),
            self.settings.send_timeout,
        );
        self.followed.insert(id, forwarder);
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
    pub(super) async fn push(&self, frame: ServerFrame) {
        // A peer that does not read its answers is as slow as one that does not read
        // its events. A closed queue means the writer stopped; the read loop ends on
        // its own then.
        let sent = self
            .outbox
            .send_timeout(frame.to_text().into(), self.settings.send_timeout)
            .await;
        if let Err(mpsc::error::SendTimeoutError::Timeout(_)) = sent {
            self.shut(TRY_AGAIN_LATER, TOO_SLOW);
        }
    }

    /// Asks for the connection to close, unless a reason was given already.
    pub(super) fn shut(&self, code: u16, reason: &'static str) {
        close_once(&self.close, code, reason);
    }
}

impl Drop for Connection {
    /// Stops the forwarders: a task's handle going away does not stop the task, and a
    /// forwarder left running would hold its subscription to the bus.
    fn drop(&mut self) {
        for forwarder in self.followed.values() {
            forwarder.abort();
        }
    }
}
