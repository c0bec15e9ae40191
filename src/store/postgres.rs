//! The shared store: PostgreSQL, for several stateless `workmail-pat serve` replicas on one database.
//!
//! The statements and the `Store` methods are shared with SQLite ([`super::sql`]; the conformance suite runs both);
//! this file runs them, maps PostgreSQL's errors and holds its migrations. What differs is concurrency: SQLite
//! serialises writers in one process, while here many connections of many processes write at once. So every uniqueness rule is a unique index (a racing insert fails with `unique_violation`, which is mapped
//! back to a [`Conflict`] by the index's name), the ClientToken row is claimed with `INSERT .. ON CONFLICT` inside
//! the transaction that creates the organization (a concurrent claimant blocks on it, then replays the winner's
//! answer), and `DateLastUsed` only moves forward through a conditional `UPDATE`.
//!
//! Connections come from a bounded deadpool pool with connect, wait and per-operation timeouts, so a database that
//! is down or unreachable makes a request fail with [`StoreError::Unavailable`] within seconds instead of hanging.
//! Failures that leave nothing half-done (no connection, a deadlock or serialisation failure that rolled the
//! transaction back, or a lost connection during an idempotent operation) are retried a few times first.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use std::error::Error;

use bytes::BytesMut;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, Row};

use super::executor::Executor;
use super::sql::{self, Arg, Decode, Param, SqlRow, Step, Stmt, args};
use super::{Conflict, Idempotency, Idempotent, StoreError, SummaryPage};
use crate::domain::Organization;

/// Versioned migrations, applied in order at open.
pub const MIGRATIONS: &[(i64, &str)] = sql::migrations!("postgres":
    1 => "0001_init.sql",
    2 => "0002_user_lookup_indexes.sql",
    3 => "0003_credential_generations.sql",
    4 => "0004_attempt_events.sql",
    5 => "0005_mail_domains.sql",
    6 => "0006_pat_summaries.sql",
    7 => "0007_import_records.sql",
);

/// Key of the session-level advisory lock held while migrating, so replicas starting together migrate once.
/// (An arbitrary constant: the bytes of "wmpat-mg".)
const MIGRATION_LOCK_KEY: i64 = 0x776d_7061_742d_6d67;

/// How often an operation is attempted when a failure left nothing half-done.
const MAX_ATTEMPTS: u32 = 3;

/// Connection and pool limits.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections one process holds.
    pub pool_size: usize,
    /// Bound on connecting, on waiting for a pooled connection and (doubled) on one whole store operation.
    pub timeout: Duration,
    /// A file holding the password, used when the URL has none (see [`super::credentials::apply_password`]).
    pub password_file: Option<std::path::PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            timeout: Duration::from_secs(5),
            password_file: None,
        }
    }
}

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    op_timeout: Duration,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print the configuration.
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// An error inside one attempt: either a database error still to be classified, or a final store error.
enum Failure {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

type Attempt<T> = Result<T, Failure>;

/// Whether the server refused or lost us for reasons of availability (not because of the request).
fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        // No SQLSTATE: an I/O or protocol failure of the connection itself.
        None => true,
        Some(c) => {
            *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::TOO_MANY_CONNECTIONS
                || *c == SqlState::CONNECTION_FAILURE
                || *c == SqlState::CONNECTION_EXCEPTION
                || *c == SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION
                || *c == SqlState::READ_ONLY_SQL_TRANSACTION
        }
    }
}

/// Rolled back by the server and safe to run again from the start, whatever the operation.
fn is_rolled_back(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// The final store error for a database error: unique violations become the rule they broke (by index name).
fn classify(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error()
        && *db.code() == SqlState::UNIQUE_VIOLATION
    {
        let conflict = match db.constraint() {
            Some("organizations_alias") => Some(Conflict::Alias),
            Some("organizations_directory") => Some(Conflict::Directory),
            Some("users_name") => Some(Conflict::UserName),
            Some("users_email") | Some("email_addresses_pkey") => Some(Conflict::Email),
            Some("mail_domains_domain") | Some("mail_domains_pkey") => Some(Conflict::MailDomain),
            Some("organizations_pkey") | Some("users_pkey") => Some(Conflict::Id),
            Some("personal_access_tokens_pkey") | Some("personal_access_tokens_secret_hash") => {
                Some(Conflict::TokenId)
            }
            _ => None,
        };
        if let Some(c) = conflict {
            return StoreError::Conflict(c);
        }
    }
    if let Some(db) = e.as_db_error()
        && *db.code() == SqlState::FOREIGN_KEY_VIOLATION
    {
        return StoreError::Conflict(Conflict::Reference);
    }
    if is_unavailable(&e) {
        return StoreError::Unavailable(format!("database connection failed: {}", describe(&e)));
    }
    StoreError::Backend(describe(&e))
}

/// The error with the server's message (tokio-postgres' own Display says only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db),
        None => e.to_string(),
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("no database connection: {e}"))
}

