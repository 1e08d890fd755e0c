//! Full-text search for the service's callers: a user's own messages, or everyone's
//! for an administrator; the snippets are the model's ([`crate::search::snippet`]).

use crate::conversation::PageSize;
use crate::error::{DomainError, ValidationError};
use crate::search::{
    SearchCursor, SearchHit, SearchOrder, SearchPage, SearchQuery, SearchScope, snippet,
};
use crate::user::{Caller, Role};

use super::ConversationService;

impl ConversationService {
    /// One page of the messages matching `query` that the caller may see: their own
    /// conversations', everyone's for an administrator, a bot's own conversations for
    /// its token (whatever scope `query` names is replaced by the caller's).
    ///
    /// # Errors
    /// `Invalid` for a cursor of the other order.
    pub async fn search(
        &self,
        caller: &Caller,
        mut query: SearchQuery,
    ) -> Result<SearchPage, DomainError> {
        query.scope = match &caller.role {
            Role::Admin => SearchScope::Everyone,
            Role::User | Role::Agent => SearchScope::User(caller.user_id.clone()),
            // A bot sees the conversations it serves, and nothing else.
            Role::Bot(bot) => {
                if query.bot_id.as_ref().is_some_and(|asked| asked != bot) {
                    return Ok(SearchPage {
                        hits: Vec::new(),
                        next_cursor: None,
                    });
                }
                query.bot_id = Some(bot.clone());
                SearchScope::Everyone
            }
        };
        let fits = matches!(
            (query.order, query.cursor),
            (_, None)
                | (SearchOrder::Newest, Some(SearchCursor::Before { .. }))
                | (SearchOrder::Rank, Some(SearchCursor::Offset(_)))
        );
        if !fits {
            return Err(ValidationError::InvalidListCursor.into());
        }
        let limit = PageSize::clamped(query.limit.get(), SearchQuery::MAX_LIMIT);
        query.limit = limit;
        let mut found = self.ports.messages.search(&query).await?;
        let more = found.len() > limit.get() as usize;
        found.truncate(limit.get() as usize);
        let next_cursor = match (more, query.order, found.last()) {
            (true, SearchOrder::Newest, Some(last)) => Some(SearchCursor::Before {
                timestamp: last.timestamp,
                id: last.id,
            }),
            (true, SearchOrder::Rank, Some(_)) => {
                let skipped = match query.cursor {
                    Some(SearchCursor::Offset(skipped)) => skipped,
                    _ => 0,
                };
                Some(SearchCursor::Offset(skipped + found.len() as u64))
            }
            _ => None,
        };
        Ok(SearchPage {
            hits: found
                .into_iter()
                .map(|message| SearchHit {
                    snippet: snippet(message.content.as_str(), &query.text),
                    message,
                })
                .collect(),
            next_cursor,
        })
    }
}
