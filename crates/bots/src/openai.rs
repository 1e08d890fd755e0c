//! The `openai` engine: any OpenAI-compatible `/chat/completions` endpoint (OpenAI,
//! Ollama, vLLM, llama.cpp's server), asked with `stream: true` so that tokens reach
//! subscribers as deltas while the model writes.
//!
//! A reply that breaks off (the connection drops, a chunk is not JSON, the server
//! reports an error mid-stream, or it stops sending for `stall_timeout_ms`) is stored
//! with what arrived so far and the metadata `{"cut": true, "cut_reason": "…"}`; when
//! nothing arrived the reply fails and the pipeline stores a `system` message.
//!
//! With `handoff_tool = true` the model is offered a `handoff` function; a streamed
//! call of it asks for a person to take the conversation over, after whatever text the
//! model wrote first. The call's arguments are not read: its name says everything.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use confab_domain::conversation::Metadata;
use confab_domain::error::BotError;
use confab_domain::message::Sender;
use confab_domain::ports::{BotEngine, BotReply, BotRequest, ReplyChunk};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Longest reply kept, in bytes, so a model that never stops cannot exhaust memory.
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Longest part of an error body quoted in a failure.
const MAX_ERROR_BODY: usize = 500;
/// The name of the function offered to the model for asking for a person.
const HANDOFF_TOOL: &str = "handoff";
/// What the model is told the function does, so that it calls it when it should.
const HANDOFF_TOOL_DESCRIPTION: &str = "Hand the conversation over to a human agent. \
Call it when the user asks for a person, or when you cannot help them further.";

/// The bot settings the engine reads.
#[derive(Debug, Clone, Deserialize)]
struct OpenAiSettings {
    base_url: String,
    model: String,
    api_key_env: Option<String>,
    system_prompt: Option<String>,
    history_window: Option<usize>,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    stall_timeout_ms: Option<u64>,
    #[serde(default)]
    handoff_tool: bool,
}

/// Talks to an OpenAI-compatible chat completions endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    url: String,
    api_key: Option<String>,
    settings: OpenAiSettings,
    stall_timeout: Duration,
}

impl OpenAiEngine {
    /// Reads the bot's settings: `base_url` (up to and including `/v1`), `model`,
    /// and optionally `api_key_env` (the environment variable holding the API key),
    /// `system_prompt`, `history_window` (messages sent, default all the pipeline
    /// gives), `temperature`, `max_tokens`, `stall_timeout_ms` (default 15000) and
    /// `handoff_tool` (offer the model the `handoff` function; default false).
    ///
    /// # Errors
    /// `BotError::Misconfigured` when a setting is missing or of the wrong type, the
    /// URL is not http(s), or the named environment variable is not set.
    pub fn from_settings(
        client: reqwest::Client,
        settings: &Map<String, Value>,
    ) -> Result<Self, BotError> {
        let settings: OpenAiSettings = serde_json::from_value(Value::Object(settings.clone()))
            .map_err(|e| BotError::Misconfigured(format!("openai: {e}")))?;
        let base = settings.base_url.trim_end_matches('/');
        let valid_url = reqwest::Url::parse(base)
            .ok()
            .is_some_and(|url| matches!(url.scheme(), "http" | "https"));
        if !valid_url {
            return Err(BotError::Misconfigured(format!(
                "openai: `base_url` {base:?} is not an http(s) URL"
            )));
        }
        let api_key = match &settings.api_key_env {
            Some(name) => Some(std::env::var(name).map_err(|_| {
                BotError::Misconfigured(format!(
                    "openai: the environment variable {name} (api_key_env) is not set"
                ))
            })?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                url: format!("{base}/chat/completions"),
                api_key,
                stall_timeout: Duration::from_millis(settings.stall_timeout_ms.unwrap_or(15_000)),
                settings,
            }),
        })
    }
}

impl BotEngine for OpenAiEngine {
    fn reply(&self, request: BotRequest) -> BoxStream<'static, Result<ReplyChunk, BotError>> {
        let call = Call {
            inner: Arc::clone(&self.inner),
            request: Some(request),
            body: None,
            buffer: Vec::new(),
            pending: VecDeque::new(),
            text: String::new(),
            handoff: false,
            finished: false,
        };
        stream::unfold(call, |mut call| async move {
            call.next().await.map(|item| (item, call))
        })
        .boxed()
    }
}

