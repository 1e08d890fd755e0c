//! The `script` engine loading its rules from a file, and handing conversations
//! over to people.

use confab_domain::bot::EngineKind;
use confab_domain::handoff::HandoffState;
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

const HANDOFF_RULES: &str = r#"
fallback = "Pardon?"

[[rules]]
keywords = ["human", "person"]
reply = "Let me find a person."
handoff = true

[[rules]]
keywords = ["agent"]
handoff = true
"#;

#[tokio::test]
async fn a_handoff_rule_sends_its_reply_then_queues_the_conversation() {
    let mut chat = Chat::with(EngineKind::Script, json!({ "rules": HANDOFF_RULES }));
    assert_eq!(chat.ask("hi").await.content.as_str(), "Pardon?");
    let reply = chat.ask("A human, please").await;
    assert_eq!(reply.sender, Sender::Bot);
    assert_eq!(reply.content.as_str(), "Let me find a person.");
    chat.settle().await;
    assert_eq!(chat.conversation().await.handoff, HandoffState::Waiting);

    chat.send("anyone?").await;
    chat.settle().await;
    assert_eq!(
        chat.transcript(),
        [
            (Sender::User, "hi".to_owned()),
            (Sender::Bot, "Pardon?".to_owned()),
            (Sender::User, "A human, please".to_owned()),
            (Sender::Bot, "Let me find a person.".to_owned()),
            (Sender::System, "Waiting for a person to join".to_owned()),
            (Sender::User, "anyone?".to_owned()),
        ],
        "the bot does not answer while the conversation waits for a person"
    );
}

#[tokio::test]
async fn a_handoff_rule_without_a_reply_only_queues_the_conversation() {
    let mut chat = Chat::with(EngineKind::Script, json!({ "rules": HANDOFF_RULES }));
    chat.send("agent").await;
    chat.settle().await;
    assert_eq!(
        chat.transcript(),
        [
            (Sender::User, "agent".to_owned()),
            (Sender::System, "Waiting for a person to join".to_owned()),
        ]
    );
    assert_eq!(chat.conversation().await.handoff, HandoffState::Waiting);
}
