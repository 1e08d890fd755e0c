//! [`BotDeclaration`]: a bot as the deployer declares it in `confab.toml`
//! (`[[bots]]`), created or updated at every start.

use confab_domain::admin::BotDraft;
use confab_domain::bot::{BotId, BotName, EngineKind, EngineSpec};
use serde::{Deserialize, Serialize};

/// One `[[bots]]` entry of the configuration:
///
/// ```toml
/// [[bots]]
/// id = "support"
/// name = "Support"
/// description = "Answers questions about your order."
/// kind = "openai"
/// settings = { base_url = "http://127.0.0.1:11434/v1", model = "llama3.2" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotDeclaration {
    /// The bot's id, 1 to 64 of `a-z`, `0-9`, `_` and `-`.
    pub id: String,
    /// The name shown to users.
    pub name: String,
    /// What the bot does.
    #[serde(default)]
    pub description: String,
    /// The engine: `echo`, `script`, `openai` or `webhook`.
    pub kind: String,
    /// The engine's settings; see docs/bots.md for each kind.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

impl BotDeclaration {
    /// The declaration as the domain's draft.
    ///
    /// # Errors
    /// A sentence naming the bot and what is wrong with its id, name or kind.
    pub fn to_draft(&self) -> Result<BotDraft, String> {
        let id = BotId::parse(&self.id).map_err(|e| format!("bot {:?}: {e}", self.id))?;
        let name = BotName::parse(&self.name).map_err(|e| format!("bot {id}: {e}"))?;
        let kind = EngineKind::parse(&self.kind).ok_or_else(|| {
            format!(
                "bot {id}: unknown kind {:?}; expected echo, script, openai or webhook",
                self.kind
            )
        })?;
        Ok(BotDraft {
            id,
            name,
            description: self.description.clone(),
            engine: EngineSpec {
                kind,
                settings: self.settings.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_entry_becomes_a_draft() {
        #[derive(Deserialize)]
        struct File {
            bots: Vec<BotDeclaration>,
        }
        let file: File = toml::from_str(
            r#"
[[bots]]
id = "support"
name = "Support"
kind = "webhook"
settings = { url = "http://127.0.0.1:9000/hook", max_retries = 2 }
"#,
        )
        .expect("valid TOML");
        let draft = file.bots[0].to_draft().expect("a valid declaration");
        assert_eq!(draft.id.as_str(), "support");
        assert_eq!(draft.engine.kind, EngineKind::Webhook);
        assert_eq!(draft.engine.settings["max_retries"], 2);
        assert_eq!(draft.description, "");
    }

    #[test]
    fn a_bad_id_or_kind_is_named_in_the_error() {
        let mut declaration = BotDeclaration {
            id: "Support".to_owned(),
            name: "Support".to_owned(),
            description: String::new(),
            kind: "echo".to_owned(),
            settings: serde_json::Map::new(),
        };
        assert!(declaration.to_draft().is_err());
        declaration.id = "support".to_owned();
        declaration.kind = "gpt".to_owned();
        let error = declaration.to_draft().expect_err("an unknown kind");
        assert!(
            error.contains("support") && error.contains("gpt"),
            "{error}"
        );
    }
}
