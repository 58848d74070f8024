//! Group commit for SQLite: one thread runs the service's write transactions,
//! several to a commit.
//!
//! SQLite with `synchronous=FULL` syncs the WAL to disk at every commit; on
//! the project's machine that is about 0.9 ms, so one commit per request
//! caps every writing route (logging a call, and every page that records an
//! audit row) near 1,100 requests/s however fast the rest is. Here the
//! writes waiting when the writer becomes free run in one `BEGIN IMMEDIATE`
//! transaction, each inside its own savepoint, and are committed with one
//! sync. The batch is only what has queued up, so a lone write is never held
//! back.
//!
//! Each request keeps its own all-or-nothing: its savepoint is rolled back
//! when it returns an error (or panics), so nothing it wrote stays, and its
//! neighbours are untouched. No request is answered before the commit that
//! holds its writes returned, so a 2xx still means on disk (SECURITY.md 22).
//! When the commit itself fails, every request of the batch is answered 503
//! and none of their writes stays.
//!
//! The writer holds the same in-process write lock as `Db::write_blocking`
//! (the command-line tools and background jobs), so all writes still queue
//! in the process rather than inside SQLite.
//!
//! The writer keeps its own connection, with automatic WAL checkpoints off:
//! a second thread checkpoints ten times a second (`PASSIVE`, which waits
//! for no one), so the copying of the WAL back into the database happens
//! beside the writer instead of inside a request's commit. Only a checkpoint
//! that ends with nothing new written lets the next transaction start the
//! WAL file over, and without that the file grows without end, so about
//! once a second the writer finishes a checkpoint itself between two
//! batches. Every request queued meanwhile waits for it, so the writer picks
//! its moment: just after a background pass that left little to copy. A
//! logged call writes ten or so pages, and at a few thousand calls a second
//! a checkpoint that starts from a quarter of a second behind held the
//! writer for 40–70 ms, which was the whole of the calls' p99. When the
//! background passes never catch up (a reader holding an old snapshot), the
//! writer checkpoints anyway after ten seconds, so the WAL stays bounded.
//!
//! A checkpoint that does not reach the end of the WAL leaves the pages it
//! copied unsynced (the WAL still holds them); the one that does reach the
//! end syncs the database file, and so pays for every page copied since the
//! last sync: 25 ms was seen. So the background thread syncs the database
//! file itself after each pass, and the writer's sync finds little to do.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::Pool;
use diesel::{RunQueryDsl, SqliteConnection};

use super::{DatabaseUrl, DbConn, Manager};
use crate::error::AppError;

/// How many requests share a commit at most: at 0.1–0.3 ms of work each this
/// keeps a batch well under the 25 ms p99 the service aims for.
const MAX_BATCH: usize = 64;

const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The writer finishes a checkpoint (so the WAL can start over) this often…
const WRITER_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// …once the last background pass left at most this many WAL frames (4 KiB
/// pages) uncopied: a few milliseconds of copying…
const CHEAP_CHECKPOINT_FRAMES: u64 = 2_048;

/// …or after this long, however far behind the passes are.
const WRITER_CHECKPOINT_LATEST: Duration = Duration::from_secs(10);

/// What the background checkpoints report to the writer.
#[derive(Default)]
struct Progress {
    /// Background passes finished so far.
    passes: AtomicU64,
    /// WAL frames the last pass left uncopied.
    left: AtomicU64,
}

/// A failure that repeats (a full disk) is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// `PRAGMA wal_checkpoint`'s one row.
#[derive(diesel::QueryableByName, Clone, Copy, PartialEq, Eq)]
struct CheckpointRow {
    /// 1 when another connection was checkpointing (the writer and the
    /// background thread can meet): nothing was done, `log` and
    /// `checkpointed` are then -1.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    checkpointed: i32,
}

impl CheckpointRow {
    /// WAL frames not yet copied into the database.
    fn left(&self) -> u64 {
        u64::try_from(self.log - self.checkpointed).unwrap_or(0)
    }
}

/// One `PASSIVE` checkpoint; `None` when another one was running.
fn checkpoint_passive(conn: &mut DbConn) -> Result<Option<CheckpointRow>, String> {
    let row: CheckpointRow = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
        .get_result(sqlite(conn))
        .map_err(|e| e.to_string())?;
    Ok((row.busy == 0 && row.log >= 0).then_some(row))
}

/// Logs the first failure, then at most one a minute while they go on.
#[derive(Default)]
struct Warnings {
    last: Option<Instant>,
}

impl Warnings {
    fn failed(&mut self, error: &str) {
        if self.last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            self.last = Some(Instant::now());
            tracing::warn!(error, "a WAL checkpoint failed; the next one tries again");
        }
    }
}