impl Inner {
    fn body(&self, request: &BotRequest) -> Value {
        let mut messages = Vec::new();
        if let Some(prompt) = &self.settings.system_prompt {
            messages.push(json!({"role": "system", "content": prompt}));
        }
        let window = self
            .settings
            .history_window
            .unwrap_or(request.history.len());
        let skip = request.history.len().saturating_sub(window.max(1));
        for message in request.history.iter().skip(skip) {
            let role = match message.sender {
                Sender::User => "user",
                // A person answering in the bot's place spoke for it: the model
                // takes that dialogue over as its own.
                Sender::Bot | Sender::Agent => "assistant",
                // confab's own notices are not part of the dialogue with the model.
                Sender::System => continue,
            };
            messages.push(json!({"role": role, "content": message.content.as_str()}));
        }
        let mut body = json!({
            "model": self.settings.model,
            "messages": messages,
            "stream": true,
        });
        if let Some(temperature) = self.settings.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(max_tokens) = self.settings.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        if self.settings.handoff_tool {
            body["tools"] = json!([{
                "type": "function",
                "function": {
                    "name": HANDOFF_TOOL,
                    "description": HANDOFF_TOOL_DESCRIPTION,
                    "parameters": {"type": "object", "properties": {}},
                },
            }]);
        }
        body
    }

    async fn send(
        &self,
        request: &BotRequest,
    ) -> Result<BoxStream<'static, reqwest::Result<Bytes>>, BotError> {
        let mut call = self.client.post(&self.url).json(&self.body(request));
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key);
        }
        let response = tokio::time::timeout(self.stall_timeout, call.send())
            .await
            .map_err(|_| failed("the model did not start answering in time"))?
            .map_err(|e| BotError::Failed(Box::new(e)))?;
        let status = response.status();
        if !status.is_success() {
            let body = tokio::time::timeout(self.stall_timeout, response.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let body: String = body.chars().take(MAX_ERROR_BODY).collect();
            return Err(failed(&format!("the model answered HTTP {status}: {body}")));
        }
        Ok(response.bytes_stream().boxed())
    }
}

fn failed(reason: &str) -> BotError {
    BotError::Failed(reason.to_owned().into())
}

/// One streamed completion, read as server-sent events.
struct Call {
    inner: Arc<Inner>,
    request: Option<BotRequest>,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    buffer: Vec<u8>,
    pending: VecDeque<String>,
    text: String,
    /// Whether the model called the `handoff` function so far.
    handoff: bool,
    finished: bool,
}

/// What one `data:` line of the event stream says.
enum Line {
    /// More of the answer: text, a call of the `handoff` function, or both.
    Delta {
        text: String,
        handoff: bool,
    },
    Nothing,
    Done,
    Broken(String),
}

impl Call {
    async fn next(&mut self) -> Option<Result<ReplyChunk, BotError>> {
        if self.finished {
            return None;
        }
        if let Some(request) = self.request.take() {
            match self.inner.send(&request).await {
                Ok(body) => self.body = Some(body),
                Err(error) => {
                    self.finished = true;
                    return Some(Err(error));
                }
            }
        }
        loop {
            if let Some(delta) = self.pending.pop_front() {
                return Some(Ok(ReplyChunk::Delta(delta)));
            }
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                match parse_line(&line) {
                    Line::Nothing => {}
                    Line::Delta { text, handoff } => {
                        // A model calling a function it was not offered is not obeyed.
                        self.handoff |= handoff && self.inner.settings.handoff_tool;
                        if self.text.len() + text.len() > MAX_REPLY_BYTES {
                            return Some(self.finish(Some("the reply exceeded 64 KiB")));
                        }
                        if !text.is_empty() {
                            self.text.push_str(&text);
                            self.pending.push_back(text);
                        }
                    }
                    Line::Done => return Some(self.finish(None)),
                    Line::Broken(reason) => return Some(self.finish(Some(&reason))),
                }
                continue;
            }
            let body = self.body.as_mut()?;
            match tokio::time::timeout(self.inner.stall_timeout, body.next()).await {
                Ok(Some(Ok(bytes))) => self.buffer.extend_from_slice(&bytes),
                Ok(Some(Err(error))) => {
                    tracing::warn!(%error, "the model's stream broke off");
                    return Some(self.finish(Some("the connection to the model broke")));
                }
                Ok(None) => {
                    return Some(self.finish(Some("the model's stream ended early")));
                }
                Err(_) => return Some(self.finish(Some("the model stopped sending"))),
            }
        }
    }

    /// Ends the reply: complete, or cut short for `cut` with what arrived so far. A
    /// call of the `handoff` function counts even when the stream broke after it.
    fn finish(&mut self, cut: Option<&str>) -> Result<ReplyChunk, BotError> {
        self.finished = true;
        self.body = None;
        let text = std::mem::take(&mut self.text);
        if text.trim().is_empty() {
            if self.handoff {
                // Only the handoff: the pipeline stores its notice and no empty message.
                return Ok(ReplyChunk::Done(BotReply {
                    handoff: true,
                    ..BotReply::default()
                }));
            }
            return Err(failed(cut.unwrap_or("the model sent an empty reply")));
        }
        let metadata = match cut {
            None => Metadata::default(),
            Some(reason) => {
                tracing::warn!(reason, "storing a reply cut short");
                Metadata::parse(json!({"cut": true, "cut_reason": reason})).unwrap_or_default()
            }
        };
        Ok(ReplyChunk::Done(BotReply {
            content: text,
            metadata,
            handoff: self.handoff,
            ..BotReply::default()
        }))
    }
}