/// Parses a `postgres://` URL, finds its password (URL, password file, `PGPASSWORD`, `PGPASSFILE`) and applies the
/// timeouts that keep a dead server from hanging us.
fn parse_config(
    url: &str,
    timeout: Duration,
    password_file: Option<&std::path::Path>,
) -> Result<tokio_postgres::Config, StoreError> {
    let mut config = config_with_password(url, password_file).map_err(StoreError::Backend)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("workmail-pat");
    }
    // Notice a silently vanished server (no RST) within a bounded time instead of waiting on TCP forever.
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    Ok(config)
}

/// Parses a `postgres://` URL and gives it a password from the other sources when it has none. Errors never quote
/// the URL (tokio-postgres' parse errors name only the option).
pub fn config_with_password(
    url: &str,
    password_file: Option<&std::path::Path>,
) -> Result<tokio_postgres::Config, String> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|e| format!("invalid PostgreSQL URL {}: {e}", super::redact_url(url)))?;
    if let Some(warning) = super::credentials::apply_password(&mut config, password_file)? {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

impl PostgresStore {
    /// Connects (retrying for a while: a database that is still starting is common when services start together),
    /// applies pending migrations under an advisory lock, and builds the pool.
    ///
    /// Synchronous like [`super::open`]: the migration runs on a helper thread with its own small runtime, so this
    /// works from inside any runtime (current-thread or multi-thread) without blocking its scheduler's I/O.
    pub fn open(url: &str, options: &PostgresOptions) -> Result<Self, StoreError> {
        let config = parse_config(url, options.timeout, options.password_file.as_deref())?;
        let migrate_config = config.clone();
        let startup = options.timeout * 2;
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            rt.block_on(migrate_with_retry(&migrate_config, startup))
        })
        .join()
        .map_err(|_| StoreError::Backend("migration thread panicked".into()))??;

        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
                Box::pin(async move {
                    prefer_generic_plans(client).await;
                    Ok(())
                })
            }))
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(Self {
            pool,
            op_timeout: options.timeout * 2,
        })
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

async fn migrate_with_retry(
    config: &tokio_postgres::Config,
    within: Duration,
) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + within;
    let mut delay = Duration::from_millis(100);
    loop {
        match migrate(config).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Unavailable(m)) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %m, "PostgreSQL not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Applies the migrations this program knows and the database lacks. The advisory lock makes concurrent
/// starters wait for each other; each migration commits together with its version row.
pub async fn migrate(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    let (mut client, connection) = config.connect(NoTls).await.map_err(classify)?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "migration connection ended");
        }
    });
    let result = async {
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
            )
            .await?;
        let current: i64 = client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
            .await?
            .get(0);
        let newest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if current > newest {
            return Err(Failure::Store(StoreError::Backend(format!(
                "database schema version {current} is newer than this program knows ({newest})"
            ))));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            let tx = client.transaction().await?;
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                &[version, &crate::clock::Clock::real_now_ms()],
            )
            .await?;
            tx.commit().await?;
        }
        if current < newest {
            // Rows written before summaries were stored get theirs (still under the migration lock).
            let tx = client.transaction().await?;
            for row in tx.query(sql::PATS_WITHOUT_SUMMARY.postgres, &[]).await? {
                let token = sql::pat(&row)?;
                let summary = token.summary_json();
                tx.execute(sql::SET_SUMMARY.postgres, &[&token.id, &summary])
                    .await?;
            }
            tx.commit().await?;
        }
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
            .await?;
        Ok(())
    }
    .await;
    drop(client);
    let _ = driver.await;
    result.map_err(|f| match f {
        Failure::Db(e) => classify(e),
        Failure::Store(e) => e,
    })
}

