//! What the SeaORM adapter promises beyond the ports' contract: connection settings,
//! migrations, the signing secret, the schema's cascades and its lack of a foreign key
//! to bots, JSON that round-trips exactly, errors instead of panics for corrupt rows
//! and out-of-range bounds, and an analytics summary that counts exactly as the
//! in-memory store does. Each test runs on SQLite and, when
//! `CONFAB_TEST_POSTGRES_URL` names a server, on PostgreSQL.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use confab_domain::analytics::{Granularity, SummaryQuery};
use confab_domain::bot::BotId;
use confab_domain::conversation::{
    Conversation, ConversationFilter, ConversationId, ListPosition, ListQuery, Metadata, PageSize,
};
use confab_domain::error::RepoError;
use confab_domain::lease::{Claim, LeaseHolder};
use confab_domain::message::{Appended, HistoryBound, HistoryQuery, NewMessage, Seq};
use confab_domain::ports::{
    BotRepository, ConversationMaintenance, ConversationRepository, MessageRepository, ReplyLeases,
    SessionRepository,
};
use confab_domain::search::{SearchOrder, SearchQuery, SearchScope, SearchText};
use confab_domain::session::{Session, SessionId};
use confab_domain::testing::analytics::{
    expected_handoff_summary, handoff_summary_query, seed_handoffs,
};
use confab_domain::testing::{InMemoryStore, seed_bot_in, test_start};
use confab_domain::timestamp::Timestamp;
use confab_domain::user::UserId;
use confab_migrations::{Migrator, MigratorTrait};
use confab_storage_seaorm::{DatabaseConnection, SeaOrmStore, migrate};
use sea_orm::{ConnectionTrait, Statement};

/// Generates one test per backend for each named `async fn(DatabaseConnection)`.
macro_rules! on_every_backend {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            use confab_storage_seaorm::testing::sqlite_temp;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let db = sqlite_temp().await.expect("creating a SQLite test database");
                    super::$test(db.connection().clone()).await;
                }
            )+
        }

        #[cfg(confab_postgres_tests)]
        mod postgres {
            use confab_storage_seaorm::testing::{postgres_temp, postgres_url};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let admin_url = postgres_url().expect("CONFAB_TEST_POSTGRES_URL is set");
                    let db = postgres_temp(&admin_url)
                        .await
                        .expect("creating a PostgreSQL test database");
                    // On a panic the database is dropped by `PostgresTemp`'s `Drop`.
                    super::$test(db.connection().clone()).await;
                    db.drop_database().await.expect("dropping the test database");
                }
            )+
        }
    };
}

on_every_backend!(
    migrating_an_up_to_date_database_changes_nothing,
    concurrent_migrations_of_an_empty_database_all_succeed,
    the_first_signing_secret_is_kept_and_concurrent_starts_agree_on_one,
    a_corrupt_row_is_an_internal_error_and_not_a_panic,
    history_bounds_beyond_every_stored_seq_are_accepted,
    a_lease_claim_reads_the_conversation_in_the_same_step,
    an_offset_beyond_every_conversation_is_an_empty_page,
    deleting_a_conversation_row_cascades_to_its_session_and_messages,
    a_bot_can_be_deleted_while_its_conversations_are_kept,
    json_with_nul_characters_round_trips,
    the_summary_counts_handoffs_and_agent_messages_like_the_in_memory_store,
);

/// A new conversation of `ana` with the bot `alpha`, stored with its session.
async fn conversation(store: &SeaOrmStore) -> (Conversation, Session) {
    seed_bot_in(store, "alpha").await;
    let conversation = Conversation::begun(
        ConversationId::from_uuid(uuid::Uuid::now_v7()),
        SessionId::from_uuid(uuid::Uuid::now_v7()),
        UserId::parse("ana").unwrap(),
        BotId::parse("alpha").unwrap(),
        test_start(),
    );
    let session = Session::new(&conversation);
    ConversationRepository::create(store, &conversation, &session)
        .await
        .unwrap();
    (conversation, session)
}

fn user_message(conversation: &Conversation, content: &str) -> NewMessage {
    confab_domain::testing::user_message(conversation, content, test_start())
}

async fn append(store: &SeaOrmStore, message: &NewMessage) {
    assert!(matches!(
        store.append(message).await.unwrap(),
        Appended::Stored(_)
    ));
}

/// Runs `sql` with `id` as its one parameter, written `$1` and turned into `?` for
/// SQLite.
async fn execute_with_id(db: &DatabaseConnection, sql: &str, id: uuid::Uuid) {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Sqlite => sql.replace("$1", "?"),
        _ => sql.to_owned(),
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [id.into()]))
        .await
        .unwrap();
}

