//! Reads on SQLite without sqlx's thread per connection: the reads every message and
//! every history page makes (a conversation by id, a page of messages) run on a few
//! rusqlite connections of their own, on the tokio worker that asks for them.
//!
//! sqlx runs each SQLite connection on a thread of its own, and each query sent there
//! costs two thread hand-offs, which cost more than a point read or a page read by
//! index does (docs/benchmarks.md). Such a read is tens of microseconds of SQLite's
//! work, and in WAL mode it never waits for the writer (it reads the last commit and
//! takes no lock a writer holds), so it runs where it is asked for instead, as
//! blocking as a short computation.
//!
//! The statement is SeaORM's own (`QueryTrait::build`), so both ways run the same SQL;
//! only the rows are decoded here ([`DirectRow`]): a conversation into the entity's
//! `Model`, which the usual conversions in `rows` take from there, and a message
//! straight into the domain's, through the conversion the `Model` takes too
//! (`rows::MessageColumns`). Whatever SQLite refuses (a lock it
//! would have to wait for, an I/O error, no reader free) sends the read the ordinary
//! way, through sqlx, which waits and reports errors as every other query does. A row
//! that does not decode is an error like any other invalid row.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use confab_domain::error::RepoError;
use confab_domain::message::Message;
use rusqlite::{CachedStatement, Connection};
use sea_orm::{DatabaseConnection, EntityTrait, IdenStatic, Iterable, Statement, Value};
use uuid::Uuid;

use crate::connection::{open_sqlite_reader, sqlite_file};
use crate::entity::{conversation, message};
use crate::error::{RowError, rusqlite_error};
use crate::rows::MessageColumns;

/// Readers open at most. Reads run on the tokio workers, one at a time each, so a
/// few cover every worker; a read that finds none free goes through sqlx.
const MAX_READERS: usize = 8;

/// SQL texts each reader keeps prepared: a conversation by id and the nine shapes of
/// a history query (two bounds of three kinds each), with room to spare.
const PREPARED_PER_READER: usize = 32;

/// The readers of one SQLite database file.
#[derive(Debug)]
pub(crate) struct DirectReads {
    path: PathBuf,
    readers: Mutex<Readers>,
}

#[derive(Debug, Default)]
struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

/// Why a read did not run here.
enum Refused {
    /// SQLite refused it, or it could not be prepared: the ordinary way runs it.
    Sqlite(rusqlite::Error),
    /// A row it read is not valid.
    Row(RowError),
}

impl From<rusqlite::Error> for Refused {
    fn from(error: rusqlite::Error) -> Self {
        Refused::Sqlite(error)
    }
}

impl From<RowError> for Refused {
    fn from(error: RowError) -> Self {
        Refused::Row(error)
    }
}

impl DirectReads {
    /// Readers of the pool's database, when it is a SQLite file ([`sqlite_file`]). An
    /// in-memory database lives inside the pool's one connection and is read through it.
    pub(crate) async fn for_pool(db: &DatabaseConnection) -> Option<Self> {
        Some(Self {
            path: sqlite_file(db).await?,
            readers: Mutex::default(),
        })
    }

    /// The rows `statement` selects, decoded; `None` when it could not be read here
    /// and should go through sqlx.
    pub(crate) fn rows<T: DirectRow>(
        &self,
        statement: &Statement,
    ) -> Option<Result<Vec<T>, RepoError>> {
        let reader = self.take()?;
        let read = read_rows(&reader, statement);
        self.lock().idle.push(reader);
        match read {
            Ok(rows) => Some(Ok(rows)),
            Err(Refused::Sqlite(_)) => None,
            Err(Refused::Row(error)) => Some(Err(error.into())),
        }
    }

    /// An idle reader, or a new one while fewer than [`MAX_READERS`] are open.
    fn take(&self) -> Option<Connection> {
        {
            let mut readers = self.lock();
            if let Some(reader) = readers.idle.pop() {
                return Some(reader);
            }
            if readers.open >= MAX_READERS {
                return None;
            }
            readers.open += 1;
        }
        let opened = self.open();
        if opened.is_none() {
            self.lock().open -= 1;
        }
        opened
    }

