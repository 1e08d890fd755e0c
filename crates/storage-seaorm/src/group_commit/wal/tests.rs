//! The WAL's restarts: under steady appends, by the writer's next commit, and held
//! off by a reader.

use confab_domain::message::Seq;
use confab_domain::ports::MessageRepository;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use super::CHECKPOINT_EVERY;
use crate::SeaOrmStore;
use crate::fixtures::{conversation, message};
use crate::testing::sqlite_temp;

/// Under steady appends, each committed while a background checkpoint may be running,
/// the WAL stays within the pool's checkpoint threshold: the background checkpoint has
/// it start over between two batches (`SqliteWriter::restart_wal`). Without that the
/// WAL grew by every commit's pages for as long as appends kept coming, as the writer
/// never checkpoints by itself.
///
/// How large it gets depends on how many pages the appends write in a round of the
/// background checkpoint (here about 40 MB in a debug build, half the threshold); a
/// WAL that never started over would pass the threshold a third of the way through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_starts_over_under_steady_appends() {
    let db = sqlite_temp().await.expect("database");
    let store = db.store();
    let id = conversation(&store).await.id;
    let wal = format!(
        "{}-wal",
        db.url()
            .trim_start_matches("sqlite://")
            .trim_end_matches("?mode=rwc")
    );
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let page: i64 = db
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA page_size",
        ))
        .await
        .expect("the page size")
        .expect("a row")
        .try_get_by_index(0)
        .expect("a number");
    // A frame is a page and its 24-byte header; the file has a 32-byte header.
    let threshold = u64::from(crate::connection::WAL_AUTOCHECKPOINT_PAGES)
        * (u64::try_from(page).expect("a positive page size") + 24)
        + 32;
    // A lone message's commit writes 15 to 18 pages (docs/benchmarks-history.md, part eight),
    // so these appends write at least three times the bound's worth of WAL.
    let appends = 2 * crate::connection::WAL_AUTOCHECKPOINT_PAGES / 10;

    let mut largest = 0;
    for _ in 0..appends {
        store.append(&message(id, None)).await.expect("appended");
        largest = largest.max(wal_size());
    }
    assert!(
        largest <= threshold,
        "the WAL reached {largest} bytes over {appends} appends; the threshold is \
         {threshold}"
    );
}

/// The WAL's last frame, as its index (the `-shm` file) says: the header's `mxFrame`,
/// a native-endian `u32` at byte 16. Unlike a checkpoint's answer, reading it changes
/// nothing.
async fn wal_frames(db: &DatabaseConnection) -> u32 {
    let file = crate::connection::sqlite_file(db).await.expect("a file");
    let mut shm = file.into_os_string();
    shm.push("-shm");
    let index = std::fs::read(&shm).expect("the WAL index");
    u32::from_ne_bytes(index[16..20].try_into().expect("a header"))
}

/// Waits for the background checkpoint to stop, which it does once a round passes
/// without a commit: a restart does not wait for another checkpoint to finish (SQLite
/// answers busy at once), and the tests' restarts must not meet one.
async fn background_checkpoint_stopped(store: &SeaOrmStore) {
    for _ in 0..100 {
        if !store.appends.lock().checkpointing {
            return;
        }
        tokio::time::sleep(CHECKPOINT_EVERY / 4).await;
    }
    panic!("the background checkpoint went on without commits");
}

/// After a restart, the writer's next commit writes the WAL from its beginning: the
/// WAL then holds that commit's pages only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_has_the_writers_next_commit_start_the_wal_over() {
    let db = sqlite_temp().await.expect("database");
    let store = db.store();
    let id = conversation(&store).await.id;
    // The writer's connection, which the restart runs on.
    store.append(&message(id, None)).await.expect("appended");
    background_checkpoint_stopped(&store).await;
    // Commits no checkpoint copies back (through the pool, which starts none): without
    // a restart, no later commit may start the WAL over.
    for _ in 0..20 {
        conversation(&store).await;
    }
    let before = wal_frames(db.connection()).await;
    assert!(before > 100, "20 commits wrote {before} frames");

    assert!(store.appends.sqlite.restart_wal().await.expect("restart"));
    store.append(&message(id, None)).await.expect("appended");
    let after = wal_frames(db.connection()).await;
    assert!(
        after < before / 5,
        "the WAL held {before} frames before the restart and {after} after one commit"
    );
}

/// A reader still on the WAL keeps it from starting over: the restart gives up after a
/// brief wait rather than holding the writer up for as long as the reader reads, the
/// writer goes on committing, and a restart once the reader is done succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_on_the_wal_holds_a_restart_off_until_it_is_done() {
    let db = sqlite_temp().await.expect("database");
    let store = db.store();
    let id = conversation(&store).await.id;
    for _ in 0..10 {
        store.append(&message(id, None)).await.expect("appended");
    }
    let file = crate::connection::sqlite_file(db.connection())
        .await
        .expect("a file");
    let reader = crate::connection::open_sqlite_reader(&file).expect("reader");
    // A reader that begins with all of the WAL copied back reads the database file
    // alone, and no restart waits for it. So the WAL gets a commit that no background
    // checkpoint copies: one through the pool, which starts none.
    background_checkpoint_stopped(&store).await;
    conversation(&store).await;
    // A read transaction that sees that commit, which a passive checkpoint may copy
    // back; only a restart has to wait for it.
    reader.execute_batch("BEGIN").expect("begun");
    let read: i64 = reader
        .query_row("SELECT count(*) FROM message_history", [], |row| row.get(0))
        .expect("read");
    assert_eq!(read, 10);

    assert!(
        !store.appends.sqlite.restart_wal().await.expect("restart"),
        "the WAL started over under a reader"
    );
    let appended = store.append(&message(id, None)).await.expect("appended");
    assert_eq!(appended.into_message().seq, Seq::new(11));

    reader.execute_batch("COMMIT").expect("read ended");
    background_checkpoint_stopped(&store).await;
    assert!(store.appends.sqlite.restart_wal().await.expect("restart"));
}
