//! Bots as last read, for a short while. Every bot reply reads its bot's row, and
//! bots change seldom: a read saved per reply is a round trip to the database saved.
//!
//! Changes through this store take effect at once (they drop the entry). A change
//! through another instance is seen when the bus announces it
//! ([`SeaOrmStore::forget_bot`](crate::SeaOrmStore::forget_bot)), and at the latest once
//! the entry expires, after [`BOT_TTL`] by default.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use confab_domain::bot::{Bot, BotId};

/// How long a bot read from the database is used without reading it again, unless
/// the store was built with another time.
pub(crate) const BOT_TTL: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct BotCache {
    ttl: Duration,
    state: Mutex<State>,
}

impl Default for BotCache {
    fn default() -> Self {
        Self::with_ttl(BOT_TTL)
    }
}

#[derive(Debug, Default)]
struct State {
    /// Counts changes, so that a read that began before a change cannot put the
    /// row it read back after the change dropped it.
    generation: u64,
    entries: HashMap<BotId, (Instant, Bot)>,
}

impl BotCache {
    /// A cache whose entries are used for `ttl` after their read.
    pub(crate) fn with_ttl(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::default(),
        }
    }

    /// The bot, if it was read less than the time to live ago and has not changed
    /// since.
    pub(crate) fn get(&self, id: &BotId) -> Option<Bot> {
        let state = self.lock();
        state
            .entries
            .get(id)
            .filter(|(read_at, _)| read_at.elapsed() < self.ttl)
            .map(|(_, bot)| bot.clone())
    }

    /// The generation to hand to [`put`](Self::put) with a row read after this call.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps `bot`, read after [`generation`](Self::generation) returned
    /// `generation`, unless a change came in between.
    pub(crate) fn put(&self, generation: u64, bot: Bot) {
        let mut state = self.lock();
        if state.generation == generation {
            state.entries.insert(bot.id.clone(), (Instant::now(), bot));
        }
    }

    /// Drops the bot; called after every change to it.
    pub(crate) fn forget(&self, id: &BotId) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.remove(id);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Only map operations happen under the lock, so a poisoned one still holds
        // consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use confab_domain::bot::{BotName, EngineKind, EngineSpec};
    use confab_domain::timestamp::Timestamp;

    use super::*;

    fn bot(name: &str) -> Bot {
        let at = Timestamp::from_unix_millis(1_764_000_000_000).expect("valid time");
        Bot {
            id: BotId::parse("echo").expect("bot id"),
            name: BotName::parse(name).expect("bot name"),
            description: String::new(),
            engine: EngineSpec::of(EngineKind::Echo),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn a_bot_put_is_returned_until_it_is_forgotten() {
        let cache = BotCache::default();
        let id = bot("Echo").id;
        cache.put(cache.generation(), bot("Echo"));
        assert_eq!(cache.get(&id), Some(bot("Echo")));
        cache.forget(&id);
        assert_eq!(cache.get(&id), None);
    }

    #[test]
    fn a_row_read_before_a_change_is_not_kept_after_it() {
        let cache = BotCache::default();
        let id = bot("Echo").id;
        let before_the_change = cache.generation();
        cache.forget(&id);
        cache.put(before_the_change, bot("Old name"));
        assert_eq!(cache.get(&id), None);
    }
}
