//! Bot engines: adapters behind the domain's [`BotEngine`] port, and
//! [`BuiltinEngines`], the [`EngineRegistry`] that picks one for each bot.
//!
//! # Layout
//! - [`echo`]: the `echo` engine, which answers with the user's own text, at once or
//!   streamed word by word.

pub mod echo;

use std::sync::Arc;

use confab_domain::bot::{Bot, EngineKind};
use confab_domain::error::BotError;
use confab_domain::ports::{BotEngine, EngineRegistry};

use crate::echo::EchoEngine;

/// The engines compiled into confab.
#[derive(Debug, Default, Clone, Copy)]
pub struct BuiltinEngines;

impl EngineRegistry for BuiltinEngines {
    fn engine_for(&self, bot: &Bot) -> Result<Arc<dyn BotEngine>, BotError> {
        match bot.engine.kind {
            EngineKind::Echo => Ok(Arc::new(EchoEngine::from_settings(&bot.engine.settings)?)),
            kind @ (EngineKind::Script | EngineKind::OpenAi | EngineKind::Webhook) => {
                Err(BotError::Misconfigured(format!(
                    "bot {}: the {} engine is not available in this build",
                    bot.id,
                    kind.as_str()
                )))
            }
        }
    }
}