async fn count_with_id(db: &DatabaseConnection, sql: &str, id: uuid::Uuid) -> i64 {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Sqlite => sql.replace("$1", "?"),
        _ => sql.to_owned(),
    };
    db.query_one_raw(Statement::from_sql_and_values(backend, sql, [id.into()]))
        .await
        .unwrap()
        .expect("a count row")
        .try_get_by_index::<i64>(0)
        .unwrap()
}

async fn migrating_an_up_to_date_database_changes_nothing(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db.clone());
    let (conversation, _) = conversation(&store).await;
    migrate(&db)
        .await
        .expect("a second migration run is a no-op");
    assert_eq!(
        ConversationRepository::get(&store, conversation.id)
            .await
            .unwrap(),
        conversation
    );
}

async fn concurrent_migrations_of_an_empty_database_all_succeed(db: DatabaseConnection) {
    Migrator::down(&db, None)
        .await
        .expect("the migrations roll back");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { migrate(&db).await })
        })
        .collect();
    for run in runs {
        run.await
            .unwrap()
            .expect("every concurrent migration succeeds");
    }
    let store = SeaOrmStore::new(db);
    conversation(&store).await;
}

async fn the_first_signing_secret_is_kept_and_concurrent_starts_agree_on_one(
    db: DatabaseConnection,
) {
    let store = SeaOrmStore::new(db);
    let starts: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.signing_secret(&format!("candidate-{n}")).await })
        })
        .collect();
    let mut secrets = HashSet::new();
    for start in starts {
        secrets.insert(start.await.unwrap().unwrap());
    }
    assert_eq!(
        secrets.len(),
        1,
        "starts disagree on the secret: {secrets:?}"
    );
    let secret = secrets.into_iter().next().unwrap();
    assert!(secret.starts_with("candidate-"));
    assert_eq!(store.signing_secret("later").await.unwrap(), secret);
}

async fn a_corrupt_row_is_an_internal_error_and_not_a_panic(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db.clone());
    let (conversation, _) = conversation(&store).await;
    execute_with_id(
        &db,
        "UPDATE conversations SET status = 'lost', metadata = 'not json' WHERE id = $1",
        conversation.id.as_uuid(),
    )
    .await;
    assert!(matches!(
        ConversationRepository::get(&store, conversation.id).await,
        Err(RepoError::Internal(_))
    ));
}

async fn history_bounds_beyond_every_stored_seq_are_accepted(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    let (conversation, _) = conversation(&store).await;
    append(&store, &user_message(&conversation, "one")).await;
    let query = |before, after| HistoryQuery {
        before,
        after,
        limit: PageSize::HISTORY_DEFAULT,
    };
    let far = Some(HistoryBound::Seq(Seq::new(u64::MAX)));
    let older = store
        .history(conversation.id, &query(far, None))
        .await
        .unwrap();
    assert_eq!(older.messages.len(), 1);
    let newer = store
        .history(conversation.id, &query(None, far))
        .await
        .unwrap();
    assert!(newer.messages.is_empty() && !newer.has_more);
}

/// The store's claim returns the row it wrote, so the reply worker's first look
/// needs no read of its own (the contract allows a claim that reads nothing).
async fn a_lease_claim_reads_the_conversation_in_the_same_step(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    let (conversation, _) = conversation(&store).await;
    append(&store, &user_message(&conversation, "one")).await;
    let holder = LeaseHolder::from_uuid(uuid::Uuid::now_v7());
    let claimed = store
        .claim_reading(conversation.id, holder, test_start(), test_start())
        .await
        .unwrap();
    let now = ConversationRepository::get(&store, conversation.id)
        .await
        .unwrap();
    assert_eq!(claimed, Claim::Held(Some(Box::new(now))));
}

async fn an_offset_beyond_every_conversation_is_an_empty_page(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    let (conversation, _) = conversation(&store).await;
    let query = ListQuery {
        filter: ConversationFilter::default(),
        position: ListPosition::Offset(u64::MAX),
        limit: PageSize::LIST_DEFAULT,
    };
    let page = ConversationRepository::list(&store, &conversation.user_id, &query)
        .await
        .unwrap();
    assert!(page.conversations.is_empty() && !page.has_more);
    assert_eq!(page.total, 1);
}

async fn deleting_a_conversation_row_cascades_to_its_session_and_messages(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db.clone());
    let (conversation, session) = conversation(&store).await;
    append(&store, &user_message(&conversation, "one")).await;
    let id = conversation.id.as_uuid();
    // Bypasses the adapter, so that only the schema's foreign keys (and SQLite's
    // `foreign_keys` pragma) can remove the children.
    execute_with_id(&db, "DELETE FROM conversations WHERE id = $1", id).await;
    let messages = count_with_id(
        &db,
        "SELECT COUNT(*) FROM message_history WHERE conversation_id = $1",
        id,
    )
    .await;
    assert_eq!(messages, 0, "messages outlived their conversation");
    assert!(matches!(
        SessionRepository::get(&store, session.id).await,
        Err(RepoError::NotFound)
    ));
}