/// Runs one store operation: takes a connection, runs `$body` with it bound to `$c`, and retries from the start
/// when the failure left nothing half-done. `$idempotent` says whether running the body twice is harmless even
/// if the first run's commit reached the server (true for reads, deletes and absolute updates; false for inserts).
/// The whole operation is bounded by the operation timeout.
macro_rules! run {
    ($self:ident, $idempotent:expr, |$c:ident| $body:block) => {{
        let work = async {
            let mut attempt = 1u32;
            loop {
                let outcome: Attempt<_> = async {
                    #[allow(unused_mut)]
                    let mut $c = $self.client().await?;
                    $body
                }
                .await;
                match outcome {
                    Ok(v) => break Ok(v),
                    Err(Failure::Store(e)) => {
                        // Only "no connection at all" is retryable here: nothing was sent.
                        if matches!(e, StoreError::Unavailable(_)) && attempt < MAX_ATTEMPTS {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
                            continue;
                        }
                        break Err(e);
                    }
                    Err(Failure::Db(e)) => {
                        let retry = is_rolled_back(&e) || ($idempotent && e.is_closed());
                        if retry && attempt < MAX_ATTEMPTS {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(20 * attempt as u64)).await;
                            continue;
                        }
                        break Err(classify(e));
                    }
                }
            }
        };
        match tokio::time::timeout($self.op_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "database operation did not finish within {:?}",
                $self.op_timeout
            ))),
        }
    }};
}

impl SqlRow for Row {
    sql::sql_row_getters!(try_get, classify);
}