/// A descriptor of the database file for syncing it, opened once per file
/// and never closed. Closing any descriptor of a file drops every POSIX lock
/// the process holds on it, SQLite's included, and another process could
/// then take the database from under this one
/// (sqlite.org/howtocorrupt.html, 2.2). So every descriptor opened here is
/// kept for the life of the process: one per database file, looked up by
/// device and inode.
fn kept_open(path: &Path) -> std::io::Result<&'static std::fs::File> {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    use std::sync::OnceLock;
    type Open = Mutex<HashMap<(u64, u64), &'static std::fs::File>>;
    static OPEN: OnceLock<Open> = OnceLock::new();
    let meta = std::fs::metadata(path)?;
    let mut open = OPEN
        .get_or_init(Open::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(file) = open.get(&(meta.dev(), meta.ino())) {
        return Ok(file);
    }
    let file: &'static std::fs::File = Box::leak(Box::new(std::fs::File::open(path)?));
    // Keyed by what was opened, should the path have changed since.
    let opened = file.metadata()?;
    open.insert((opened.dev(), opened.ino()), file);
    Ok(file)
}

/// Runs one request's writes on the writer's connection, inside the
/// savepoint the writer opened, and returns what answers the request once
/// the batch has committed. Dropping that answer unsent tells the request
/// its writes were not kept (503).
type Job = Box<dyn FnOnce(&mut DbConn) -> Ran + Send>;

type Answer = Box<dyn FnOnce() + Send>;

struct Ran {
    ok: bool,
    answer: Answer,
}

/// The sending halves, kept in `Db`. Both threads end when the last `Db`
/// clone is dropped, which closes their channels.
pub(super) struct Writer {
    jobs: Sender<Job>,
    _checkpoints: Sender<()>,
}

impl Writer {
    /// The writer for the SQLite database at `file`, with its own
    /// connection to it; the checkpoint thread uses `pool`.
    pub(super) fn start(pool: Pool<Manager>, file: PathBuf, write_lock: Arc<Mutex<()>>) -> Writer {
        let own = Manager {
            target: DatabaseUrl::Sqlite(file.clone()),
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let (checkpoints, stop) = mpsc::channel::<()>();
        let progress = Arc::new(Progress::default());
        let seen = progress.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&own, &write_lock, queue, &seen))
            .expect("the OS starts a thread");
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint(&pool, &file, &stop, &progress))
            .expect("the OS starts a thread");
        Writer {
            jobs,
            _checkpoints: checkpoints,
        }
    }

    /// Queues `f` and waits for the commit that holds its writes.
    pub(super) async fn write<F, R>(&self, f: F) -> Result<R, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<R, AppError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<R, AppError>>();
        let job: Job = Box::new(move |conn| {
            let outcome = f(conn);
            Ran {
                ok: outcome.is_ok(),
                answer: Box::new(move || {
                    let _ = reply.send(outcome);
                }),
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| AppError::internal("the database writer stopped"))?;
        answer.await.unwrap_or(Err(AppError::Unavailable))
    }
}

fn run(own: &Manager, write_lock: &Mutex<()>, queue: Receiver<Job>, progress: &Progress) {
    let mut conn: Option<DbConn> = None;
    let mut checkpointed = Instant::now();
    let mut passes_then = 0;
    let mut warnings = Warnings::default();
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let _one_writer = write_lock.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_none() {
            match open_writer_connection(own) {
                Ok(c) => conn = Some(c),
                // The jobs are dropped unrun: each request gets 503.
                Err(e) => {
                    tracing::warn!(error = %e, "no database connection for a write batch");
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            if !commit_batch(c, batch) {
                // Closing the connection ends whatever is left of the
                // transaction; the next batch opens a fresh one.
                conn = None;
            } else if checkpoint_now(checkpointed.elapsed(), progress, passes_then) {
                let started = Instant::now();
                let passes = progress.passes.load(Ordering::Acquire);
                match checkpoint_passive(c) {
                    Ok(Some(row)) => {
                        tracing::debug!(
                            ms = started.elapsed().as_secs_f64() * 1e3,
                            since_last_s = checkpointed.elapsed().as_secs_f64(),
                            left = row.left(),
                            "the writer checkpointed"
                        );
                        checkpointed = Instant::now();
                        passes_then = passes;
                    }
                    // A background pass is running: try again after the
                    // next batch.
                    Ok(None) => {}
                    Err(e) => {
                        warnings.failed(&e);
                        checkpointed = Instant::now();
                    }
                }
            }
        }
    }
}

/// Whether the writer should finish a checkpoint now, between two batches.
fn checkpoint_now(since_last: Duration, progress: &Progress, passes_then: u64) -> bool {
    let fresh_pass = progress.passes.load(Ordering::Acquire) != passes_then;
    let cheap = fresh_pass && progress.left.load(Ordering::Acquire) <= CHEAP_CHECKPOINT_FRAMES;
    (since_last >= WRITER_CHECKPOINT_EVERY && cheap) || since_last >= WRITER_CHECKPOINT_LATEST
}

fn open_writer_connection(own: &Manager) -> Result<DbConn, diesel::r2d2::Error> {
    let mut conn = own.open()?;
    sqlite(&mut conn)
        .batch_execute("PRAGMA wal_autocheckpoint = 0;")
        .map_err(diesel::r2d2::Error::QueryError)?;
    Ok(conn)
}

/// Checkpoints the WAL until the writer goes away, syncing the pages each
/// pass copied (when the WAL changed since the last pass; an idle service
/// syncs nothing) and telling the writer how far behind the pass left it.
fn checkpoint(pool: &Pool<Manager>, file: &Path, stop: &Receiver<()>, progress: &Progress) {
    let mut last: Option<CheckpointRow> = None;
    let mut kept: Option<&'static std::fs::File> = None;
    let mut warnings = Warnings::default();
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        match pass(pool, file, &mut kept, last) {
            Ok(Some(row)) => {
                last = Some(row);
                progress.left.store(row.left(), Ordering::Release);
                progress.passes.fetch_add(1, Ordering::AcqRel);
            }
            // The writer was checkpointing: not a pass.
            Ok(None) => {}
            Err(e) => warnings.failed(&e),
        }
    }
}