async fn a_bot_can_be_deleted_while_its_conversations_are_kept(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    let (conversation, _) = conversation(&store).await;
    BotRepository::delete(&store, &conversation.bot_id)
        .await
        .unwrap();
    assert_eq!(
        ConversationRepository::get(&store, conversation.id)
            .await
            .unwrap(),
        conversation
    );
    append(&store, &user_message(&conversation, "still here")).await;
}

async fn json_with_nul_characters_round_trips(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    let (conversation, session) = conversation(&store).await;
    let json = serde_json::json!({ "nul": "a\u{0}b", "nested": { "list": [1, "\u{0}"] } });
    let metadata = Metadata::parse(json.clone()).unwrap();
    let mut message = user_message(&conversation, "with metadata");
    message.metadata = metadata.clone();
    append(&store, &message).await;
    let stored = MessageRepository::get(&store, conversation.id, message.id)
        .await
        .unwrap();
    assert_eq!(stored.metadata, metadata);

    let serde_json::Value::Object(context) = json else {
        unreachable!("the literal is an object")
    };
    store
        .save_context(session.id, &context, test_start())
        .await
        .unwrap();
    assert_eq!(
        SessionRepository::get(&store, session.id)
            .await
            .unwrap()
            .context,
        context
    );
}

/// The one value `sql` (a pragma, a scalar query) returns on SQLite.
async fn sqlite_value<T: sea_orm::TryGetable>(db: &DatabaseConnection, sql: &str) -> T {
    db.query_one_raw(Statement::from_string(sea_orm::DbBackend::Sqlite, sql))
        .await
        .unwrap()
        .expect("a row")
        .try_get_by_index(0)
        .unwrap()
}

/// The pragmas `connect` sets hold on the pool's connections.
#[tokio::test]
async fn sqlite_connections_run_in_wal_mode_with_foreign_keys_and_a_busy_timeout() {
    let temp = confab_storage_seaorm::testing::sqlite_temp().await.unwrap();
    let db = temp.connection();
    let journal_mode: String = sqlite_value(db, "PRAGMA journal_mode").await;
    assert_eq!(journal_mode, "wal");
    assert_eq!(sqlite_value::<i64>(db, "PRAGMA foreign_keys").await, 1);
    // 1 is NORMAL.
    assert_eq!(sqlite_value::<i64>(db, "PRAGMA synchronous").await, 1);
    assert_eq!(sqlite_value::<i64>(db, "PRAGMA busy_timeout").await, 5_000);
}

/// `.cargo/config.toml` builds the bundled SQLite with `SQLITE_ENABLE_QPSG`. Without
/// it every statement with `LIMIT ?` (every page, every `.one()`) is parsed again on
/// each execution: the planner reads the bound limit, and rebinding it expires the
/// prepared statement.
#[tokio::test]
async fn sqlite_is_built_with_the_query_planner_stability_guarantee() {
    let temp = confab_storage_seaorm::testing::sqlite_temp().await.unwrap();
    let used: i64 = sqlite_value(
        temp.connection(),
        "SELECT sqlite_compileoption_used('ENABLE_QPSG')",
    )
    .await;
    assert_eq!(
        used, 1,
        "LIBSQLITE3_FLAGS from .cargo/config.toml was not applied"
    );
}

/// A message whose entry in the search index is not under its own rowid, as a
/// `VACUUM` that renumbers `message_history` leaves it, is still found in its place:
/// the index's order is never taken for the order of time. Here the newest message's
/// entry is moved below every other one, where a walk by rowid meets it last.
#[tokio::test]
async fn sqlite_search_finds_a_message_indexed_under_another_rowid() {
    let temp = confab_storage_seaorm::testing::sqlite_temp().await.unwrap();
    let store = temp.store();
    let (conversation, _) = conversation(&store).await;
    let mut stored = Vec::new();
    for n in 0..200 {
        let at = Timestamp::from_unix_millis(test_start().unix_millis() + n).unwrap();
        let message =
            confab_domain::testing::user_message(&conversation, &format!("pizza {n}"), at);
        match store.append(&message).await.unwrap() {
            Appended::Stored(message) => stored.push(message.id),
            other => panic!("expected the message to be stored, got {other:?}"),
        }
    }
    let newest = stored.last().unwrap().as_uuid();
    let db = temp.connection();
    execute_with_id(
        db,
        "DELETE FROM message_search \
         WHERE rowid = (SELECT rowid FROM message_history WHERE id = $1)",
        newest,
    )
    .await;
    execute_with_id(
        db,
        "INSERT INTO message_search (rowid, content, message_id) \
         SELECT -1, content, id FROM message_history WHERE id = $1",
        newest,
    )
    .await;
    stored.reverse();
    for limit in [1, 20] {
        let query = SearchQuery {
            text: SearchText::parse("pizza").unwrap(),
            scope: SearchScope::User(conversation.user_id.clone()),
            bot_id: None,
            status: None,
            order: SearchOrder::Newest,
            cursor: None,
            limit: PageSize::clamped(limit, SearchQuery::MAX_LIMIT),
        };
        let found: Vec<_> = MessageRepository::search(&store, &query)
            .await
            .unwrap()
            .into_iter()
            .map(|message| message.id)
            .collect();
        assert_eq!(found, stored[..limit as usize + 1], "limit {limit}");
    }
}

