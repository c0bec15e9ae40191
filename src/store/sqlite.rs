//! The embedded default store: one SQLite file in WAL mode.
//!
//! One connection behind a mutex, used from tokio's blocking pool: SQLite serialises writers anyway, and a single
//! connection keeps every statement cached and every method trivially atomic. `synchronous=FULL` makes every
//! acknowledged write durable across power loss, not only across a process crash.
//!
//! The statements and the `Store` methods are shared with PostgreSQL ([`super::sql`]); this file runs them (reads
//! on the reader connections, writes on the writer), maps SQLite's errors and lists the SQLite migrations.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, Row, ToSql, params, params_from_iter};

use super::executor::Executor;
use super::sql::{self, Arg, Decode, Param, SqlRow, Step, Stmt, args};
use super::{Conflict, Idempotency, Idempotent, StoreError, SummaryPage};
use crate::domain::Organization;

/// Versioned migrations, applied in order at open.
pub const MIGRATIONS: &[(i64, &str)] = sql::migrations!("sqlite":
    1 => "0001_init.sql",
    2 => "0002_user_lookup_indexes.sql",
    3 => "0003_credential_generations.sql",
    4 => "0004_mail_domains.sql",
    5 => "0005_pat_summaries.sql",
    6 => "0006_import_records.sql",
    7 => "0007_pats_in_page_order.sql",
);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The one writer (SQLite serialises writers anyway).
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections used inline on the calling thread: a point read takes microseconds, while a hop to
    /// the blocking pool and back cost more than the query itself (profiled: a third of the server's time was
    /// thread switching). In WAL mode readers never wait for the writer. Empty for an in-memory store, whose
    /// data only its own connection can see.
    ///
    /// A read takes the first free reader rather than the next in turn: each connection has its own page cache, and
    /// taking turns made every cache see every fourth read, so a working set that fits one cache missed in all four
    /// (`pread` per verification under load). Concurrent reads still spread over the others.
    readers: Arc<Vec<Mutex<Connection>>>,
    /// Keeps a read mark for a burst of reads (none for an in-memory store).
    read_mark: Option<Arc<ReadMark>>,
}

/// A connection that keeps a read transaction open while a worker thread is busy, so that the readers' own read
/// transactions take their WAL read mark without a system call (issue 14).
///
/// Each SQLite read transaction locks a read mark of the WAL index (the `-shm` file) and unlocks it at its end: two
/// `fcntl` calls, which were 8 % of the server's time answering GetPersonalAccessTokenMetadata (`perf record`;
/// `strace -c`: 2 `fcntl` a request). SQLite counts the shared locks its connections in one process hold on a mark
/// and makes the system call only for the first lock and the last unlock; while this connection holds the mark the
/// readers use, theirs cost nothing. What a reader sees does not change: every reader still begins its own read
/// transaction on the latest commit (a reader picks the mark naming the newest frame, and reads up to the newest
/// frame whatever mark it holds); a kept mark only stops a checkpoint from copying frames past it into the database
/// file and the WAL from starting over from its beginning, like any reader in progress does.
///
/// So the mark is kept only while it is used: it is taken by the second read on a runtime's worker thread since that
/// worker was last idle (a lone request would pay for it and save nothing) and let go when the worker is about to park
/// ([`let_go_of_read_marks`], run by [`crate::runtime::on_runtime`]'s hook) once it has been kept for [`MARK_SPAN`]: a
/// busy server's worker parks after every batch of a few requests, and letting go at each of those parks cost the
/// mark's three statements and two `fcntl` a batch (3 % of a 10-per-page list's time, `perf record`); an idle server's
/// worker parks at least once a second anyway (the `DateLastUsed` flusher's tick) and lets go then. It is also let go
/// before every write of this process (so that the write's automatic checkpoint is not held back) and not taken until
/// the write has ended. A checkpoint of another process (the CLI) waits for it like for any other reader, at most
/// [`MARK_SPAN`] while requests keep coming and about a second after they stop.
#[derive(Debug)]
struct ReadMark {
    conn: Mutex<Connection>,
    /// Whether `conn` has its read transaction open.
    kept: AtomicBool,
    /// Writes of this process in progress: no mark is taken meanwhile.
    writes: AtomicUsize,
}