fn parse_line(line: &[u8]) -> Line {
    let Ok(line) = std::str::from_utf8(line) else {
        return Line::Broken("the model sent text that is not UTF-8".to_owned());
    };
    let line = line.trim_end_matches(['\r', '\n']);
    let Some(data) = line.strip_prefix("data:") else {
        // Blank separators, `event:`, `id:` and `:` comment lines carry no text.
        return Line::Nothing;
    };
    let data = data.trim();
    if data == "[DONE]" {
        return Line::Done;
    }
    let Ok(chunk) = serde_json::from_str::<Value>(data) else {
        return Line::Broken("the model sent a malformed chunk".to_owned());
    };
    if let Some(error) = chunk.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("an error");
        return Line::Broken(format!("the model reported: {message}"));
    }
    let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
        // Usage summaries and keep-alives come without choices.
        return Line::Nothing;
    };
    let Some(delta) = choice.get("delta") else {
        return Line::Nothing;
    };
    let text = delta
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // A call's name comes in its first `tool_calls` delta; its arguments follow in
    // later ones, which name no function.
    let handoff = delta
        .get("tool_calls")
        .and_then(Value::as_array)
        .is_some_and(|calls| {
            calls.iter().any(|call| {
                call.get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    == Some(HANDOFF_TOOL)
            })
        });
    if text.is_empty() && !handoff {
        return Line::Nothing;
    }
    Line::Delta { text, handoff }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lines_with_content_are_deltas() {
        let line = br#"data: {"choices":[{"delta":{"content":"Hel"}}]}"#;
        assert!(matches!(parse_line(line), Line::Delta { text, handoff: false } if text == "Hel"));
        assert!(matches!(parse_line(b"data: [DONE]\r\n"), Line::Done));
        assert!(matches!(parse_line(b": keep-alive\n"), Line::Nothing));
        assert!(matches!(parse_line(b"data: {not json\n"), Line::Broken(_)));
        let role_only = br#"data: {"choices":[{"delta":{"role":"assistant"}}]}"#;
        assert!(matches!(parse_line(role_only), Line::Nothing));
    }

    #[test]
    fn a_streamed_call_of_the_handoff_function_is_seen_by_its_name() {
        let named = br#"data: {"choices":[{"delta":{"content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"handoff","arguments":""}}]}}]}"#;
        assert!(
            matches!(parse_line(named), Line::Delta { text, handoff: true } if text.is_empty())
        );
        let arguments = br#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#;
        assert!(matches!(parse_line(arguments), Line::Nothing));
        let other = br#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"weather","arguments":""}}]}}]}"#;
        assert!(matches!(parse_line(other), Line::Nothing));
        let both = br#"data: {"choices":[{"delta":{"content":"One moment.","tool_calls":[{"index":0,"function":{"name":"handoff"}}]}}]}"#;
        assert!(
            matches!(parse_line(both), Line::Delta { text, handoff: true } if text == "One moment.")
        );
    }

    #[test]
    fn settings_without_a_model_or_with_a_bad_url_are_refused() {
        let client = reqwest::Client::new();
        let settings = |value: Value| value.as_object().cloned().expect("an object");
        assert!(
            OpenAiEngine::from_settings(
                client.clone(),
                &settings(json!({"base_url": "http://127.0.0.1:1/v1"}))
            )
            .is_err()
        );
        assert!(
            OpenAiEngine::from_settings(
                client.clone(),
                &settings(json!({"base_url": "ftp://x/v1", "model": "m"}))
            )
            .is_err()
        );
        assert!(
            OpenAiEngine::from_settings(
                client,
                &settings(json!({"base_url": "http://127.0.0.1:1/v1", "model": "m",
                    "api_key_env": "CONFAB_TEST_SURELY_UNSET_KEY"}))
            )
            .is_err()
        );
    }
}
