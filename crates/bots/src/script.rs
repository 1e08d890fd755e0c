//! The `script` engine: a rule-based bot read from a TOML rules file.
//!
//! A script has a `greeting`, a `fallback` and ordered `[[rules]]`. Each rule matches
//! on `keywords` (whole words, any case) or a `regex`; the first rule that matches
//! answers with its `reply`, a template where `{{name}}` is replaced by a variable.
//! Variables are the named groups of the rule's regex, the slots the bot asked for,
//! and `message` (the user's text). Captured groups and filled slots are kept in the
//! session context, so later replies can use them.
//!
//! A rule with `[[rules.slots]]` fills them first: while a slot has no value, the bot
//! answers with the slot's `prompt`, and the user's next message becomes its value.
//! The rule being filled is remembered in the context under [`AWAITING_KEY`].
//!
//! The greeting answers a message that matches no rule when the bot has not greeted
//! yet in this session (tracked under [`GREETED_KEY`]); the fallback answers the rest.
//!
//! A rule with `handoff = true` asks for a person to take the conversation over when
//! it answers (after its slots are filled), with its `reply` or, when it has none,
//! with no message of its own: the handoff's notice says what happens.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use confab_domain::error::BotError;
use confab_domain::message::Suggestion;
use confab_domain::ports::{BotEngine, BotReply, BotRequest, ReplyChunk};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The context key naming the rule whose slots are being filled.
pub const AWAITING_KEY: &str = "_awaiting";
/// The context key recording that the greeting was sent.
pub const GREETED_KEY: &str = "_greeted";

/// A rules file that could not be loaded: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// The file (or built-in script) the rules came from.
    pub origin: String,
    /// 1-based line of the fault, when known.
    pub line: Option<usize>,
    /// 1-based column of the fault, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(
                f,
                "{}: line {line}, column {column}: {}",
                self.origin, self.message
            ),
            _ => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ScriptError {}

