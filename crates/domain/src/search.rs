//! Full-text search over messages: what a query is, how text splits into the words it
//! matches, and the highlighted snippet of a hit.
//!
//! Words are defined here, once, so that every store matches alike: a word is a run
//! of alphanumeric characters (Unicode letters and digits), compared in lowercase. A
//! query's words must all occur as whole words in a message (`pizza` finds "Pizza!"
//! but not "pizzas"). SQLite's FTS5 (tokenizer `unicode61`, diacritics kept) and
//! PostgreSQL's `simple` text search agree with that on ordinary text; PostgreSQL's
//! parser keeps some tokens whole (e-mail addresses, URLs, decimal numbers such as
//! `3.14`), so a part of one of those is found on SQLite and not on PostgreSQL.

use crate::bot::BotId;
use crate::conversation::{ConversationStatus, PageSize};
use crate::error::ValidationError;
use crate::message::{Message, MessageId};
use crate::timestamp::Timestamp;
use crate::user::UserId;

/// What a search looks for: 1 to [`SearchText::MAX_TERMS`] words, from a query of at
/// most [`SearchText::MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    terms: Vec<String>,
}

impl SearchText {
    /// Longest query, in characters.
    pub const MAX_CHARS: usize = 200;
    /// Most words in one query.
    pub const MAX_TERMS: usize = 8;
    /// Longest word, in characters.
    pub const MAX_TERM_CHARS: usize = 64;

    /// Reads a query as a user types it: its words, lowercased, each once, in order.
    ///
    /// # Errors
    /// [`ValidationError::InvalidSearch`] saying why: too long, no word at all, too
    /// many words, or a word too long.
    pub fn parse(query: &str) -> Result<Self, ValidationError> {
        let invalid = |reason: String| ValidationError::InvalidSearch(reason);
        if query.chars().count() > Self::MAX_CHARS {
            return Err(invalid(format!(
                "q is longer than {} characters",
                Self::MAX_CHARS
            )));
        }
        let mut terms: Vec<String> = Vec::new();
        for word in words(query) {
            if word.chars().count() > Self::MAX_TERM_CHARS {
                return Err(invalid(format!(
                    "a word of q is longer than {} characters",
                    Self::MAX_TERM_CHARS
                )));
            }
            let word = word.to_lowercase();
            if !terms.contains(&word) {
                terms.push(word);
            }
        }
        if terms.is_empty() {
            return Err(invalid(
                "q has no word to search for (letters or digits)".to_owned(),
            ));
        }
        if terms.len() > Self::MAX_TERMS {
            return Err(invalid(format!(
                "q has more than {} words",
                Self::MAX_TERMS
            )));
        }
        Ok(Self { terms })
    }

    /// The words, lowercased, each once. Every one is a run of alphanumeric
    /// characters, so a store may quote it into its own query language as it is.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Whether `content` holds every word of the query.
    pub fn matches(&self, content: &str) -> bool {
        let found: Vec<String> = words(content).map(str::to_lowercase).collect();
        self.terms.iter().all(|term| found.contains(term))
    }
}

/// The words of `text`: its runs of alphanumeric characters.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
}

/// Whose messages a search covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchScope {
    /// One user's conversations.
    User(UserId),
    /// Everyone's (administrators).
    Everyone,
}

/// The order of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchOrder {
    /// Newest message first (by timestamp, then id): stable while messages arrive.
    #[default]
    Newest,
    /// Best match first, by the store's own relevance (BM25 on SQLite, `ts_rank` on
    /// PostgreSQL), then newest; the two stores may rank differently.
    Rank,
}

/// Where a page of results begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchCursor {
    /// After this message, in newest-first order.
    Before {
        /// Its timestamp.
        timestamp: Timestamp,
        /// Its id, which breaks ties between equal timestamps.
        id: MessageId,
    },
    /// After this many results, in rank order.
    Offset(u64),
}

impl SearchCursor {
    /// The cursor as an opaque token for clients.
    pub fn encode(&self) -> String {
        match self {
            Self::Before { timestamp, id } => {
                format!("t{}_{}", timestamp.unix_millis(), id.as_uuid().simple())
            }
            Self::Offset(offset) => format!("o{offset}"),
        }
    }

    /// Reads a token made by [`SearchCursor::encode`].
    ///
    /// # Errors
    /// [`ValidationError::InvalidListCursor`] for anything this server did not issue.
    pub fn decode(token: &str) -> Result<Self, ValidationError> {
        let invalid = || ValidationError::InvalidListCursor;
        if let Some(offset) = token.strip_prefix('o') {
            return offset.parse().map(Self::Offset).map_err(|_| invalid());
        }
        let (millis, id) = token
            .strip_prefix('t')
            .and_then(|rest| rest.split_once('_'))
            .ok_or_else(invalid)?;
        Ok(Self::Before {
            timestamp: millis
                .parse()
                .ok()
                .and_then(|ms| Timestamp::from_unix_millis(ms).ok())
                .ok_or_else(invalid)?,
            id: id.parse().map_err(|_| invalid())?,
        })
    }
}

/// A search as a store runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words.
    pub text: SearchText,
    /// Whose conversations.
    pub scope: SearchScope,
    /// Only conversations with this bot.
    pub bot_id: Option<BotId>,
    /// Only conversations in this status.
    pub status: Option<ConversationStatus>,
    /// The order of results.
    pub order: SearchOrder,
    /// Where the page begins; its kind must fit `order` (the service checks).
    pub cursor: Option<SearchCursor>,
    /// How many results at most.
    pub limit: PageSize,
}