    fn open(&self) -> Option<Connection> {
        // A read that would wait for a lock goes through sqlx instead, whose busy
        // timeout waits off the tokio worker.
        let reader = open_sqlite_reader(&self.path).ok()?;
        reader.set_prepared_statement_cache_capacity(PREPARED_PER_READER);
        Some(reader)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Readers> {
        // The critical sections only move connections and a count.
        self.readers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn read_rows<T: DirectRow>(reader: &Connection, statement: &Statement) -> Result<Vec<T>, Refused> {
    let mut prepared = reader.prepare_cached(&statement.sql)?;
    // Rows are decoded by position, SeaORM's by name: a statement that selects other
    // columns, or in another order, is refused rather than read into the wrong fields.
    let expected = <T::Entity as EntityTrait>::Column::iter().map(|c| c.as_str());
    let selected = prepared.column_names();
    if !selected.iter().copied().eq(expected) {
        return Err(Refused::Row(RowError::new(
            T::TABLE,
            format!("selected {selected:?}, not the entity's columns in order"),
        )));
    }
    bind_all(&mut prepared, statement)?;
    let mut rows = prepared.raw_query();
    let mut read = Vec::new();
    while let Some(row) = rows.next()? {
        read.push(T::from_row(&mut Columns::new(row, T::TABLE))?);
    }
    Ok(read)
}

/// Reads `statement`'s rows on `connection` as a direct read decodes them, for a
/// connection that is not a reader's (the group commit's writer, inside its batch),
/// where a refusal is an error rather than a reason to go through the pool.
pub(crate) fn rows_on<T: DirectRow>(
    connection: &Connection,
    statement: &Statement,
) -> Result<Vec<T>, RepoError> {
    read_rows(connection, statement).map_err(|refused| match refused {
        Refused::Sqlite(error) => rusqlite_error(error),
        Refused::Row(error) => error.into(),
    })
}

/// Binds `statement`'s values to `prepared`, its SQL prepared.
pub(crate) fn bind_all(
    prepared: &mut CachedStatement<'_>,
    statement: &Statement,
) -> rusqlite::Result<()> {
    if let Some(values) = &statement.values {
        for (index, value) in values.0.iter().enumerate() {
            bind(prepared, index + 1, value)?;
        }
    }
    Ok(())
}

/// Binds one of the values SeaORM and `sql` put in statements, as sqlx would bind it
/// (a UUID as its 16 bytes, a boolean as 0 or 1).
fn bind(prepared: &mut CachedStatement<'_>, index: usize, value: &Value) -> rusqlite::Result<()> {
    match value {
        Value::Bool(value) => prepared.raw_bind_parameter(index, value)?,
        Value::BigInt(value) => prepared.raw_bind_parameter(index, value)?,
        Value::Int(value) => prepared.raw_bind_parameter(index, value)?,
        Value::BigUnsigned(value) => {
            let value = value
                .map(i64::try_from)
                .transpose()
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            prepared.raw_bind_parameter(index, value)?;
        }
        Value::String(value) => prepared.raw_bind_parameter(index, value.as_deref())?,
        Value::Uuid(value) => {
            prepared.raw_bind_parameter(index, value.as_ref().map(|uuid| &uuid.as_bytes()[..]))?;
        }
        other => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("no binding for {other:?}").into(),
            ));
        }
    }
    Ok(())
}

/// What an entity's row, as a `SELECT` of all its columns returns it, is read into:
/// SeaORM selects the columns in the order of the `Model`'s fields, which
/// [`from_row`](Self::from_row) reads in turn.
pub(crate) trait DirectRow: Sized {
    /// The entity whose columns, in order, are what [`from_row`](Self::from_row)
    /// reads.
    type Entity: EntityTrait;

    /// The table, for errors.
    const TABLE: &'static str;