impl From<ScriptError> for BotError {
    fn from(error: ScriptError) -> Self {
        BotError::Misconfigured(error.to_string())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    greeting: Option<String>,
    fallback: String,
    #[serde(default)]
    rules: Vec<toml::Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    regex: Option<toml::Spanned<String>>,
    reply: Option<String>,
    #[serde(default)]
    suggestions: Vec<String>,
    #[serde(default)]
    slots: Vec<RawSlot>,
    #[serde(default)]
    handoff: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlot {
    name: String,
    prompt: String,
    #[serde(default)]
    suggestions: Vec<String>,
}

/// A parsed rules file.
#[derive(Debug, Clone)]
pub struct Script {
    greeting: Option<String>,
    fallback: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    keywords: Vec<String>,
    regex: Option<Regex>,
    /// Empty for a rule that hands off without a word.
    reply: String,
    suggestions: Vec<String>,
    slots: Vec<Slot>,
    handoff: bool,
}

#[derive(Debug, Clone)]
struct Slot {
    name: String,
    prompt: String,
    suggestions: Vec<String>,
}

impl Script {
    /// Parses rules from TOML text; `origin` names the file in errors.
    ///
    /// # Errors
    /// A [`ScriptError`] with the line and column of the fault when the text is not
    /// TOML, does not have the rules' shape, or holds an invalid regex.
    pub fn parse(source: &str, origin: &str) -> Result<Self, ScriptError> {
        let at = |span: Option<std::ops::Range<usize>>, message: String| {
            let (line, column) = match span {
                Some(span) => {
                    let (line, column) = line_and_column(source, span.start);
                    (Some(line), Some(column))
                }
                None => (None, None),
            };
            ScriptError {
                origin: origin.to_owned(),
                line,
                column,
                message,
            }
        };
        let raw: RawScript =
            toml::from_str(source).map_err(|e| at(e.span(), e.message().to_owned()))?;
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (index, spanned) in raw.rules.into_iter().enumerate() {
            let span = spanned.span();
            let rule = spanned.into_inner();
            let name = rule.name.unwrap_or_else(|| format!("rule-{}", index + 1));
            let regex = match rule.regex {
                Some(pattern) => Some(Regex::new(pattern.get_ref()).map_err(|e| {
                    at(
                        Some(pattern.span()),
                        format!("rule {name}: invalid regex: {e}"),
                    )
                })?),
                None => None,
            };
            let keywords: Vec<String> = rule.keywords.iter().map(|k| normalise(k)).collect();
            if regex.is_none() && keywords.iter().all(String::is_empty) {
                return Err(at(
                    Some(span),
                    format!("rule {name} needs `keywords` or a `regex`"),
                ));
            }
            let reply = match rule.reply {
                Some(reply) => reply,
                // Handing off is an answer in itself; any other rule must say something.
                None if rule.handoff => String::new(),
                None => {
                    return Err(at(
                        Some(span),
                        format!("rule {name} needs a `reply` (or `handoff = true`)"),
                    ));
                }
            };
            rules.push(Rule {
                name,
                keywords,
                regex,
                reply,
                suggestions: rule.suggestions,
                handoff: rule.handoff,
                slots: rule
                    .slots
                    .into_iter()
                    .map(|s| Slot {
                        name: s.name,
                        prompt: s.prompt,
                        suggestions: s.suggestions,
                    })
                    .collect(),
            });
        }
        Ok(Self {
            greeting: raw.greeting,
            fallback: raw.fallback,
            rules,
        })
    }

    /// Reads and parses a rules file.
    ///
    /// # Errors
    /// A [`ScriptError`] when the file cannot be read or its rules are malformed.
    pub fn load(path: &Path) -> Result<Self, ScriptError> {
        let origin = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| ScriptError {
            origin: origin.clone(),
            line: None,
            column: None,
            message: format!("cannot read the rules file: {e}"),
        })?;
        Self::parse(&source, &origin)
    }

    /// Answers `text` given the session `context`: the reply and the new context.
    pub fn answer(&self, text: &str, context: &Map<String, Value>) -> BotReply {
        let mut context = context.clone();
        context.insert("message".to_owned(), Value::String(text.to_owned()));
        let awaiting = context
            .get(AWAITING_KEY)
            .and_then(Value::as_str)
            .and_then(|name| self.rules.iter().find(|r| r.name == name));
        let rule = match awaiting {
            Some(rule) => {
                if let Some(slot) = rule.slots.iter().find(|s| !context.contains_key(&s.name)) {
                    context.insert(slot.name.clone(), Value::String(text.trim().to_owned()));
                }
                Some(rule)
            }
            None => self.matching(text, &mut context),
        };
        let (content, suggestions, handoff) = match rule {
            Some(rule) => match rule.slots.iter().find(|s| !context.contains_key(&s.name)) {
                Some(slot) => {
                    context.insert(AWAITING_KEY.to_owned(), Value::String(rule.name.clone()));
                    (render(&slot.prompt, &context), &slot.suggestions, false)
                }
                None => {
                    context.remove(AWAITING_KEY);
                    (
                        render(&rule.reply, &context),
                        &rule.suggestions,
                        rule.handoff,
                    )
                }
            },
            None => match &self.greeting {
                Some(greeting) if context.get(GREETED_KEY) != Some(&Value::Bool(true)) => {
                    (render(greeting, &context), &Vec::new(), false)
                }
                _ => (render(&self.fallback, &context), &Vec::new(), false),
            },
        };
        context.insert(GREETED_KEY.to_owned(), Value::Bool(true));
        context.remove("message");
        BotReply {
            content,
            suggestions: suggestions
                .iter()
                .map(|text| Suggestion { text: text.clone() })
                .collect(),
            context: Some(context),
            handoff,
            ..BotReply::default()
        }
    }

    /// The first rule matching `text`; its regex's named groups go into `context`.
    fn matching(&self, text: &str, context: &mut Map<String, Value>) -> Option<&Rule> {
        let words = format!(" {} ", normalise(text));
        self.rules.iter().find(|rule| {
            if let Some(regex) = &rule.regex
                && let Some(captures) = regex.captures(text)
            {
                for name in regex.capture_names().flatten() {
                    if let Some(value) = captures.name(name) {
                        context.insert(name.to_owned(), Value::String(value.as_str().to_owned()));
                    }
                }
                return true;
            }
            rule.keywords
                .iter()
                .any(|k| !k.is_empty() && words.contains(&format!(" {k} ")))
        })
    }
}

/// Lower-case words separated by single spaces, punctuation dropped.
fn normalise(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces each `{{name}}` with the variable's text; unknown variables become empty.
fn render(template: &str, variables: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) => {
                match variables.get(after[..close].trim()) {
                    Some(Value::String(text)) => out.push_str(text),
                    Some(Value::Null) | None => {}
                    Some(other) => out.push_str(&other.to_string()),
                }
                rest = &after[close + 2..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn line_and_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A bot driven by a [`Script`].
#[derive(Debug, Clone)]
pub struct ScriptEngine {
    script: Arc<Script>,
}

impl ScriptEngine {
    /// An engine answering with `script`.
    pub fn new(script: Script) -> Self {
        Self {
            script: Arc::new(script),
        }
    }

    /// Reads the bot's settings: `rules_file` (a path to a TOML rules file), `rules`
    /// (the rules inline, as TOML text) or `builtin = "demo"`, exactly one of them.
    ///
    /// # Errors
    /// `BotError::Misconfigured` naming the file, line and column when the rules are
    /// malformed, or when the settings do not say where the rules are.
    pub fn from_settings(settings: &Map<String, Value>) -> Result<Self, BotError> {
        let text = |key: &str| -> Result<Option<&str>, BotError> {
            match settings.get(key) {
                None => Ok(None),
                Some(Value::String(text)) => Ok(Some(text)),
                Some(_) => Err(BotError::Misconfigured(format!(
                    "script: `{key}` must be a string"
                ))),
            }
        };
        let script = match (text("rules_file")?, text("rules")?, text("builtin")?) {
            (Some(path), None, None) => Script::load(Path::new(path))?,
            (None, Some(rules), None) => Script::parse(rules, "inline rules")?,
            (None, None, Some("demo")) => Script::parse(crate::demo::DEMO_RULES, "demo.toml")?,
            (None, None, Some(other)) => {
                return Err(BotError::Misconfigured(format!(
                    "script: no built-in script is called {other:?}"
                )));
            }
            _ => {
                return Err(BotError::Misconfigured(
                    "script: set exactly one of `rules_file`, `rules` or `builtin`".to_owned(),
                ));
            }
        };
        Ok(Self::new(script))
    }
}

impl BotEngine for ScriptEngine {
    fn reply(&self, request: BotRequest) -> BoxStream<'static, Result<ReplyChunk, BotError>> {
        let reply = self
            .script
            .answer(request.message.content.as_str(), &request.session.context);
        stream::iter([Ok(ReplyChunk::Done(reply))]).boxed()
    }
    /// It answers from the message (and the session) alone.
    fn reads_history(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
greeting = "Hello! Ask me for a pizza."
fallback = "Sorry, I did not get that, {{name}}."

[[rules]]
name = "name"
regex = "(?i)my name is (?P<name>\\w+)"
reply = "Nice to meet you, {{name}}!"

[[rules]]
name = "pizza"
keywords = ["pizza", "hungry"]
reply = "A {{size}} pizza with {{topping}} for {{name}}, coming up."
suggestions = ["thanks"]

[[rules.slots]]
name = "size"
prompt = "What size?"
suggestions = ["small", "large"]

[[rules.slots]]
name = "topping"
prompt = "Which topping?"
"#;

    fn script() -> Script {
        Script::parse(RULES, "test.toml").expect("the test rules parse")
    }

    /// Plays a dialogue, carrying the context from reply to reply.
    fn dialogue(script: &Script, lines: &[&str]) -> Vec<BotReply> {
        let mut context = Map::new();
        lines
            .iter()
            .map(|line| {
                let reply = script.answer(line, &context);
                context = reply
                    .context
                    .clone()
                    .expect("a script always keeps a context");
                reply
            })
            .collect()
    }

    #[test]
    fn the_first_unmatched_message_gets_the_greeting_and_later_ones_the_fallback() {
        let replies = dialogue(&script(), &["hi", "what?"]);
        assert_eq!(replies[0].content, "Hello! Ask me for a pizza.");
        assert_eq!(replies[1].content, "Sorry, I did not get that, .");
    }

    #[test]
    fn regex_captures_are_remembered_and_used_in_later_replies() {
        let replies = dialogue(&script(), &["My name is Ana", "huh"]);
        assert_eq!(replies[0].content, "Nice to meet you, Ana!");
        assert_eq!(replies[1].content, "Sorry, I did not get that, Ana.");
        assert_eq!(
            replies[1].context.as_ref().and_then(|c| c.get("name")),
            Some(&Value::String("Ana".to_owned()))
        );
    }

    #[test]
    fn a_rule_with_slots_asks_for_each_before_replying() {
        let replies = dialogue(
            &script(),
            &["my name is Bo", "I am HUNGRY!", "large", "mushrooms"],
        );
        assert_eq!(replies[1].content, "What size?");
        assert_eq!(
            replies[1].suggestions,
            [
                Suggestion {
                    text: "small".to_owned()
                },
                Suggestion {
                    text: "large".to_owned()
                }
            ]
        );
        assert_eq!(replies[2].content, "Which topping?");
        assert_eq!(
            replies[3].content,
            "A large pizza with mushrooms for Bo, coming up."
        );
        let context = replies[3].context.as_ref().expect("a context");
        assert!(!context.contains_key(AWAITING_KEY));
        assert!(!context.contains_key("message"));
    }

    #[test]
    fn keywords_match_whole_words_only() {
        let replies = dialogue(&script(), &["hi", "pizzas"]);
        assert_eq!(replies[1].content, "Sorry, I did not get that, .");
    }

    #[test]
    fn malformed_toml_is_reported_with_file_line_and_column() {
        let error = Script::parse("fallback = \"ok\"\n\n[[rules]]\nreply = \n", "bad.toml")
            .expect_err("malformed TOML");
        assert_eq!(error.origin, "bad.toml");
        assert_eq!(error.line, Some(4), "{error}");
        assert!(error.to_string().starts_with("bad.toml: line 4"), "{error}");
    }

    #[test]
    fn an_invalid_regex_is_reported_at_its_line() {
        let source = "fallback = \"ok\"\n[[rules]]\nreply = \"x\"\nregex = \"(unclosed\"\n";
        let error = Script::parse(source, "bad.toml").expect_err("an invalid regex");
        assert_eq!((error.line, error.column), (Some(4), Some(9)), "{error}");
        assert!(error.message.contains("invalid regex"), "{error}");
    }

    #[test]
    fn a_rule_without_a_pattern_is_refused() {
        let source = "fallback = \"ok\"\n\n[[rules]]\nreply = \"x\"\n";
        let error = Script::parse(source, "bad.toml").expect_err("no pattern");
        assert!(
            error.message.contains("needs `keywords` or a `regex`"),
            "{error}"
        );
        assert!(error.line.is_some(), "{error}");
    }

    #[test]
    fn a_handoff_rule_asks_for_a_person_with_its_reply_or_alone() {
        let script = Script::parse(
            r#"
fallback = "Hm?"

[[rules]]
keywords = ["human"]
reply = "Let me find a person."
handoff = true

[[rules]]
keywords = ["agent"]
handoff = true

[[rules]]
keywords = ["refund"]
reply = "A person will look at order {{order}}."
handoff = true

[[rules.slots]]
name = "order"
prompt = "Which order?"
"#,
            "handoff.toml",
        )
        .expect("the handoff rules parse");
        let replies = dialogue(
            &script,
            &["a human please", "agent!", "refund", "42", "hello"],
        );
        let answers: Vec<(&str, bool)> = replies
            .iter()
            .map(|r| (r.content.as_str(), r.handoff))
            .collect();
        assert_eq!(
            answers,
            [
                ("Let me find a person.", true),
                ("", true),
                ("Which order?", false),
                ("A person will look at order 42.", true),
                ("Hm?", false),
            ]
        );
    }

    #[test]
    fn a_rule_without_a_reply_must_hand_off() {
        let source = "fallback = \"ok\"\n\n[[rules]]\nkeywords = [\"x\"]\n";
        let error = Script::parse(source, "bad.toml").expect_err("no reply");
        assert!(error.message.contains("needs a `reply`"), "{error}");
        assert!(error.line.is_some(), "{error}");
    }

    #[test]
    fn unknown_fields_are_refused_so_typos_show() {
        let error =
            Script::parse("fallback = \"ok\"\ngreting = \"hi\"\n", "bad.toml").expect_err("a typo");
        assert_eq!(error.line, Some(2), "{error}");
    }

    #[test]
    fn the_builtin_demo_script_parses() {
        let mut settings = Map::new();
        settings.insert("builtin".to_owned(), Value::String("demo".to_owned()));
        assert!(ScriptEngine::from_settings(&settings).is_ok());
    }

    #[test]
    fn settings_must_name_exactly_one_source_of_rules() {
        assert!(ScriptEngine::from_settings(&Map::new()).is_err());
        let mut settings = Map::new();
        settings.insert("builtin".to_owned(), Value::String("demo".to_owned()));
        settings.insert("rules".to_owned(), Value::String(RULES.to_owned()));
        assert!(ScriptEngine::from_settings(&settings).is_err());
    }
}
