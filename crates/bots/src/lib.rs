//! Bot engines: adapters behind the domain's [`BotEngine`] port, and
//! [`BuiltinEngines`], the [`EngineRegistry`] that picks one for each bot.
//!
//! # Layout
//! - [`echo`]: the `echo` engine, which answers with the user's own text, at once or
//!   streamed word by word.
//! - [`script`]: the `script` engine, a rule-based bot read from a TOML rules file.
//! - [`builtin`]: the bots every server has (`echo`, `echo-stream`, `demo`).
//! - [`declaration`]: [`BotDeclaration`](declaration::BotDeclaration), a bot declared in
//!   the configuration file.
//! - [`demo`]: the rules of the built-in `demo` script bot.
//! - [`openai`]: the `openai` engine, any OpenAI-compatible chat completions
//!   endpoint, streamed.
//! - [`webhook`]: the `webhook` engine, an external bot service called over HTTP with
//!   a signed request.

pub mod builtin;
pub mod declaration;
pub mod demo;
pub mod echo;
pub mod openai;
pub mod script;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use confab_domain::bot::{Bot, BotId, EngineKind};
use confab_domain::error::BotError;
use confab_domain::ports::{BotEngine, EngineRegistry};
use confab_domain::timestamp::Timestamp;

use crate::echo::EchoEngine;
use crate::openai::OpenAiEngine;
use crate::script::ScriptEngine;
use crate::webhook::WebhookEngine;

/// The engines compiled into confab. Built engines are kept per bot until the bot
/// changes (its `updated_at` moves), because building one may read and compile a
/// rules file.
#[derive(Default)]
pub struct BuiltinEngines {
    /// One HTTP client for every bot, so connections are pooled.
    client: reqwest::Client,
    /// A std mutex: held for a map lookup or insert, never across an await.
    built: Mutex<HashMap<BotId, Built>>,
}

/// An engine built for a bot, and the bot's `updated_at` it was built from.
type Built = (Timestamp, Arc<dyn BotEngine>);

impl std::fmt::Debug for BuiltinEngines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinEngines").finish_non_exhaustive()
    }
}

impl BuiltinEngines {
    /// A registry with no engine built yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn build(&self, bot: &Bot) -> Result<Arc<dyn BotEngine>, BotError> {
        let settings = &bot.engine.settings;
        let engine: Arc<dyn BotEngine> = match bot.engine.kind {
            EngineKind::Echo => Arc::new(EchoEngine::from_settings(settings)?),
            EngineKind::Script => Arc::new(ScriptEngine::from_settings(settings)?),
            EngineKind::OpenAi => {
                Arc::new(OpenAiEngine::from_settings(self.client.clone(), settings)?)
            }
            EngineKind::Webhook => {
                Arc::new(WebhookEngine::from_settings(self.client.clone(), settings)?)
            }
        };
        Ok(engine)
    }
}

impl EngineRegistry for BuiltinEngines {
    fn engine_for(&self, bot: &Bot) -> Result<Arc<dyn BotEngine>, BotError> {
        let lock = || {
            self.built
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((updated_at, engine)) = lock().get(&bot.id)
            && *updated_at == bot.updated_at
        {
            return Ok(Arc::clone(engine));
        }
        let engine = self.build(bot).map_err(|error| match error {
            BotError::Misconfigured(reason) => {
                BotError::Misconfigured(format!("bot {}: {reason}", bot.id))
            }
            other => other,
        })?;
        lock().insert(bot.id.clone(), (bot.updated_at, Arc::clone(&engine)));
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    use confab_domain::testing::test_bot;

    use super::*;

    #[test]
    fn an_engine_is_built_once_per_bot_version() {
        let engines = BuiltinEngines::new();
        let mut bot = test_bot("demo");
        bot.engine.kind = EngineKind::Script;
        bot.engine
            .settings
            .insert("builtin".to_owned(), serde_json::Value::from("demo"));
        let first = engines.engine_for(&bot).expect("an engine");
        let again = engines.engine_for(&bot).expect("an engine");
        assert!(Arc::ptr_eq(&first, &again), "rebuilt for an unchanged bot");

        bot.updated_at =
            Timestamp::from_unix_millis(bot.updated_at.unix_millis() + 1).expect("a valid time");
        let changed = engines.engine_for(&bot).expect("an engine");
        assert!(!Arc::ptr_eq(&first, &changed), "kept for a changed bot");
    }

    #[test]
    fn a_misconfigured_bot_is_named_in_the_error() {
        let mut bot = test_bot("broken");
        bot.engine.kind = EngineKind::Script;
        let error = BuiltinEngines::new()
            .engine_for(&bot)
            .err()
            .expect("no rules");
        assert!(error.to_string().contains("bot broken"), "{error}");
    }
}
