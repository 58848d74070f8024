//! The database: one code path for SQLite and PostgreSQL.
//!
//! `DbConn` is diesel's `MultiConnection` over both backends; the pool picks
//! the backend from the URL scheme. SQLite connections run in WAL mode with
//! `synchronous=FULL` and foreign keys on, and every write transaction starts
//! with `BEGIN IMMEDIATE` while holding an in-process lock, so writers queue in
//! the process instead of backing off inside SQLite (see STYLE.md for the
//! numbers). Blocking database work runs on the blocking thread pool.
//!
//! Single rows are read with `get_result`, not `first`: `first` adds
//! `LIMIT ?`, and SQLite (3.47 on) plans around a bound LIMIT and so
//! re-prepares such a statement every time it runs, which cost a quarter of
//! the writer's time when logging calls (docs/PERFORMANCE.md). `get_result`
//! reads the first row and stops. `first` stays only where an `ORDER BY`
//! picks the row.

pub mod calls;
pub mod patients;
pub mod schema;
pub mod sessions;
pub mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::AppError;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Any number will do, as long as nothing else on the server uses it: it keeps
/// two instances from migrating the same PostgreSQL database at once.
const MIGRATION_LOCK_KEY: i64 = 0x636865636b696e;

/// `temp_store = MEMORY` keeps the savepoint journal of the group-commit
/// writer (src/db/writer.rs) in memory rather than in a temporary file.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;";

diesel::define_sql_function! {
    /// SQL `lower()`, the same in both dialects.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the database is, read from `CHECKIN_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("CHECKIN_DATABASE_URL {0:?} is not a database URL: use sqlite://PATH (for example sqlite://data/checkin.db) or postgres://USER@HOST/DATABASE")]
    BadUrl(String),
    #[error("cannot use the folder {path:?} for the SQLite database: {reason}. Create it, make it writable, or point CHECKIN_DATABASE_URL elsewhere")]
    Folder { path: PathBuf, reason: String },
    #[error("cannot connect to the database at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("cannot migrate the database at {target}: {reason}")]
    Migrate { target: String, reason: String },
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, DbSetupError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| DbSetupError::BadUrl(redact(url)))?;
        if path.is_empty() || path.starts_with(':') || path.contains('?') {
            return Err(DbSetupError::BadUrl(redact(url)));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL without any password, for messages and logs.
    pub fn display(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => redact(url),
        }
    }
}

/// Hides the password in `scheme://user:password@host`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

pub struct Manager {
    target: DatabaseUrl,
}