/// An in-memory database lives only while a connection holds it: the schema that
/// `migrate` made must still be there for the store, also under concurrent appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_in_memory_sqlite_database_keeps_its_schema_and_rows() {
    let db = confab_storage_seaorm::connect("sqlite::memory:")
        .await
        .unwrap();
    migrate(&db).await.unwrap();
    let store = SeaOrmStore::new(db);
    let (conversation, _) = conversation(&store).await;
    let appends: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            let message = user_message(&conversation, &format!("kept {n}"));
            tokio::spawn(async move { store.append(&message).await })
        })
        .collect();
    for append in appends {
        append.await.unwrap().unwrap();
    }
    let stored = ConversationRepository::get(&store, conversation.id)
        .await
        .unwrap();
    assert_eq!(stored.message_count, 8);
}

/// Two instances of confab on one PostgreSQL database: each with its own pool and
/// store, appending to the same conversation at once.
#[cfg(confab_postgres_tests)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_from_two_instances_get_gap_free_unique_seqs() {
    use confab_storage_seaorm::connect;
    use confab_storage_seaorm::testing::{postgres_temp, postgres_url};

    const EACH: usize = 50;
    let admin_url = postgres_url().expect("CONFAB_TEST_POSTGRES_URL is set");
    let db = postgres_temp(&admin_url)
        .await
        .expect("creating a PostgreSQL test database");
    let first = SeaOrmStore::new(connect(db.url()).await.expect("the first pool"));
    let second = SeaOrmStore::new(connect(db.url()).await.expect("the second pool"));
    let (conversation, _) = conversation(&first).await;
    let writers: Vec<_> = [first.clone(), second]
        .into_iter()
        .flat_map(|store| {
            let conversation = conversation.clone();
            (0..4).map(move |writer| {
                let (store, conversation) = (store.clone(), conversation.clone());
                tokio::spawn(async move {
                    for n in 0..EACH / 4 + 1 {
                        append(
                            &store,
                            &user_message(&conversation, &format!("{writer}/{n}")),
                        )
                        .await;
                    }
                })
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let mut seqs = Vec::new();
    let mut after = Some(HistoryBound::Seq(Seq::ZERO));
    loop {
        let page = first
            .history(
                conversation.id,
                &HistoryQuery {
                    before: None,
                    after,
                    limit: PageSize::parse(100, PageSize::HISTORY_MAX).unwrap(),
                },
            )
            .await
            .unwrap();
        seqs.extend(page.messages.iter().map(|m| m.seq.get()));
        match page.messages.last() {
            Some(last) if page.has_more => after = Some(HistoryBound::Seq(last.seq)),
            _ => break,
        }
    }
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs.len(), 2 * 4 * (EACH / 4 + 1));
    assert_eq!(
        seqs, expected,
        "seqs from two instances have gaps or repeats"
    );
    let stored = ConversationRepository::get(&first, conversation.id)
        .await
        .unwrap();
    assert_eq!(stored.last_seq.get(), seqs.len() as u64);
    db.drop_database()
        .await
        .expect("dropping the test database");
}

/// One data set in SQL and in memory: the summary worked out by hand, then every
/// bot filter and granularity alike in both.
async fn the_summary_counts_handoffs_and_agent_messages_like_the_in_memory_store(
    db: DatabaseConnection,
) {
    let store = SeaOrmStore::new(db);
    let memory = InMemoryStore::new();
    seed_handoffs(&store).await;
    seed_handoffs(&memory).await;
    let query = handoff_summary_query();
    assert_eq!(
        store.summary(&query).await.unwrap(),
        expected_handoff_summary()
    );
    for bot_id in [None, Some("echo"), Some("echo-stream"), Some("demo")] {
        for granularity in [Granularity::Day, Granularity::Hour] {
            let query = SummaryQuery {
                bot_id: bot_id.map(|bot| BotId::parse(bot).unwrap()),
                granularity,
                ..query.clone()
            };
            assert_eq!(
                store.summary(&query).await.unwrap(),
                memory.summary(&query).await.unwrap(),
                "{query:?}"
            );
        }
    }
}
