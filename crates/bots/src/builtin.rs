//! The bots every server has, so that it is useful with no configuration: `echo`,
//! `echo-stream` (the same, streamed word by word) and `demo` (the built-in script).
//! The server registers them at start when missing and leaves them alone otherwise,
//! so that an operator's changes stick.

use confab_domain::bot::{Bot, BotId, BotName, EngineKind, EngineSpec};
use confab_domain::error::ValidationError;
use confab_domain::timestamp::Timestamp;

/// Pause between two words of `echo-stream`, in milliseconds: slow enough to see the
/// reply grow, the way an LLM streams, and fast enough not to bore.
const STREAM_WORD_DELAY_MS: u64 = 40;

/// The built-in bots, created and updated at `now`.
///
/// # Errors
/// Never for the bots compiled in; an id or name they carry that the model refuses
/// would be a bug, reported rather than unwrapped.
pub fn bots(now: Timestamp) -> Result<Vec<Bot>, ValidationError> {
    let mut streaming_echo = EngineSpec::of(EngineKind::Echo);
    streaming_echo
        .settings
        .insert("stream".to_owned(), serde_json::Value::Bool(true));
    streaming_echo.settings.insert(
        "word_delay_ms".to_owned(),
        serde_json::Value::from(STREAM_WORD_DELAY_MS),
    );
    let mut demo_script = EngineSpec::of(EngineKind::Script);
    demo_script
        .settings
        .insert("builtin".to_owned(), serde_json::Value::from("demo"));
    [
        (
            "echo",
            "Echo",
            "Repeats what you say. Useful to try confab out.",
            EngineSpec::of(EngineKind::Echo),
        ),
        (
            "echo-stream",
            "Echo (streaming)",
            "Repeats what you say word by word, the way an LLM streams its replies.",
            streaming_echo,
        ),
        (
            "demo",
            "Demo",
            "A script bot: remembers your name, takes a pizza order, answers help.",
            demo_script,
        ),
    ]
    .into_iter()
    .map(|(id, name, description, engine)| {
        Ok(Bot {
            id: BotId::parse(id)?,
            name: BotName::parse(name)?,
            description: description.to_owned(),
            engine,
            created_at: now,
            updated_at: now,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_bots_are_echo_echo_stream_and_demo() {
        let now = Timestamp::from_unix_millis(0).expect("the epoch");
        let bots = bots(now).expect("the built-in bots are valid");
        let ids: Vec<&str> = bots.iter().map(|bot| bot.id.as_str()).collect();
        assert_eq!(ids, ["echo", "echo-stream", "demo"]);
        assert!(bots.iter().all(|bot| bot.created_at == now));
        assert_eq!(bots[1].engine.settings["stream"], true);
        assert_eq!(bots[2].engine.kind, EngineKind::Script);
    }
}