impl Manager {
    pub(crate) fn open(&self) -> Result<DbConn, diesel::r2d2::Error> {
        use diesel::r2d2::Error;
        match &self.target {
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_string_lossy();
                let mut conn =
                    SqliteConnection::establish(&path).map_err(Error::ConnectionError)?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(Error::QueryError)?;
                Ok(DbConn::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => Ok(DbConn::Pg(
                PgConnection::establish(url).map_err(Error::ConnectionError)?,
            )),
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        self.open()
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// The shared handle: a pool, and on SQLite the lock that lets one write
/// transaction run at a time inside the process.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    url: DatabaseUrl,
    target: String,
    write_lock: Arc<Mutex<()>>,
    /// SQLite's group-commit writer, started by the first `write`.
    writer: Arc<OnceLock<writer::Writer>>,
}

pub type PooledConn = PooledConnection<Manager>;

impl Db {
    /// Opens the pool after one trial connection, so a wrong URL or a missing
    /// server is reported at once with the driver's own words.
    pub fn connect(url: &str, pool_size: u32) -> Result<Db, DbSetupError> {
        let target = DatabaseUrl::parse(url)?;
        if let DatabaseUrl::Sqlite(path) = &target {
            prepare_sqlite_folder(path)?;
        }
        let display = target.display();
        let manager = Manager {
            target: target.clone(),
        };
        let probe = manager.open().map_err(|e| DbSetupError::Connect {
            target: display.clone(),
            reason: e.to_string(),
        })?;
        let pool = Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .build_unchecked(manager);
        drop(probe);
        Ok(Db {
            pool,
            url: target,
            target: display,
            write_lock: Arc::new(Mutex::new(())),
            writer: Arc::new(OnceLock::new()),
        })
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The database's URL without its password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Connections open and idle, for `/metrics`.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    pub fn get(&self) -> Result<PooledConn, AppError> {
        self.pool.get().map_err(|e| {
            tracing::warn!(error = %e, "no database connection");
            AppError::Unavailable
        })
    }

    /// Applies the embedded migrations; returns the versions it applied.
    pub fn migrate(&self) -> Result<Vec<String>, DbSetupError> {
        let fail = |reason: String| DbSetupError::Migrate {
            target: self.target.clone(),
            reason,
        };
        let mut conn = self.pool.get().map_err(|e| fail(e.to_string()))?;
        let applied = match &mut *conn {
            DbConn::Sqlite(c) => c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.iter().map(|m| m.to_string()).collect()),
            DbConn::Pg(c) => {
                diesel::sql_query("SELECT pg_advisory_lock($1)")
                    .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK_KEY)
                    .execute(c)
                    .map_err(|e| fail(e.to_string()))?;
                let result = c
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.iter().map(|m| m.to_string()).collect());
                let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
                    .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK_KEY)
                    .execute(c);
                result
            }
        };
        applied.map_err(|e| fail(e.to_string()))
    }

    /// Is the database answering? Used by `/readyz`; gives up after 2 seconds.
    pub fn ping(&self) -> bool {
        match self.pool.get_timeout(Duration::from_secs(2)) {
            Ok(mut conn) => diesel::sql_query("SELECT 1").execute(&mut *conn).is_ok(),
            Err(_) => false,
        }
    }

    /// Runs `f` on a connection from a blocking thread.
    pub async fn read<F, R>(&self, f: F) -> Result<R, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<R, AppError> + Send + 'static,
        R: Send + 'static,
    {
        let db = self.clone();
        actix_web::web::block(move || db.read_blocking(f))
            .await
            .map_err(|_| AppError::internal("a database task stopped"))?
    }

    /// Runs `f` in a write transaction: everything it writes is committed
    /// together, or nothing is when it returns an error. On SQLite it runs on
    /// the group-commit writer (`writer.rs`), in a savepoint of a transaction
    /// it may share with other requests; on PostgreSQL, in its own
    /// transaction on a blocking thread.
    pub async fn write<F, R>(&self, f: F) -> Result<R, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<R, AppError> + Send + 'static,
        R: Send + 'static,
    {
        if let DatabaseUrl::Sqlite(path) = &self.url {
            let writer = self.writer.get_or_init(|| {
                writer::Writer::start(self.pool.clone(), path.clone(), self.write_lock.clone())
            });
            return writer.write(f).await;
        }
        let db = self.clone();
        actix_web::web::block(move || db.write_blocking(f))
            .await
            .map_err(|_| AppError::internal("a database task stopped"))?
    }

    pub fn read_blocking<F, R>(&self, f: F) -> Result<R, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<R, AppError>,
    {
        let mut conn = self.get()?;
        f(&mut conn)
    }

    pub fn write_blocking<F, R>(&self, f: F) -> Result<R, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<R, AppError>,
    {
        let _one_writer = match self.backend() {
            // A panic in another writer cannot leave the database half-written
            // (its transaction rolled back), so the lock is still good.
            Backend::Sqlite => Some(self.write_lock.lock().unwrap_or_else(|p| p.into_inner())),
            Backend::Postgres => None,
        };
        let mut conn = self.get()?;
        in_write_transaction(&mut conn, f)
    }
}

/// A consistent copy of a live SQLite database with `VACUUM INTO`, which
/// reads one snapshot while writers go on. PostgreSQL is backed up with
/// `pg_dump` (docs/operations.md).
pub fn backup(db: &Db, to: &Path) -> anyhow::Result<()> {
    use anyhow::{bail, Context};
    if db.backend() != Backend::Sqlite {
        bail!("checkin backup copies SQLite databases; for PostgreSQL use pg_dump (see docs/operations.md)");
    }
    if to.exists() {
        bail!(
            "{} already exists; choose a new file for the backup",
            to.display()
        );
    }
    if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut conn = db.pool.get().context("no database connection")?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(to.to_string_lossy().to_string())
        .execute(&mut *conn)
        .with_context(|| format!("backing up to {}", to.display()))?;
    Ok(())
}