impl SearchQuery {
    /// Largest page of results.
    pub const MAX_LIMIT: u32 = 50;
    /// Default page of results.
    pub const DEFAULT_LIMIT: u32 = 20;
}

/// One found message, with the part of it to show.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The message (its `conversation_id` says where it is).
    pub message: Message,
    /// Its text around the first match, the query's words marked.
    pub snippet: Vec<SnippetPart>,
}

/// A piece of a snippet: text, and whether it is one of the query's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnippetPart {
    /// The text.
    pub text: String,
    /// Whether to show it highlighted.
    pub highlight: bool,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// The hits, in the query's order.
    pub hits: Vec<SearchHit>,
    /// Where the next page starts, when there is one.
    pub next_cursor: Option<SearchCursor>,
}

/// How many words a snippet shows around the first match, on each side.
const SNIPPET_CONTEXT_WORDS: usize = 8;

/// The snippet of `content` for `text`: about [`SNIPPET_CONTEXT_WORDS`] words on each
/// side of the first match, with `…` where text was left out, and every word of the
/// query marked. Computed here, not by a store, so that every store shows the same.
pub fn snippet(content: &str, text: &SearchText) -> Vec<SnippetPart> {
    // Byte ranges of the words, in order.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (at, c) in content.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                spans.push((from, at));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        spans.push((from, content.len()));
    }
    let is_term = |&(from, to): &(usize, usize)| {
        let word = content[from..to].to_lowercase();
        text.terms().contains(&word)
    };
    let first = spans.iter().position(is_term).unwrap_or(0);
    let (from_word, to_word) = (
        first.saturating_sub(SNIPPET_CONTEXT_WORDS),
        (first + SNIPPET_CONTEXT_WORDS + 1).min(spans.len()),
    );
    let from = if from_word == 0 {
        0
    } else {
        spans[from_word].0
    };
    let to = if to_word >= spans.len() {
        content.len()
    } else {
        spans[to_word - 1].1
    };
    let mut parts: Vec<SnippetPart> = Vec::new();
    let mut push = |text: &str, highlight: bool| {
        if text.is_empty() {
            return;
        }
        match parts.last_mut() {
            Some(last) if last.highlight == highlight => last.text.push_str(text),
            _ => parts.push(SnippetPart {
                text: text.to_owned(),
                highlight,
            }),
        }
    };
    if from > 0 {
        push("…", false);
    }
    let mut at = from;
    for span in spans[from_word..to_word]
        .iter()
        .filter(|span| is_term(span))
    {
        push(&content[at..span.0], false);
        push(&content[span.0..span.1], true);
        at = span.1;
    }
    push(&content[at..to], false);
    if to < content.len() {
        push("…", false);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(query: &str) -> SearchText {
        SearchText::parse(query).expect("a valid query")
    }

    fn shown(parts: &[SnippetPart]) -> String {
        parts
            .iter()
            .map(|p| {
                if p.highlight {
                    format!("[{}]", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    #[test]
    fn a_query_is_its_words_lowercased_once_each() {
        assert_eq!(
            text("Pizza, pizza & Café-au-lait!").terms(),
            ["pizza", "café", "au", "lait"]
        );
        assert_eq!(text("order 42").terms(), ["order", "42"]);
    }

    #[test]
    fn queries_without_words_or_too_big_are_refused() {
        for bad in ["", "   ", "!?—", "\"*\""] {
            assert!(SearchText::parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            SearchText::parse("a b c d e f g h i").is_err(),
            "nine words"
        );
        assert!(SearchText::parse(&"a".repeat(65)).is_err(), "a long word");
        assert!(
            SearchText::parse(&"a ".repeat(101)).is_err(),
            "a long query"
        );
        assert!(SearchText::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn every_word_must_occur_whole() {
        let query = text("late pizza");
        assert!(query.matches("My PIZZA is late."));
        assert!(!query.matches("My pizzas are late."));
        assert!(!query.matches("pizza"));
    }

    #[test]
    fn a_snippet_marks_the_words_around_the_first_match() {
        let query = text("pizza");
        assert_eq!(
            shown(&snippet("A pizza, please!", &query)),
            "A [pizza], please!"
        );
        let long = "one two three four five six seven eight nine ten pizza eleven twelve \
                    thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty";
        assert_eq!(
            shown(&snippet(long, &query)),
            "…three four five six seven eight nine ten [pizza] eleven twelve thirteen \
             fourteen fifteen sixteen seventeen eighteen…"
        );
        assert_eq!(shown(&snippet("Pizza pizza", &query)), "[Pizza] [pizza]");
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let before = SearchCursor::Before {
            timestamp: Timestamp::from_unix_millis(1_764_000_000_000).unwrap(),
            id: "0193a0f0-0000-7000-8000-000000000001".parse().unwrap(),
        };
        assert_eq!(SearchCursor::decode(&before.encode()).unwrap(), before);
        assert_eq!(
            SearchCursor::decode(&SearchCursor::Offset(40).encode()).unwrap(),
            SearchCursor::Offset(40)
        );
        for bad in ["", "x", "t12", "t12_nope", "onope"] {
            assert!(SearchCursor::decode(bad).is_err(), "{bad:?}");
        }
    }
}