    /// Decodes the row, its columns read one after the other.
    fn from_row(columns: &mut Columns<'_, '_>) -> Result<Self, RowError>;

    /// The same value from the row as the pool reads it.
    fn from_model(model: <Self::Entity as EntityTrait>::Model) -> Result<Self, RowError>;
}

/// The columns of one row, read in order.
pub(crate) struct Columns<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    next: usize,
    table: &'static str,
}

impl<'r, 's> Columns<'r, 's> {
    fn new(row: &'r rusqlite::Row<'s>, table: &'static str) -> Self {
        Self {
            row,
            next: 0,
            table,
        }
    }

    fn value(&mut self) -> Result<rusqlite::types::ValueRef<'r>, RowError> {
        let index = self.next;
        self.next += 1;
        self.row
            .get_ref(index)
            .map_err(|e| RowError::new(self.table, format!("column {index}: {e}")))
    }

    fn problem(&self, error: impl std::fmt::Display) -> RowError {
        RowError::new(self.table, format!("column {}: {error}", self.next - 1))
    }

    fn int(&mut self) -> Result<i64, RowError> {
        let value = self.value()?;
        value.as_i64().map_err(|e| self.problem(e))
    }

    fn int_or_null(&mut self) -> Result<Option<i64>, RowError> {
        let value = self.value()?;
        value.as_i64_or_null().map_err(|e| self.problem(e))
    }

    fn text(&mut self) -> Result<String, RowError> {
        self.borrowed_text().map(str::to_owned)
    }

    fn text_or_null(&mut self) -> Result<Option<String>, RowError> {
        Ok(self.borrowed_text_or_null()?.map(str::to_owned))
    }

    /// Text as the row holds it, for a value that only parses it.
    fn borrowed_text(&mut self) -> Result<&'r str, RowError> {
        let value = self.value()?;
        value.as_str().map_err(|e| self.problem(e))
    }

    fn borrowed_text_or_null(&mut self) -> Result<Option<&'r str>, RowError> {
        let value = self.value()?;
        value.as_str_or_null().map_err(|e| self.problem(e))
    }

    fn uuid(&mut self) -> Result<Uuid, RowError> {
        self.uuid_or_null()?
            .ok_or_else(|| self.problem("NULL where a UUID belongs"))
    }

    fn uuid_or_null(&mut self) -> Result<Option<Uuid>, RowError> {
        let value = self.value()?;
        value
            .as_blob_or_null()
            .map_err(|e| self.problem(e))?
            .map(|bytes| Uuid::from_slice(bytes).map_err(|e| self.problem(e)))
            .transpose()
    }
}

impl DirectRow for conversation::Model {
    type Entity = conversation::Entity;
    const TABLE: &'static str = "conversations";

    fn from_row(columns: &mut Columns<'_, '_>) -> Result<Self, RowError> {
        Ok(Self {
            id: columns.uuid()?,
            session_id: columns.uuid()?,
            user_id: columns.text()?,
            bot_id: columns.text()?,
            status: columns.text()?,
            title: columns.text_or_null()?,
            metadata: columns.text()?,
            created_at_ms: columns.int()?,
            last_activity_ms: columns.int()?,
            last_message: columns.text_or_null()?,
            message_count: columns.int()?,
            last_seq: columns.int()?,
            last_user_seq: columns.int()?,
            replied_seq: columns.int()?,
            reply_holder: columns.uuid_or_null()?,
            reply_lease_until_ms: columns.int_or_null()?,
            handoff: columns.text()?,
            handoff_agent: columns.text_or_null()?,
            handoff_since_ms: columns.int_or_null()?,
        })
    }

    fn from_model(model: Self) -> Result<Self, RowError> {
        Ok(model)
    }
}

/// Straight into the domain's message: a history page decodes 50 rows, and a row
/// decoded into the `Model` first would allocate the text it only parses (its sender,
/// JSON columns and rating) for nothing.
impl DirectRow for Message {
    type Entity = message::Entity;
    const TABLE: &'static str = "message_history";

