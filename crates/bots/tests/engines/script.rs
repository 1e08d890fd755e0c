//! The `script` engine loading its rules from a file.

use confab_domain::bot::EngineKind;
use confab_domain::message::Sender;
use serde_json::json;

use crate::support::Chat;

#[tokio::test]
async fn a_script_bot_from_a_rules_file_fills_slots_across_messages() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("rules.toml");
    std::fs::write(
        &path,
        r#"
greeting = "Welcome!"
fallback = "Pardon?"

[[rules]]
keywords = ["book"]
reply = "Booked for {{day}} at {{time}}."

[[rules.slots]]
name = "day"
prompt = "Which day?"

[[rules.slots]]
name = "time"
prompt = "What time?"
"#,
    )
    .expect("writing the rules");
    let mut chat = Chat::with(
        EngineKind::Script,
        json!({ "rules_file": path.to_str().expect("a UTF-8 path") }),
    );
    let mut answers = Vec::new();
    for line in ["hello", "I want to book a table", "Friday", "8pm", "what?"] {
        let reply = chat.ask(line).await;
        assert_eq!(reply.sender, Sender::Bot);
        answers.push(reply.content.as_str().to_owned());
    }
    assert_eq!(
        answers,
        [
            "Welcome!",
            "Which day?",
            "What time?",
            "Booked for Friday at 8pm.",
            "Pardon?"
        ]
    );
}

#[tokio::test]
async fn a_malformed_rules_file_yields_a_system_message_and_names_the_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "fallback = \"x\"\n[[rules]]\nreply = \"unterminated\n",
    )
    .expect("writing");
    let settings = json!({ "rules_file": path.to_str().expect("a UTF-8 path") });
    let error =
        confab_bots::script::ScriptEngine::from_settings(settings.as_object().expect("an object"))
            .expect_err("malformed rules");
    let text = error.to_string();
    assert!(text.contains("broken.toml: line 3"), "{text}");

    let mut chat = Chat::with(EngineKind::Script, settings);
    let reply = chat.ask("hello").await;
    assert_eq!(reply.sender, Sender::System);
    assert_eq!(reply.content.as_str(), "The bot is not available.");
}