thread_local! {
    /// Whether this thread is a runtime worker that runs [`let_go_of_read_marks`] when it is about to park: set by
    /// the first run (blocking-pool threads, and runtimes without the hook, never take a mark).
    static LETS_GO: Cell<bool> = const { Cell::new(false) };
    /// The marks taken on this thread and when, let go when it is about to park once [`MARK_SPAN`] old.
    static KEPT: Cell<Vec<(Arc<ReadMark>, Instant)>> = const { Cell::new(Vec::new()) };
    /// Reads on this thread since it last went idle: a mark is taken from the second on.
    static READS_SINCE_IDLE: Cell<u32> = const { Cell::new(0) };
}

/// How long a worker keeps a read mark before letting go of it when it parks (see [`ReadMark`]).
const MARK_SPAN: Duration = Duration::from_millis(20);

/// Lets go of the read marks taken on this thread at least [`MARK_SPAN`] ago (its worker is about to park), and
/// marks the thread as one that does so.
pub fn let_go_of_read_marks() {
    LETS_GO.with(|on| on.set(true));
    READS_SINCE_IDLE.with(|n| n.set(0));
    let mut kept = KEPT.take();
    if !kept.is_empty() {
        let now = Instant::now();
        kept.retain(|(mark, since)| {
            let old = now.duration_since(*since) >= MARK_SPAN;
            if old {
                mark.let_go();
            }
            !old
        });
    }
    KEPT.set(kept);
}

impl ReadMark {
    fn open(path: &str) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Mutex::new(read_only(path)?),
            kept: AtomicBool::new(false),
            writes: AtomicUsize::new(0),
        })
    }

    /// Takes the mark for the reads of this burst, unless it is kept already, a write is in progress, this thread
    /// never lets go of it, or another thread is taking it right now. Not for the first read since the worker was
    /// idle: a lone request (a server that is not busy) would pay for taking and letting go of the mark (three
    /// statements) and save nothing.
    fn keep(self: &Arc<Self>) {
        if self.kept.load(Ordering::Acquire)
            || self.writes.load(Ordering::Acquire) > 0
            || !LETS_GO.with(Cell::get)
        {
            return;
        }
        let reads = READS_SINCE_IDLE.with(|n| {
            let reads = n.get().saturating_add(1);
            n.set(reads);
            reads
        });
        if reads < 2 {
            return;
        }
        let Ok(conn) = self.conn.try_lock() else {
            return;
        };
        if self.kept.load(Ordering::Acquire) || self.writes.load(Ordering::Acquire) > 0 {
            return;
        }
        // `BEGIN` opens no read transaction by itself: the first read of the database does.
        let begun = conn.prepare_cached("BEGIN").and_then(|mut s| s.execute([]));
        let read = begun.and_then(|_| {
            conn.prepare_cached("SELECT 1 FROM sqlite_schema LIMIT 1")
                .and_then(|mut s| s.query([]).and_then(|mut rows| rows.next().map(drop)))
        });
        if read.is_err() {
            // An optimisation only: a mark not kept costs the readers their system calls, nothing else.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return;
        }
        self.kept.store(true, Ordering::Release);
        let now = Instant::now();
        let mut kept = KEPT.take();
        match kept.iter_mut().find(|(m, _)| Arc::ptr_eq(m, self)) {
            Some((_, since)) => *since = now,
            None => kept.push((self.clone(), now)),
        }
        KEPT.set(kept);
    }

    /// Ends the read transaction, if it is open.
    fn let_go(&self) {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.kept.swap(false, Ordering::AcqRel)
            && conn
                .prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
                .is_err()
            && !conn.is_autocommit()
        {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}

/// A read-only connection to the file at `path`.
fn read_only(path: &str) -> Result<Connection, StoreError> {
    let reader = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend)?;
    reader
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    Ok(reader)
}