    fn from_row(columns: &mut Columns<'_, '_>) -> Result<Self, RowError> {
        Message::try_from(MessageColumns {
            id: columns.uuid()?,
            conversation_id: columns.uuid()?,
            seq: columns.int()?,
            sender: columns.borrowed_text()?,
            sender_id: columns.text()?,
            content: columns.text()?,
            attachments: columns.borrowed_text()?,
            suggestions: columns.borrowed_text()?,
            client_message_id: columns.borrowed_text_or_null()?,
            reply_to: columns.uuid_or_null()?,
            timestamp_ms: columns.int()?,
            metadata: columns.borrowed_text()?,
            feedback_rating: columns.borrowed_text_or_null()?,
            feedback_comment: columns.text_or_null()?,
            feedback_at_ms: columns.int_or_null()?,
        })
    }

    fn from_model(model: message::Model) -> Result<Self, RowError> {
        Message::try_from(model)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{
        ColumnTrait, DbBackend, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
        QueryTrait,
    };

    use super::*;
    use crate::SeaOrmStore;
    use crate::testing::sqlite_temp;

    async fn bot(store: &SeaOrmStore) {
        use confab_domain::ports::BotRepository;

        let bot = confab_domain::testing::fixtures::test_bot("echo");
        store.upsert(&bot).await.expect("bot stored");
    }

    /// A conversation row with every column set, each to a value no other column has,
    /// so that a column read in the wrong place cannot go unnoticed.
    fn full_conversation() -> conversation::Model {
        conversation::Model {
            id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
            user_id: "alice".to_owned(),
            bot_id: "echo".to_owned(),
            status: "active".to_owned(),
            title: Some("A title".to_owned()),
            metadata: r#"{"k":"v"}"#.to_owned(),
            created_at_ms: 1_764_000_000_001,
            last_activity_ms: 1_764_000_000_002,
            last_message: Some("last words".to_owned()),
            message_count: 3,
            last_seq: 4,
            last_user_seq: 5,
            replied_seq: 6,
            reply_holder: Some(Uuid::now_v7()),
            reply_lease_until_ms: Some(1_764_000_000_007),
            handoff: "agent".to_owned(),
            handoff_agent: Some("agent-ann".to_owned()),
            handoff_since_ms: Some(1_764_000_000_008),
        }
    }

    fn full_message(conversation: Uuid, seq: i64, reply_to: Option<Uuid>) -> message::Model {
        message::Model {
            id: Uuid::now_v7(),
            conversation_id: conversation,
            seq,
            sender: "bot".to_owned(),
            sender_id: "echo".to_owned(),
            content: format!("content {seq}"),
            attachments: "[]".to_owned(),
            suggestions: r#"[{"text":"yes"}]"#.to_owned(),
            client_message_id: Some(format!("client-{seq}")),
            reply_to,
            timestamp_ms: 1_764_000_000_100 + seq,
            metadata: r#"{"m":1}"#.to_owned(),
            feedback_rating: Some("up".to_owned()),
            feedback_comment: Some("thanks".to_owned()),
            feedback_at_ms: Some(1_764_000_000_200 + seq),
        }
    }

    /// The messages of `rows`, as the rows read through the pool become.
    fn messages<const N: usize>(rows: [message::Model; N]) -> Vec<Message> {
        rows.into_iter()
            .map(|row| Message::try_from(row).expect("a valid row"))
            .collect()
    }

    #[tokio::test]
    async fn direct_reads_decode_every_column_as_the_pool_does() {
        let temp = sqlite_temp().await.expect("database");
        let store = temp.store();
        let db = temp.connection();
        let direct = DirectReads::for_pool(db)
            .await
            .expect("a SQLite file is read directly");
        bot(&store).await;
        let row = full_conversation();
        conversation::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(db)
            .await
            .expect("conversation stored");
        let first = full_message(row.id, 1, None);
        let second = full_message(row.id, 2, Some(first.id));
        let mut third = full_message(row.id, 3, None);
        (
            third.feedback_rating,
            third.feedback_comment,
            third.feedback_at_ms,
        ) = (None, None, None);
        third.client_message_id = None;
        for message in [&first, &second, &third] {
            message::Entity::insert(message.clone().into_active_model())
                .exec_without_returning(db)
                .await
                .expect("message stored");
        }

        let by_id = conversation::Entity::find_by_id(row.id);
        let read: Vec<conversation::Model> = direct
            .rows(&by_id.build(DbBackend::Sqlite))
            .expect("read directly")
            .expect("decoded");
        assert_eq!(read, vec![row.clone()]);
        assert_eq!(
            by_id.one(db).await.expect("read by the pool"),
            Some(row.clone())
        );

        // A page as history reads it: a bound, an order and a limit, each a value.
        let page = message::Entity::find()
            .filter(message::Column::ConversationId.eq(row.id))
            .filter(message::Column::Seq.lt(3_i64))
            .order_by_desc(message::Column::Seq)
            .limit(5);
        let read: Vec<Message> = direct
            .rows(&page.build(DbBackend::Sqlite))
            .expect("read directly")
            .expect("decoded");
        assert_eq!(read, messages([second.clone(), first.clone()]));
        assert_eq!(
            page.all(db).await.expect("read by the pool"),
            vec![second.clone(), first.clone()]
        );

        let all = message::Entity::find().order_by_asc(message::Column::Seq);
        let read: Vec<Message> = direct
            .rows(&all.build(DbBackend::Sqlite))
            .expect("read directly")
            .expect("decoded");
        assert_eq!(read, messages([first, second, third]));
    }

    #[tokio::test]
    async fn a_read_with_no_reader_free_goes_through_the_pool() {
        let temp = sqlite_temp().await.expect("database");
        let direct = DirectReads::for_pool(temp.connection())
            .await
            .expect("a SQLite file");
        let held: Vec<Connection> = (0..MAX_READERS)
            .map(|_| direct.take().expect("a reader"))
            .collect();
        let statement = conversation::Entity::find().build(DbBackend::Sqlite);
        assert!(direct.rows::<conversation::Model>(&statement).is_none());
        drop(held);
    }

    #[tokio::test]
    async fn a_statement_selecting_other_columns_is_an_error_not_a_retry() {
        let temp = sqlite_temp().await.expect("database");
        let store = temp.store();
        bot(&store).await;
        let row = full_conversation();
        conversation::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(temp.connection())
            .await
            .expect("conversation stored");
        let direct = DirectReads::for_pool(temp.connection())
            .await
            .expect("a SQLite file");
        let statement = conversation::Entity::find().build(DbBackend::Sqlite);
        let read = direct.rows::<Message>(&statement).expect("read here");
        assert!(matches!(read, Err(RepoError::Internal(_))), "{read:?}");

        // A value of the wrong type in a stored row.
        sea_orm::ConnectionTrait::execute_unprepared(
            temp.connection(),
            "UPDATE conversations SET title = x'00'",
        )
        .await
        .expect("title made a blob");
        let read = direct
            .rows::<conversation::Model>(&statement)
            .expect("read here");
        assert!(matches!(read, Err(RepoError::Internal(_))), "{read:?}");
    }

    #[tokio::test]
    async fn only_a_plain_file_is_read_beside_its_pool() {
        let db = crate::connect("sqlite::memory:").await.expect("database");
        assert!(DirectReads::for_pool(&db).await.is_none());

        // An in-memory database named like a file that exists is not that file: its
        // readers (and the group commit's writer) would read and write another
        // database than the pool's.
        let temp = sqlite_temp().await.expect("database");
        let file = temp
            .url()
            .trim_start_matches("sqlite://")
            .trim_end_matches("?mode=rwc")
            .to_owned();
        let db = crate::connect(&format!("sqlite://{file}?mode=memory"))
            .await
            .expect("database");
        assert!(DirectReads::for_pool(&db).await.is_none());
        assert!(DirectReads::for_pool(temp.connection()).await.is_some());
    }
}