impl ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Text(s) => s.to_sql_checked(ty, out),
            Arg::Int(i) => i.to_sql_checked(ty, out),
            Arg::Bool(b) => b.to_sql_checked(ty, out),
            Arg::Bytes(b) => b.to_sql_checked(ty, out),
        }
    }

    /// Any type: the value's own type is checked in `to_sql` (and NULL fits every column).
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.as_arg().to_sql(ty, out)
    }

    /// Any type, as for [`Arg`].
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn refs<P: ToSql + Sync>(args: &[P]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// Runs one statement through the connection's statement cache.
async fn exec(c: &impl GenericClient, (sql, args): &Step) -> Attempt<u64> {
    let stmt = c.prepare_cached(sql.postgres).await?;
    Ok(c.execute(&stmt, &refs(args)).await?)
}

/// Runs a query through the connection's statement cache and decodes every row.
async fn query<T>(
    c: &impl GenericClient,
    sql: Stmt,
    args: &[Param],
    decode: Decode<T>,
) -> Attempt<Vec<T>> {
    let stmt = c.prepare_cached(sql.postgres).await?;
    let rows = c.query(&stmt, &refs(args)).await?;
    Ok(rows.iter().map(|r| decode(r)).collect::<Result<_, _>>()?)
}

/// Appends the stored summaries of a page to `page`.
async fn summary_page(
    c: &impl GenericClient,
    sql: Stmt,
    args: &[Arg<'_>],
    limit: usize,
    page: &mut SummaryPage,
) -> Attempt<()> {
    let stmt = c.prepare_cached(sql.postgres).await?;
    for row in c.query(&stmt, &refs(args)).await? {
        let summary = row.try_get::<_, &str>(2)?.as_bytes();
        if !page.push(limit, summary, || -> Attempt<_> {
            Ok((row.try_get(0)?, row.try_get(1)?))
        })? {
            break;
        }
    }
    Ok(())
}

/// Makes a new connection plan every prepared statement once, for any values (issue 14).
///
/// PostgreSQL plans a prepared statement for its values at each of its first five runs and afterwards keeps a
/// plan for any values only when that plan's estimated cost is no higher. A page statement's `LIMIT $N` is
/// estimated, without its value, at a tenth of the organization's tokens, so the plan for any values always looked
/// dearer than one for 11 rows and every page was planned again, ~0.3 ms of the server's time per page, which made
/// a 10-token page of ListPersonalAccessTokens cost three times a metadata read. Every statement here finds its rows
/// by an index on the columns it binds, so the plan for any values is the one a plan for given values would be. The
/// statements run through [`Executor::all_planned`] are unnamed and so planned at every run anyway, against the
/// tables as they are then. A server that does not know the setting (PostgreSQL before 12) keeps its default.
async fn prefer_generic_plans(client: &tokio_postgres::Client) {
    if let Err(e) = client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
    {
        tracing::warn!(error = %e, "PostgreSQL keeps planning prepared statements for their values");
    }
}

#[async_trait]
impl Executor for PostgresStore {
    async fn summaries(
        &self,
        sql: Stmt,
        args: &[Arg<'_>],
        limit: usize,
        body: Vec<u8>,
    ) -> Result<SummaryPage, StoreError> {
        let start = body.len();
        let mut page = Some(SummaryPage::new(body));
        run!(self, true, |c| {
            // A retry starts again from the buffer as it was handed in.
            let mut out = page.take().unwrap_or_default();
            out.restart(start);
            match summary_page(&c, sql, args, limit, &mut out).await {
                Ok(()) => Ok(out),
                Err(e) => {
                    page = Some(out);
                    Err(e)
                }
            }
        })
    }

    async fn all<T: Send + 'static>(
        &self,
        sql: Stmt,
        args: Vec<Param>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        run!(self, true, |c| { query(&c, sql, &args, decode).await })
    }

    async fn all_planned<T: Send + 'static>(
        &self,
        sql: Stmt,
        args: Vec<Param>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        // An unnamed statement: planned with these values and the table as it is now, never cached.
        run!(self, true, |c| {
            let rows = c.query(sql.postgres, &refs(&args)).await?;
            Ok(rows.iter().map(|r| decode(r)).collect::<Result<_, _>>()?)
        })
    }

    async fn write(&self, retry_safe: bool, steps: Vec<Step>) -> Result<u64, StoreError> {
        run!(self, retry_safe, |c| {
            if let [step] = steps.as_slice() {
                return exec(&c, step).await;
            }
            let tx = c.transaction().await?;
            let mut changed = 0;
            for step in &steps {
                changed = exec(&tx, step).await?;
            }
            tx.commit().await?;
            Ok(changed)
        })
    }

    async fn bulk_write(&self, steps: Vec<Step>) -> Result<(), StoreError> {
        // Pipelined: every statement is sent before the first answer is awaited (the answers come back in order),
        // in one transaction. One round trip per statement was most of the time of a first import into
        // PostgreSQL (two per user: the row and its address), each waiting for the server to be scheduled.
        run!(self, false, |c| {
            let tx = c.transaction().await?;
            let mut prepared: Vec<(&str, tokio_postgres::Statement)> = Vec::new();
            for (sql, _) in &steps {
                if !prepared.iter().any(|(text, _)| *text == sql.postgres) {
                    prepared.push((sql.postgres, tx.prepare_cached(sql.postgres).await?));
                }
            }
            let params: Vec<_> = steps.iter().map(|(_, args)| refs(args)).collect();
            let runs = steps.iter().zip(&params).map(|((sql, _), params)| {
                let statement = prepared
                    .iter()
                    .find(|(text, _)| *text == sql.postgres)
                    .map(|(_, s)| s)
                    .expect("prepared above");
                tx.execute(statement, params)
            });
            futures_util::future::try_join_all(runs).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn create_org(
        &self,
        inserts: Vec<Step>,
        org: Organization,
        idempotency: Option<Idempotency>,
    ) -> Result<Idempotent, StoreError> {
        // Safe to retry after a lost connection: a retry of a committed attempt finds its own ClientToken and
        // replays it; without a ClientToken a duplicate alias is refused by the index, never doubled.
        run!(self, idempotency.is_some(), |c| {
            let tx = c.transaction().await?;
            if let Some(i) = &idempotency
                && exec(&tx, &sql::claim_client_token(&org.account, &org.region, i)).await? == 0
            {
                // Someone else holds a live record of this token (committed before we looked).
                let args = args![&org.account, &org.region, i.operation, &i.token];
                let found = query(&tx, sql::READ_CLIENT_TOKEN, &args, sql::client_token).await?;
                return Ok(match sql::live(found.into_iter().next(), i.now_ms) {
                    Some(rec) if rec.request_hash == i.request_hash => {
                        Idempotent::Replay(rec.result)
                    }
                    Some(_) => Idempotent::Mismatch,
                    None => {
                        let vanished = StoreError::Backend("client token record vanished".into());
                        return Err(Failure::Store(vanished));
                    }
                });
            }
            for insert in &inserts {
                exec(&tx, insert).await?;
            }
            tx.commit().await?;
            Ok(Idempotent::Done)
        })
    }

    async fn insert_if_live(&self, insert: Step, check: Vec<Param>) -> Result<bool, StoreError> {
        run!(self, false, |c| {
            // LIVE_SESSION locks the owner's row until this transaction ends (FOR SHARE OF u).
            let tx = c.transaction().await?;
            if query(&tx, sql::LIVE_SESSION, &check, |_| Ok(()))
                .await?
                .is_empty()
            {
                return Ok(false);
            }
            exec(&tx, &insert).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn shares_attempts(&self) -> bool {
        true
    }

    async fn reserve_shared_attempt(
        &self,
        request: &super::AttemptRequest,
    ) -> Result<super::SharedAttempt, StoreError> {
        run!(self, false, |c| {
            Ok(super::postgres_attempts::reserve(&mut c, request).await?)
        })
    }

    async fn settle_shared_attempt(
        &self,
        request: &super::AttemptRequest,
        reserved: &[i64],
        failed: bool,
    ) -> Result<(), StoreError> {
        run!(self, true, |c| {
            Ok(super::postgres_attempts::settle(&mut c, request, reserved, failed).await?)
        })
    }

    async fn shut_down(&self) -> Result<(), StoreError> {
        // Every write is committed when acknowledged; closing only hangs up the pooled connections.
        self.pool.close();
        Ok(())
    }
}
