//! Contract checks of [`BotRepository`](crate::ports::BotRepository).

use crate::bot::{Bot, EngineKind, EngineSpec};

use super::{Repositories, assert_not_found, at, bot_id, named_bot};

fn script_bot(id: &str) -> Bot {
    let mut bot = named_bot(id, "Script bot");
    bot.description = "Answers from a script.".to_owned();
    bot.engine = EngineSpec {
        kind: EngineKind::Script,
        settings: serde_json::json!({"rules": [{"match": "hi", "say": "hello"}], "fallback": "?"})
            .as_object()
            .cloned()
            .expect("an object"),
    };
    bot.created_at = at(100);
    bot.updated_at = at(100);
    bot
}

/// `upsert` stores a new bot as given, and replaces a stored one with the new
/// name, description, engine and `updated_at` while keeping its `created_at`.
pub async fn upserting_a_bot_creates_then_updates_it_keeping_created_at(r: Repositories) {
    let bot = script_bot("helper");
    r.bots.upsert(&bot).await.expect("creating a bot");
    assert_eq!(r.bots.get(&bot.id).await.ok(), Some(bot.clone()));

    let mut changed = named_bot("helper", "Helper, renamed");
    changed.description = "Now an LLM.".to_owned();
    changed.engine = EngineSpec {
        kind: EngineKind::OpenAi,
        settings: serde_json::json!({"model": "small", "temperature": 0.2})
            .as_object()
            .cloned()
            .expect("an object"),
    };
    changed.created_at = at(900);
    changed.updated_at = at(900);
    r.bots.upsert(&changed).await.expect("updating a bot");
    let mut expected = changed.clone();
    expected.created_at = bot.created_at;
    assert_eq!(r.bots.get(&bot.id).await.ok(), Some(expected.clone()));
    assert_eq!(
        r.bots.list().await.expect("listing bots"),
        vec![expected],
        "an update must not add a bot"
    );
}

/// `list` returns every bot ordered by id, and nothing for an empty store.
pub async fn bots_are_listed_by_id(r: Repositories) {
    assert!(r.bots.list().await.expect("no bots is no error").is_empty());
    for id in ["zeta", "alpha", "mid-bot", "alpha_2", "0-first"] {
        r.bots
            .upsert(&script_bot(id))
            .await
            .expect("creating a bot");
    }
    let ids: Vec<String> = r
        .bots
        .list()
        .await
        .expect("listing bots")
        .into_iter()
        .map(|b| b.id.to_string())
        .collect();
    assert_eq!(ids, ["0-first", "alpha", "alpha_2", "mid-bot", "zeta"]);
}

/// `delete` removes a bot (`get` is then `RepoError::NotFound`, `list` leaves it
/// out); deleting or getting an unknown bot is `RepoError::NotFound`.
pub async fn deleting_a_bot_removes_it_and_an_unknown_one_is_not_found(r: Repositories) {
    let gone = script_bot("gone");
    let kept = script_bot("kept");
    r.bots.upsert(&gone).await.expect("creating a bot");
    r.bots.upsert(&kept).await.expect("creating a bot");
    r.bots.delete(&gone.id).await.expect("deleting a bot");
    assert_not_found(r.bots.get(&gone.id).await, "a deleted bot");
    assert_eq!(r.bots.list().await.expect("listing bots"), vec![kept]);
    assert_not_found(r.bots.delete(&gone.id).await, "a second delete");
    assert_not_found(r.bots.get(&bot_id("nobody")).await, "an unknown bot");
    assert_not_found(
        r.bots.delete(&bot_id("nobody")).await,
        "deleting an unknown bot",
    );
}