/// Read-only connections per file store.
const READERS: usize = 4;

/// The page cache of each reader (KiB; SQLite's default is 2,000). A cache fills only as far as it is used, and
/// reads go to the first free reader, so under one worker thread one cache holds the working set.
const READER_CACHE_KIB: u32 = 16 * 1024;

/// The page cache of a bulk import's transaction (KiB).
const BULK_CACHE_KIB: u32 = 256 * 1024;

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Maps a unique-index violation to the rule it broke.
fn map_write_error(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, Some(msg)) = &e
        && err.code == rusqlite::ErrorCode::ConstraintViolation
    {
        let conflict = if msg.contains("organizations.alias_key") {
            Some(Conflict::Alias)
        } else if msg.contains("organizations.directory_id") {
            Some(Conflict::Directory)
        } else if msg.contains("users.name_key") {
            Some(Conflict::UserName)
        } else if msg.contains("users.email_key") || msg.contains("email_addresses.") {
            Some(Conflict::Email)
        } else if msg.contains("mail_domains.") {
            Some(Conflict::MailDomain)
        } else if msg.contains("FOREIGN KEY") {
            Some(Conflict::Reference)
        } else if msg.ends_with("organizations.id") || msg.ends_with("users.id") {
            Some(Conflict::Id)
        } else if msg.contains("personal_access_tokens") {
            Some(Conflict::TokenId)
        } else {
            None
        };
        if let Some(c) = conflict {
            return StoreError::Conflict(c);
        }
    }
    backend(e)
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` (`:memory:` for a throw-away store) and migrates it.
    pub fn open(path: &str) -> Result<Self, StoreError> {
        // The file holds password hashes: create it 0600 before SQLite does (SQLite would make it 0644, and gives
        // the -wal and -shm files the database file's mode).
        let on_disk = path != ":memory:" && !path.starts_with("file:");
        if on_disk {
            crate::private_files::create_private(std::path::Path::new(path))
                .map_err(|e| StoreError::Backend(format!("cannot create {path}: {e}")))?;
        }
        let mut conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(backend)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(backend)?;
        migrate(&mut conn)?;
        if on_disk {
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{path}{suffix}");
                crate::private_files::warn_if_exposed(std::path::Path::new(&file), "database file");
            }
        }
        let mut readers = Vec::new();
        let mut read_mark = None;
        if path != ":memory:" && !path.starts_with("file::memory:") {
            read_mark = Some(Arc::new(ReadMark::open(path)?));
            for _ in 0..READERS {
                let reader = read_only(path)?;
                reader.set_prepared_statement_cache_capacity(64);
                reader
                    .execute_batch(&format!("PRAGMA cache_size = -{READER_CACHE_KIB}"))
                    .map_err(backend)?;
                readers.push(Mutex::new(reader));
            }
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(readers),
            read_mark,
        })
    }

    /// Runs a read: inline on a free reader connection, or through the writer for an in-memory store.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.run(move |conn| f(conn)).await;
        }
        self.on_reader(f)
    }

    /// Runs `f` inline on a free reader connection (there are readers: the store is a file).
    fn on_reader<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        if let Some(mark) = &self.read_mark {
            mark.keep();
        }
        for reader in self.readers.iter() {
            if let Ok(guard) = reader.try_lock() {
                return f(&guard);
            }
        }
        // All busy (more concurrent reads than readers): wait for one, picked at random so that waiting threads
        // spread over the readers; reads are short.
        let which = rand::random::<u64>() as usize % self.readers.len();
        let guard = self.readers[which]
            .lock()
            .map_err(|_| StoreError::Backend("reader mutex poisoned".into()))?;
        f(&guard)
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        let mark = self.read_mark.clone();
        tokio::task::spawn_blocking(move || {
            // Without this process's own read mark, so that the write's automatic checkpoint can copy every frame.
            let _writing = mark.as_deref().map(Writing::new);
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("connection mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }
}

/// A write in progress: the read mark is let go and not taken again until it ends.
struct Writing<'a>(&'a ReadMark);

impl<'a> Writing<'a> {
    fn new(mark: &'a ReadMark) -> Self {
        mark.writes.fetch_add(1, Ordering::AcqRel);
        mark.let_go();
        Self(mark)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.writes.fetch_sub(1, Ordering::AcqRel);
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock first, so two processes starting on one file never both migrate.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
    )
    .map_err(backend)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let newest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > newest {
        return Err(StoreError::Backend(format!(
            "database schema version {current} is newer than this program knows ({newest})"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql).map_err(backend)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            params![version, crate::clock::Clock::real_now_ms()],
        )
        .map_err(backend)?;
    }
    if current < newest {
        fill_summaries(&tx)?;
    }
    tx.commit().map_err(backend)
}

impl SqlRow for Row<'_> {
    sql::sql_row_getters!(get, backend);
}

/// How SQLite binds a value: text and bytes where they are.
fn bound(arg: Arg<'_>) -> ToSqlOutput<'_> {
    match arg {
        Arg::Null => ToSqlOutput::Owned(Value::Null),
        Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Arg::Int(i) => ToSqlOutput::Owned(Value::Integer(i)),
        Arg::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(b))),
        Arg::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(bound(*self))
    }
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(bound(self.as_arg()))
    }
}

/// Runs a query through the connection's statement cache and decodes every row.
fn query<T>(
    conn: &Connection,
    sql: Stmt,
    args: &[Param],
    decode: Decode<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql.sqlite).map_err(backend)?;
    let mut rows = stmt.query(params_from_iter(args)).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Appends the stored summaries of a page to `body`, copied straight from SQLite's row buffer.
fn summary_page<P: ToSql>(
    conn: &Connection,
    sql: Stmt,
    args: &[P],
    limit: usize,
    body: Vec<u8>,
) -> Result<SummaryPage, StoreError> {
    let mut stmt = conn.prepare_cached(sql.sqlite).map_err(backend)?;
    let mut rows = stmt.query(params_from_iter(args)).map_err(backend)?;
    let mut page = SummaryPage::new(body);
    while let Some(row) = rows.next().map_err(backend)? {
        let column = |i| row.get_ref(i).map_err(backend);
        let summary = column(2)?.as_bytes().map_err(backend)?;
        let position = || -> Result<_, StoreError> {
            Ok((
                column(0)?.as_i64().map_err(backend)?,
                column(1)?.as_str().map_err(backend)?,
            ))
        };
        if !page.push(limit, summary, position)? {
            break;
        }
    }
    Ok(page)
}

/// Fills the summary of every row written before summaries were stored (right after the migration that added them).
fn fill_summaries(tx: &Connection) -> Result<(), StoreError> {
    let missing = query(tx, sql::PATS_WITHOUT_SUMMARY, &[], sql::pat)?;
    for token in &missing {
        exec(
            tx,
            &(sql::SET_SUMMARY, args![&token.id, token.summary_json()]),
        )?;
    }
    Ok(())
}

/// Runs one write; a broken uniqueness rule becomes its [`Conflict`].
fn exec(conn: &Connection, (sql, args): &Step) -> Result<usize, StoreError> {
    conn.prepare_cached(sql.sqlite)
        .map_err(backend)?
        .execute(params_from_iter(args))
        .map_err(map_write_error)
}

/// Runs writes in one IMMEDIATE transaction (taking the write lock first, so it never has to upgrade a read lock
/// that another process holds); returns the rows the last one changed.
fn transaction(conn: &mut Connection, steps: &[Step]) -> Result<usize, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let mut changed = 0;
    for step in steps {
        changed = exec(&tx, step)?;
    }
    tx.commit().map_err(backend)?;
    Ok(changed)
}

#[async_trait]
impl Executor for SqliteStore {
    async fn summaries(
        &self,
        sql: Stmt,
        args: &[Arg<'_>],
        limit: usize,
        body: Vec<u8>,
    ) -> Result<SummaryPage, StoreError> {
        if self.readers.is_empty() {
            // In memory: the writer connection, on a blocking thread, which needs values of its own.
            let args: Vec<Param> = args.iter().map(|a| a.to_param()).collect();
            return self
                .run(move |conn| summary_page(conn, sql, &args, limit, body))
                .await;
        }
        self.on_reader(|conn| summary_page(conn, sql, args, limit, body))
    }

    async fn all<T: Send + 'static>(
        &self,
        sql: Stmt,
        args: Vec<Param>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.read(move |conn| query(conn, sql, &args, decode)).await
    }

    async fn write(&self, _retry_safe: bool, steps: Vec<Step>) -> Result<u64, StoreError> {
        let changed = self.run(move |conn| match steps.as_slice() {
            [step] => exec(conn, step),
            steps => transaction(conn, steps),
        });
        Ok(changed.await? as u64)
    }

    async fn create_org(
        &self,
        inserts: Vec<Step>,
        org: Organization,
        idempotency: Option<Idempotency>,
    ) -> Result<Idempotent, StoreError> {
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            if let Some(i) = &idempotency {
                let args = args![&org.account, &org.region, i.operation, &i.token];
                let found = query(&tx, sql::READ_CLIENT_TOKEN, &args, sql::client_token)?;
                if let Some(rec) = sql::live(found.into_iter().next(), i.now_ms) {
                    return Ok(if rec.request_hash == i.request_hash {
                        Idempotent::Replay(rec.result)
                    } else {
                        Idempotent::Mismatch
                    });
                }
            }
            for insert in &inserts {
                exec(&tx, insert)?;
            }
            if let Some(i) = &idempotency {
                exec(&tx, &sql::claim_client_token(&org.account, &org.region, i))?;
            }
            tx.commit().map_err(backend)?;
            Ok(Idempotent::Done)
        })
        .await
    }

    async fn insert_if_live(&self, insert: Step, check: Vec<Param>) -> Result<bool, StoreError> {
        self.run(move |conn| {
            // One writer connection: the check and the insert cannot interleave with a reset.
            let tx = conn.transaction().map_err(backend)?;
            if query(&tx, sql::LIVE_SESSION, &check, |_| Ok(()))?.is_empty() {
                return Ok(false);
            }
            exec(&tx, &insert)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn bulk_write(&self, steps: Vec<Step>) -> Result<(), StoreError> {
        // Random keys (token ids, secret digests) dirty pages all over their indexes: with SQLite's default 2 MiB
        // cache the transaction spilled and rewrote the same pages many times (1M tokens took over a minute). The
        // import gets a large cache for its transaction; the writer goes back to the default afterwards, so a
        // server's memory does not grow with the writes it serves.
        self.run(move |conn| {
            conn.execute_batch(&format!("PRAGMA cache_size = -{BULK_CACHE_KIB}"))
                .map_err(backend)?;
            let result = transaction(conn, &steps);
            conn.execute_batch("PRAGMA cache_size = -2000")
                .map_err(backend)?;
            result.map(drop)
        })
        .await
    }

    /// Commits one frame to the WAL. Until the WAL holds a commit made since it was last emptied (a clean
    /// shutdown empties it), SQLite cannot take the database's size from the WAL index and asks the file system
    /// (`fstat`) at the start of every read transaction: one system call per request on a server restarted into
    /// read-only traffic (`strace -c` under the metadata load, issue 14). Rewriting `user_version` with its own
    /// value changes nothing else.
    async fn prepare_to_serve(&self) -> Result<(), StoreError> {
        if self.readers.is_empty() {
            return Ok(());
        }
        self.run(|conn| {
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(backend)?;
            conn.execute_batch(&format!("PRAGMA user_version = {version}"))
                .map_err(backend)
        })
        .await
    }

    async fn shut_down(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            // Fold the WAL back into the main file so a clean shutdown leaves one self-contained file.
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(backend)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime of one worker thread with the server's park hook.
    fn server_like_runtime() -> tokio::runtime::Runtime {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        crate::runtime::on_runtime(builder.worker_threads(1).enable_all())
            .build()
            .unwrap()
    }

    /// Whether a checkpoint that starts the WAL over finds a reader in its way (`busy` of `wal_checkpoint`).
    fn restart_blocked(other: &Connection) -> bool {
        other
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
            == 1
    }

    fn count(store: &SqliteStore) -> i64 {
        store
            .on_reader(|conn| {
                conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(backend)
            })
            .unwrap()
    }

    /// A new folder for a test's database file, and the file's path.
    fn store_in_a_new_folder(name: &str) -> (std::path::PathBuf, String) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.db").to_str().unwrap().to_owned();
        (dir, path)
    }

    /// A store opened on an emptied WAL (a clean shutdown leaves it so) holds a commit in its WAL once readied to
    /// serve, so readers take the database size from the WAL index (no `fstat` per read), and nothing changed.
    #[test]
    fn readying_to_serve_leaves_a_commit_in_an_empty_wal_and_changes_nothing() {
        let (dir, path) = store_in_a_new_folder("wp-ready");
        let runtime = server_like_runtime();
        let store = SqliteStore::open(&path).unwrap();
        runtime.block_on(store.shut_down()).unwrap();
        drop(store);
        let frames_in_wal = |conn: &Connection| {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
                .unwrap()
        };
        let version = |conn: &Connection| {
            conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        let store = SqliteStore::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("PRAGMA wal_autocheckpoint = 0")
            .unwrap();
        assert_eq!(
            frames_in_wal(&other),
            0,
            "the WAL was not empty to begin with"
        );
        let before = version(&other);
        runtime
            .block_on(Executor::prepare_to_serve(&store))
            .unwrap();
        assert!(
            frames_in_wal(&other) > 0,
            "readying to serve committed nothing"
        );
        assert_eq!(version(&other), before);
        drop(other);
        runtime.block_on(store.shut_down()).unwrap();
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_busy_worker_keeps_a_read_mark_hiding_no_commit_and_lets_go_once_it_is_mark_span_old() {
        let (dir, path) = store_in_a_new_folder("wp-read-mark");
        let store = SqliteStore::open(&path).unwrap();
        // Another process's connection, whose writes stay in the WAL until it checkpoints them itself.
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch(
                "PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
            )
            .unwrap();
        other.busy_timeout(std::time::Duration::ZERO).unwrap();
        server_like_runtime().block_on(async move {
            tokio::spawn(async move {
                // The worker goes idle once, as it does when the server starts.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                // A lone read takes no mark.
                assert_eq!(count(&store), 1);
                assert!(!restart_blocked(&other), "a lone read kept no mark");
                other.execute("INSERT INTO t VALUES (1)", []).unwrap();
                // The second read of a burst does: the worker is busy (this task has not yielded), and the mark
                // stops the WAL from starting over.
                assert_eq!(count(&store), 2);
                assert!(restart_blocked(&other), "the read mark was kept");
                // Kept, it hides no commit: a read sees what was committed after the mark was taken.
                other.execute("INSERT INTO t VALUES (2)", []).unwrap();
                assert_eq!(count(&store), 3);
                // A worker that parks between batches keeps it while it is younger than MARK_SPAN...
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                assert!(
                    restart_blocked(&other),
                    "the read mark went at the first park"
                );
                // ...and lets go of it at the first park after that (here: the second sleep's).
                tokio::time::sleep(MARK_SPAN).await;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                assert!(!restart_blocked(&other), "the read mark was let go");
                // A write of this process lets go of it too, before it starts.
                assert_eq!(count(&store), 3);
                assert_eq!(count(&store), 3);
                assert!(
                    store
                        .read_mark
                        .as_ref()
                        .unwrap()
                        .kept
                        .load(Ordering::Acquire)
                );
                store
                    .run(|conn| {
                        conn.execute_batch("CREATE TABLE u (y INTEGER)")
                            .map_err(backend)
                    })
                    .await
                    .unwrap();
                assert!(
                    !store
                        .read_mark
                        .as_ref()
                        .unwrap()
                        .kept
                        .load(Ordering::Acquire)
                );
            })
            .await
            .unwrap();
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
