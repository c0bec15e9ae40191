//! The embedded default store: one SQLite file in WAL mode.
//!
//! One connection behind a mutex, used from tokio's blocking pool: SQLite serialises writers anyway, and a single
//! connection keeps every statement cached and every method trivially atomic. `synchronous=FULL` makes every
//! acknowledged write durable across power loss, not only across a process crash.
//!
//! The statements and the `Store` methods are shared with PostgreSQL ([`super::sql`]); this file runs them (reads
//! on the reader connections, writes on the writer), maps SQLite's errors and lists the SQLite migrations.

use std::sync::{Arc, Mutex};

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
        if path != ":memory:" && !path.starts_with("file::memory:") {
            for _ in 0..READERS {
                let reader = Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(backend)?;
                reader
                    .busy_timeout(std::time::Duration::from_secs(10))
                    .map_err(backend)?;
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
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("connection mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
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

    async fn shut_down(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            // Fold the WAL back into the main file so a clean shutdown leaves one self-contained file.
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(backend)
        })
        .await
    }
}