/// `BEGIN IMMEDIATE` on SQLite (take the write lock now, not at the first
/// write, so a transaction never fails half-way with "database is locked"),
/// a plain `BEGIN` on PostgreSQL.
pub fn in_write_transaction<R, E>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<R, E>,
) -> Result<R, E>
where
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
        DbConn::Pg(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    let outcome = f(conn);
    let finish = match (&outcome, conn) {
        (Ok(_), DbConn::Sqlite(c)) => AnsiTransactionManager::commit_transaction(c),
        (Ok(_), DbConn::Pg(c)) => AnsiTransactionManager::commit_transaction(c),
        (Err(_), DbConn::Sqlite(c)) => AnsiTransactionManager::rollback_transaction(c),
        (Err(_), DbConn::Pg(c)) => AnsiTransactionManager::rollback_transaction(c),
    };
    match outcome {
        Ok(value) => finish.map(|()| value).map_err(E::from),
        // The caller's error says more than a failed rollback would.
        Err(e) => Err(e),
    }
}

fn prepare_sqlite_folder(db_path: &Path) -> Result<(), DbSetupError> {
    let folder = match db_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fail = |reason: String| DbSetupError::Folder {
        path: folder.clone(),
        reason,
    };
    if folder.exists() && !folder.is_dir() {
        return Err(fail("it is a file, not a folder".into()));
    }
    std::fs::create_dir_all(&folder).map_err(|e| fail(e.to_string()))?;
    // Write access is what SQLite needs for its WAL and journal files.
    let probe = folder.join(format!(".checkin-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| fail(e.to_string()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Runs a statement on the connection's own backend rather than through
/// diesel's `MultiConnection`, which builds every statement's SQL again and
/// prepares writes anew each time. For the statements every logged call runs
/// (docs/PERFORMANCE.md); elsewhere the plain form reads better.
/// `native!(conn, |c| query.execute(c))`
#[macro_export]
macro_rules! native {
    ($conn:expr, |$c:ident| $body:expr) => {{
        #[allow(unused_imports)]
        use diesel::RunQueryDsl as _;
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Pg($c) => $body,
        }
    }};
}

/// Inserts one row and returns its new `id`. Both backends support
/// `RETURNING`; diesel's `MultiBackend` does not, hence the match.
#[macro_export]
macro_rules! insert_returning_id {
    ($conn:expr, $table:expr, $values:expr, $id:expr) => {{
        use diesel::RunQueryDsl as _;
        match $conn {
            $crate::db::DbConn::Sqlite(c) => diesel::insert_into($table)
                .values($values)
                .returning($id)
                .get_result::<i64>(c),
            $crate::db::DbConn::Pg(c) => diesel::insert_into($table)
                .values($values)
                .returning($id)
                .get_result::<i64>(c),
        }
    }};
}

/// Inserts a `Vec` of rows: one statement on PostgreSQL; one statement per
/// row on SQLite, which cannot mix default and given values in one `VALUES`
/// list (inside the caller's transaction that costs microseconds a row).
#[macro_export]
macro_rules! insert_batch {
    ($conn:expr, $table:expr, $rows:expr) => {{
        use diesel::RunQueryDsl as _;
        let rows = $rows;
        match $conn {
            $crate::db::DbConn::Sqlite(c) => {
                let mut written = 0;
                for row in rows {
                    written += diesel::insert_into($table).values(row).execute(c)?;
                }
                Ok::<usize, diesel::result::Error>(written)
            }
            $crate::db::DbConn::Pg(c) => diesel::insert_into($table).values(rows).execute(c),
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/checkin.db").unwrap(),
            DatabaseUrl::Sqlite("data/checkin.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/checkin/checkin.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/checkin/checkin.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://app@db/checkin")
                .unwrap()
                .backend(),
            Backend::Postgres
        );
        for bad in [
            "mysql://x/y",
            "checkin.db",
            "sqlite://",
            "sqlite::memory:",
            "",
        ] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn passwords_never_reach_messages() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db:5432/checkin").unwrap();
        assert_eq!(url.display(), "postgres://app:***@db:5432/checkin");
        let err = DatabaseUrl::parse("mysql://root:s3cret@db/x").unwrap_err();
        assert!(!err.to_string().contains("s3cret"));
    }
}