/// One background pass: a checkpoint, then a sync of the database file when
/// the WAL changed since the `last` pass. `None` when the writer was
/// checkpointing.
fn pass(
    pool: &Pool<Manager>,
    file: &Path,
    kept: &mut Option<&'static std::fs::File>,
    last: Option<CheckpointRow>,
) -> Result<Option<CheckpointRow>, String> {
    let row = {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        checkpoint_passive(&mut conn)?
    };
    let Some(row) = row else {
        return Ok(None);
    };
    if last != Some(row) {
        let syncing = |e: std::io::Error| format!("syncing {}: {e}", file.display());
        let descriptor = match kept {
            Some(f) => *f,
            None => *kept.insert(kept_open(file).map_err(syncing)?),
        };
        descriptor.sync_data().map_err(syncing)?;
    }
    Ok(Some(row))
}

/// Runs one batch; false when the connection is left in an unknown state.
fn commit_batch(conn: &mut DbConn, batch: Vec<Job>) -> bool {
    if let Err(e) = AnsiTransactionManager::begin_transaction_sql(sqlite(conn), "BEGIN IMMEDIATE") {
        tracing::warn!(error = %e, "a write batch could not start");
        return false;
    }
    let mut answers = Vec::with_capacity(batch.len());
    for job in batch {
        match run_in_savepoint(conn, job) {
            Ok(answer) => answers.push(answer),
            Err(e) => {
                tracing::error!(error = %e, "a write batch failed; its requests get 503");
                let _ = sqlite(conn).batch_execute("ROLLBACK");
                return false;
            }
        }
    }
    match AnsiTransactionManager::commit_transaction(sqlite(conn)) {
        Ok(()) => {
            answers.into_iter().for_each(|answer| answer());
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "a write batch did not commit; its requests get 503");
            let _ = sqlite(conn).batch_execute("ROLLBACK");
            false
        }
    }
}

/// One job in a savepoint: kept when it succeeded, rolled back when it
/// returned an error (its answer, the error, is still sent after the
/// commit). A panic drops its answer (503 for that request) and rolls back
/// the whole batch, since diesel's transaction depth is then unknown.
fn run_in_savepoint(conn: &mut DbConn, job: Job) -> Result<Answer, diesel::result::Error> {
    AnsiTransactionManager::begin_transaction(sqlite(conn))?;
    let ran = catch_unwind(AssertUnwindSafe(|| job(conn)))
        .map_err(|_| diesel::result::Error::RollbackTransaction)?;
    if ran.ok {
        AnsiTransactionManager::commit_transaction(sqlite(conn))?;
    } else {
        AnsiTransactionManager::rollback_transaction(sqlite(conn))?;
    }
    Ok(ran.answer)
}

fn sqlite(conn: &mut DbConn) -> &mut SqliteConnection {
    match conn {
        DbConn::Sqlite(c) => c,
        DbConn::Pg(_) => unreachable!("the group-commit writer runs only on SQLite"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(passes: u64, left: u64) -> Progress {
        Progress {
            passes: AtomicU64::new(passes),
            left: AtomicU64::new(left),
        }
    }

    #[test]
    fn the_writer_checkpoints_after_a_pass_that_nearly_caught_up() {
        let second = Duration::from_secs(1);
        // A fresh pass that left little: yes, once a second has gone by.
        assert!(checkpoint_now(second, &progress(5, 100), 4));
        assert!(!checkpoint_now(second / 2, &progress(5, 100), 4));
        // No pass since the last checkpoint, or one far behind: wait…
        assert!(!checkpoint_now(second * 3, &progress(4, 0), 4));
        assert!(!checkpoint_now(
            second * 3,
            &progress(5, CHEAP_CHECKPOINT_FRAMES + 1),
            4
        ));
        // …but not for ever.
        assert!(checkpoint_now(
            WRITER_CHECKPOINT_LATEST,
            &progress(4, u64::MAX),
            4
        ));
    }
}
