//! The shared store: PostgreSQL, for several stateless `workmail-pat serve` replicas on one database.
//!
//! Semantics mirror [`super::sqlite`] statement for statement (the conformance suite runs both). What differs is
//! concurrency: SQLite serialises writers in one process, while here many connections of many processes write at
//! once. So every uniqueness rule is a unique index (a racing insert fails with `unique_violation`, which is mapped
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
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{
    CLIENT_TOKEN_TTL_MS, ClientTokenRecord, Conflict, Idempotency, Idempotent, Store, StoreError,
};
use crate::clock::Millis;
use crate::domain::{
    Cursor, IdentityProviderConfiguration, Organization, Partition, PatStatus, PersonalAccessToken,
    Session, User, UserFilter, UserProfile, UserState, UserUpdate, org_state,
};

/// Versioned migrations, applied in order at open. Never edit a released one: add a new file.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_user_lookup_indexes.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_credential_generations.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_attempt_events.sql"),
    ),
];

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
            Some("users_email") => Some(Conflict::Email),
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

/// Whether a lookup key can match no row because it holds U+0000. PostgreSQL `text` cannot hold that character and
/// fails the whole statement when one is bound (SQLSTATE 22021), while no stored value contains one (validation
/// refuses it in every written string): the lookup answers "nothing" without asking, exactly as SQLite does.
fn unmatchable(keys: &[&str]) -> bool {
    keys.iter().any(|k| k.contains('\0'))
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

const ORG_COLUMNS: &str = "id, account, region, alias, state, directory_id, directory_type, default_mail_domain, \
    domains, kms_key_arn, interoperability_enabled, created_ms, completed_ms";

fn row_to_org(r: &Row) -> Organization {
    let domains: String = r.get(8);
    Organization {
        id: r.get(0),
        account: r.get(1),
        region: r.get(2),
        alias: r.get(3),
        state: r.get(4),
        directory_id: r.get(5),
        directory_type: r.get(6),
        default_mail_domain: r.get(7),
        domains: serde_json::from_str(&domains).unwrap_or_default(),
        kms_key_arn: r.get(9),
        interoperability_enabled: r.get(10),
        created_ms: r.get(11),
        completed_ms: r.get(12),
    }
}

const USER_COLUMNS: &str = "id, org_id, name, email, state, role, display_name, first_name, last_name, initials, \
    telephone, street, job_title, city, company, zip_code, department, country, office, hidden_from_gal, \
    identity_provider_user_id, enabled_ms, disabled_ms, mailbox_provisioned_ms, mailbox_deprovisioned_ms, \
    created_ms, password_hash";

fn row_to_user(r: &Row) -> User {
    let state: String = r.get(4);
    User {
        id: r.get(0),
        org_id: r.get(1),
        name: r.get(2),
        email: r.get(3),
        state: UserState::parse(&state).unwrap_or(UserState::Disabled),
        role: r.get(5),
        profile: UserProfile {
            display_name: r.get(6),
            first_name: r.get(7),
            last_name: r.get(8),
            initials: r.get(9),
            telephone: r.get(10),
            street: r.get(11),
            job_title: r.get(12),
            city: r.get(13),
            company: r.get(14),
            zip_code: r.get(15),
            department: r.get(16),
            country: r.get(17),
            office: r.get(18),
            hidden_from_global_address_list: r.get(19),
        },
        identity_provider_user_id: r.get(20),
        enabled_ms: r.get(21),
        disabled_ms: r.get(22),
        mailbox_provisioned_ms: r.get(23),
        mailbox_deprovisioned_ms: r.get(24),
        created_ms: r.get(25),
        password_hash: r.get(26),
    }
}

const PAT_COLUMNS: &str = "id, org_id, user_id, name, scopes, created_ms, last_used_ms, expires_ms";

fn insert_pat_sql() -> String {
    format!(
        "INSERT INTO personal_access_tokens ({PAT_COLUMNS}, secret_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )
}

/// The parameters of [`insert_pat_sql`].
fn pat_params<'a>(
    t: &'a PersonalAccessToken,
    scopes: &'a String,
    secret_digest: &'a &'a [u8],
) -> [&'a (dyn tokio_postgres::types::ToSql + Sync); 9] {
    [
        &t.id,
        &t.org_id,
        &t.user_id,
        &t.name,
        scopes,
        &t.created_ms,
        &t.last_used_ms,
        &t.expires_ms,
        secret_digest,
    ]
}

fn row_to_pat(r: &Row) -> PersonalAccessToken {
    let scopes: String = r.get(4);
    PersonalAccessToken {
        id: r.get(0),
        org_id: r.get(1),
        user_id: r.get(2),
        name: r.get(3),
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        created_ms: r.get(5),
        last_used_ms: r.get(6),
        expires_ms: r.get(7),
    }
}

/// Escapes a prefix for `LIKE ... ESCAPE '\'`.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn json(v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(e.to_string()))
}

fn to_record(
    hash: Vec<u8>,
    result: String,
    created: Millis,
    now_ms: Millis,
) -> Option<ClientTokenRecord> {
    if now_ms - created > CLIENT_TOKEN_TTL_MS {
        return None;
    }
    let request_hash: [u8; 32] = hash.try_into().ok()?;
    Some(ClientTokenRecord {
        request_hash,
        result,
    })
}

const READ_CLIENT_TOKEN: &str = "SELECT request_hash, result, created_ms FROM client_tokens \
     WHERE account = $1 AND region = $2 AND operation = $3 AND token = $4";

/// Claims a ClientToken: inserts it, or takes over an expired record of it. Returns whether this call now owns
/// it. A concurrent claimant's uncommitted insert makes this wait until that transaction ends.
const CLAIM_CLIENT_TOKEN: &str = "INSERT INTO client_tokens \
     (account, region, operation, token, request_hash, result, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (account, region, operation, token) DO UPDATE SET \
       request_hash = excluded.request_hash, result = excluded.result, created_ms = excluded.created_ms \
     WHERE client_tokens.created_ms < $7::BIGINT - $8::BIGINT";

#[async_trait]
impl Store for PostgresStore {
    async fn create_organization(
        &self,
        org: Organization,
        idempotency: Option<Idempotency>,
    ) -> Result<Idempotent, StoreError> {
        // Safe to retry after a lost connection: a retry of a committed attempt finds its own ClientToken and
        // replays it; without a ClientToken a duplicate alias is refused by the index, never doubled.
        run!(self, idempotency.is_some(), |c| {
            let tx = c.transaction().await?;
            if let Some(i) = &idempotency {
                let claimed = tx.prepare_cached(CLAIM_CLIENT_TOKEN).await?;
                let n = tx
                    .execute(
                        &claimed,
                        &[
                            &org.account,
                            &org.region,
                            &i.operation,
                            &i.token,
                            &i.request_hash.as_slice(),
                            &i.result,
                            &i.now_ms,
                            &CLIENT_TOKEN_TTL_MS,
                        ],
                    )
                    .await?;
                if n == 0 {
                    // Someone else holds a live record of this token (committed before we looked).
                    let stmt = tx.prepare_cached(READ_CLIENT_TOKEN).await?;
                    let row = tx
                        .query_opt(&stmt, &[&org.account, &org.region, &i.operation, &i.token])
                        .await?;
                    let rec = row.and_then(|r| to_record(r.get(0), r.get(1), r.get(2), i.now_ms));
                    return Ok(match rec {
                        Some(rec) if rec.request_hash == i.request_hash => {
                            Idempotent::Replay(rec.result)
                        }
                        Some(_) => Idempotent::Mismatch,
                        None => {
                            return Err(Failure::Store(StoreError::Backend(
                                "client token record vanished".into(),
                            )));
                        }
                    });
                }
            }
            let stmt = tx
                .prepare_cached(&format!(
                    "INSERT INTO organizations ({ORG_COLUMNS}, alias_key) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ))
                .await?;
            tx.execute(
                &stmt,
                &[
                    &org.id,
                    &org.account,
                    &org.region,
                    &org.alias,
                    &org.state,
                    &org.directory_id,
                    &org.directory_type,
                    &org.default_mail_domain,
                    &json(&org.domains)?,
                    &org.kms_key_arn,
                    &org.interoperability_enabled,
                    &org.created_ms,
                    &org.completed_ms,
                    &org.alias.to_ascii_lowercase(),
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(Idempotent::Done)
        })
    }

    async fn get_organization(
        &self,
        partition: &Partition,
        id: &str,
    ) -> Result<Option<Organization>, StoreError> {
        if unmatchable(&[id, &partition.account, &partition.region]) {
            return Ok(None);
        }
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {ORG_COLUMNS} FROM organizations WHERE id = $1 AND account = $2 AND region = $3"
                ))
                .await?;
            let row = c
                .query_opt(&stmt, &[&id, &partition.account, &partition.region])
                .await?;
            Ok(row.as_ref().map(row_to_org))
        })
    }

    async fn find_organization(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        if unmatchable(&[id]) {
            return Ok(None);
        }
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {ORG_COLUMNS} FROM organizations WHERE id = $1"
                ))
                .await?;
            let row = c.query_opt(&stmt, &[&id]).await?;
            Ok(row.as_ref().map(row_to_org))
        })
    }

    async fn list_organizations(
        &self,
        partition: &Partition,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Organization>, StoreError> {
        let (c_ms, c_id) = after
            .map(|c| (c.created_ms, c.id))
            .unwrap_or((i64::MIN, String::new()));
        let limit = limit as i64;
        if unmatchable(&[&partition.account, &partition.region]) {
            return Ok(Vec::new());
        }
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {ORG_COLUMNS} FROM organizations WHERE account = $1 AND region = $2 \
                     AND (created_ms, id) > ($3, $4) ORDER BY created_ms, id LIMIT $5"
                ))
                .await?;
            let rows = c
                .query(
                    &stmt,
                    &[&partition.account, &partition.region, &c_ms, &c_id, &limit],
                )
                .await?;
            Ok(rows.iter().map(row_to_org).collect())
        })
    }

    async fn delete_organization(&self, org_id: &str) -> Result<(), StoreError> {
        run!(self, true, |c| {
            let tx = c.transaction().await?;
            tx.execute(
                "UPDATE organizations SET state = $2 WHERE id = $1",
                &[&org_id, &org_state::DELETED],
            )
            .await?;
            tx.execute(
                "DELETE FROM personal_access_tokens WHERE org_id = $1",
                &[&org_id],
            )
            .await?;
            tx.execute("DELETE FROM sessions WHERE org_id = $1", &[&org_id])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn count_enabled_users(&self, org_id: &str) -> Result<u64, StoreError> {
        if unmatchable(&[org_id]) {
            return Ok(0);
        }
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM users WHERE org_id = $1 AND state = 'ENABLED'",
                )
                .await?;
            let n: i64 = c.query_one(&stmt, &[&org_id]).await?.get(0);
            Ok(n as u64)
        })
    }

    async fn get_client_token(
        &self,
        partition: &Partition,
        operation: &str,
        token: &str,
        now_ms: Millis,
    ) -> Result<Option<ClientTokenRecord>, StoreError> {
        if unmatchable(&[&partition.account, &partition.region, operation, token]) {
            return Ok(None);
        }
        run!(self, true, |c| {
            let stmt = c.prepare_cached(READ_CLIENT_TOKEN).await?;
            let row = c
                .query_opt(
                    &stmt,
                    &[&partition.account, &partition.region, &operation, &token],
                )
                .await?;
            Ok(row.and_then(|r| to_record(r.get(0), r.get(1), r.get(2), now_ms)))
        })
    }

    async fn put_client_token(
        &self,
        partition: &Partition,
        i: Idempotency,
    ) -> Result<(), StoreError> {
        // A live record is kept (first answer wins), so running this twice is harmless.
        run!(self, true, |c| {
            let stmt = c.prepare_cached(CLAIM_CLIENT_TOKEN).await?;
            c.execute(
                &stmt,
                &[
                    &partition.account,
                    &partition.region,
                    &i.operation,
                    &i.token,
                    &i.request_hash.as_slice(),
                    &i.result,
                    &i.now_ms,
                    &CLIENT_TOKEN_TTL_MS,
                ],
            )
            .await?;
            Ok(())
        })
    }

    async fn create_user(&self, user: User) -> Result<(), StoreError> {
        let name_key = user.name.to_ascii_lowercase();
        let email_key = user.email.as_ref().map(|e| e.to_ascii_lowercase());
        run!(self, false, |c| {
            let p = &user.profile;
            let stmt = c
                .prepare_cached(&format!(
                    "INSERT INTO users ({USER_COLUMNS}, name_key, email_key) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
                      $21, $22, $23, $24, $25, $26, $27, $28, $29)"
                ))
                .await?;
            c.execute(
                &stmt,
                &[
                    &user.id,
                    &user.org_id,
                    &user.name,
                    &user.email,
                    &user.state.as_str(),
                    &user.role,
                    &p.display_name,
                    &p.first_name,
                    &p.last_name,
                    &p.initials,
                    &p.telephone,
                    &p.street,
                    &p.job_title,
                    &p.city,
                    &p.company,
                    &p.zip_code,
                    &p.department,
                    &p.country,
                    &p.office,
                    &p.hidden_from_global_address_list,
                    &user.identity_provider_user_id,
                    &user.enabled_ms,
                    &user.disabled_ms,
                    &user.mailbox_provisioned_ms,
                    &user.mailbox_deprovisioned_ms,
                    &user.created_ms,
                    &user.password_hash,
                    &name_key,
                    &email_key,
                ],
            )
            .await?;
            Ok(())
        })
    }

    async fn find_user(&self, org_id: &str, ident: &str) -> Result<Option<User>, StoreError> {
        if unmatchable(&[org_id, ident]) {
            return Ok(None);
        }
        let key = ident.to_ascii_lowercase();
        run!(self, true, |c| {
            // Order: exact id first, then a live user before a DELETED one, then the newest.
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 \
                     AND (id = $2 OR name_key = $3 OR email_key = $3) \
                     ORDER BY (id = $2) DESC, (state = 'DELETED') ASC, created_ms DESC LIMIT 1"
                ))
                .await?;
            let row = c.query_opt(&stmt, &[&org_id, &ident, &key]).await?;
            Ok(row.as_ref().map(row_to_user))
        })
    }

    async fn list_users(
        &self,
        org_id: &str,
        filter: &UserFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        let (c_ms, c_id) = after
            .map(|c| (c.created_ms, c.id))
            .unwrap_or((i64::MIN, String::new()));
        let limit = limit as i64;
        let prefix = match filter {
            UserFilter::UsernamePrefix(p)
            | UserFilter::DisplayNamePrefix(p)
            | UserFilter::PrimaryEmailPrefix(p)
            | UserFilter::IdentityProviderUserIdPrefix(p) => p.as_str(),
            UserFilter::None | UserFilter::State(_) => "",
        };
        if unmatchable(&[org_id, prefix]) {
            return Ok(Vec::new());
        }
        // SQLite's LIKE ignores ASCII case; ILIKE on "C"-collated columns does exactly that here.
        let (clause, arg): (&str, Option<String>) = match filter {
            UserFilter::None => ("$5::text IS NULL", None),
            UserFilter::UsernamePrefix(p) => ("name ILIKE $5 ESCAPE '\\'", Some(like_prefix(p))),
            UserFilter::DisplayNamePrefix(p) => {
                ("display_name ILIKE $5 ESCAPE '\\'", Some(like_prefix(p)))
            }
            UserFilter::PrimaryEmailPrefix(p) => {
                ("email ILIKE $5 ESCAPE '\\'", Some(like_prefix(p)))
            }
            UserFilter::State(s) => ("state = $5", Some(s.as_str().to_string())),
            UserFilter::IdentityProviderUserIdPrefix(p) => (
                "identity_provider_user_id ILIKE $5 ESCAPE '\\'",
                Some(like_prefix(p)),
            ),
        };
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND (created_ms, id) > ($2, $3) \
                     AND ({clause}) ORDER BY created_ms, id LIMIT $4"
                ))
                .await?;
            let rows = c
                .query(&stmt, &[&org_id, &c_ms, &c_id, &limit, &arg])
                .await?;
            Ok(rows.iter().map(row_to_user).collect())
        })
    }

    async fn update_user(&self, user_id: &str, u: UserUpdate) -> Result<(), StoreError> {
        let mut sets: Vec<String> = Vec::new();
        let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut text = |col: &str, v: Option<String>| {
            if let Some(v) = v {
                values.push(Box::new(v));
                sets.push(format!("{col} = ${}", values.len()));
            }
        };
        text("role", u.role);
        text("display_name", u.display_name);
        text("first_name", u.first_name);
        text("last_name", u.last_name);
        text("initials", u.initials);
        text("telephone", u.telephone);
        text("street", u.street);
        text("job_title", u.job_title);
        text("city", u.city);
        text("company", u.company);
        text("zip_code", u.zip_code);
        text("department", u.department);
        text("country", u.country);
        text("office", u.office);
        if let Some(h) = u.hidden_from_global_address_list {
            values.push(Box::new(h));
            sets.push(format!("hidden_from_gal = ${}", values.len()));
        }
        if let Some(idp) = u.identity_provider_user_id {
            values.push(Box::new(idp));
            sets.push(format!("identity_provider_user_id = ${}", values.len()));
        }
        if sets.is_empty() {
            return Ok(());
        }
        values.push(Box::new(user_id.to_string()));
        let sql = format!(
            "UPDATE users SET {} WHERE id = ${}",
            sets.join(", "),
            values.len()
        );
        let params: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        run!(self, true, |c| {
            c.execute(sql.as_str(), &params).await?;
            Ok(())
        })
    }

    async fn register_user(
        &self,
        user_id: &str,
        email: &str,
        now_ms: Millis,
    ) -> Result<(), StoreError> {
        let key = email.to_ascii_lowercase();
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(
                    "UPDATE users SET state = 'ENABLED', email = $2, email_key = $3, enabled_ms = $4, \
                     mailbox_provisioned_ms = $4, credential_generation = credential_generation + 1 WHERE id = $1",
                )
                .await?;
            c.execute(&stmt, &[&user_id, &email, &key, &now_ms]).await?;
            Ok(())
        })
    }

    async fn deregister_user(&self, user_id: &str, now_ms: Millis) -> Result<(), StoreError> {
        run!(self, true, |c| {
            let tx = c.transaction().await?;
            tx.execute(
                "UPDATE users SET state = 'DISABLED', email = NULL, email_key = NULL, disabled_ms = $2, \
                 mailbox_deprovisioned_ms = $2, credential_generation = credential_generation + 1 WHERE id = $1",
                &[&user_id, &now_ms],
            )
            .await?;
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn delete_user(&self, user_id: &str, _now_ms: Millis) -> Result<(), StoreError> {
        run!(self, true, |c| {
            let tx = c.transaction().await?;
            tx.execute(
                "UPDATE users SET state = 'DELETED', credential_generation = credential_generation + 1 \
                 WHERE id = $1",
                &[&user_id],
            )
            .await?;
            tx.execute(
                "DELETE FROM personal_access_tokens WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<(), StoreError> {
        run!(self, true, |c| {
            let tx = c.transaction().await?;
            tx.execute(
                "UPDATE users SET password_hash = $2, credential_generation = credential_generation + 1 \
                 WHERE id = $1",
                &[&user_id, &password_hash],
            )
            .await?;
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn put_identity_provider_configuration(
        &self,
        org_id: &str,
        cfg: IdentityProviderConfiguration,
    ) -> Result<(), StoreError> {
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(
                    "INSERT INTO identity_provider_configurations \
                     (org_id, authentication_mode, instance_arn, application_arn, pat_status, pat_lifetime_days) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id) DO UPDATE SET \
                     authentication_mode = excluded.authentication_mode, instance_arn = excluded.instance_arn, \
                     application_arn = excluded.application_arn, pat_status = excluded.pat_status, \
                     pat_lifetime_days = excluded.pat_lifetime_days",
                )
                .await?;
            c.execute(
                &stmt,
                &[
                    &org_id,
                    &cfg.authentication_mode,
                    &cfg.instance_arn,
                    &cfg.application_arn,
                    &cfg.pat_status.as_str(),
                    &cfg.pat_lifetime_days,
                ],
            )
            .await?;
            Ok(())
        })
    }

    async fn get_identity_provider_configuration(
        &self,
        org_id: &str,
    ) -> Result<Option<IdentityProviderConfiguration>, StoreError> {
        if unmatchable(&[org_id]) {
            return Ok(None);
        }
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT authentication_mode, instance_arn, application_arn, pat_status, pat_lifetime_days \
                     FROM identity_provider_configurations WHERE org_id = $1",
                )
                .await?;
            let row = c.query_opt(&stmt, &[&org_id]).await?;
            Ok(row.map(|r| {
                let status: String = r.get(3);
                IdentityProviderConfiguration {
                    authentication_mode: r.get(0),
                    instance_arn: r.get(1),
                    application_arn: r.get(2),
                    pat_status: PatStatus::parse(&status).unwrap_or(PatStatus::Inactive),
                    pat_lifetime_days: r.get(4),
                }
            }))
        })
    }

    async fn delete_identity_provider_configuration(&self, org_id: &str) -> Result<(), StoreError> {
        run!(self, true, |c| {
            c.execute(
                "DELETE FROM identity_provider_configurations WHERE org_id = $1",
                &[&org_id],
            )
            .await?;
            Ok(())
        })
    }

    async fn insert_personal_access_token(
        &self,
        t: PersonalAccessToken,
        secret_digest: [u8; 32],
    ) -> Result<(), StoreError> {
        let scopes = json(&t.scopes)?;
        run!(self, false, |c| {
            let stmt = c.prepare_cached(&insert_pat_sql()).await?;
            c.execute(&stmt, &pat_params(&t, &scopes, &secret_digest.as_slice()))
                .await?;
            Ok(())
        })
    }

    async fn insert_personal_access_token_for_session(
        &self,
        t: PersonalAccessToken,
        secret_digest: [u8; 32],
        session_digest: [u8; 32],
    ) -> Result<bool, StoreError> {
        let scopes = json(&t.scopes)?;
        run!(self, false, |c| {
            let tx = c.transaction().await?;
            // FOR SHARE OF u: a concurrent reset or deletion of the owner waits for this transaction, or commits
            // first and the re-checked row no longer matches.
            let live = tx
                .query_opt(
                    "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.token_hash = $1 AND s.user_id = $2 AND u.state = 'ENABLED' \
                     AND s.credential_generation = u.credential_generation FOR SHARE OF u",
                    &[&session_digest.as_slice(), &t.user_id],
                )
                .await?
                .is_some();
            if !live {
                return Ok(false);
            }
            tx.execute(
                &insert_pat_sql(),
                &pat_params(&t, &scopes, &secret_digest.as_slice()),
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn list_personal_access_tokens(
        &self,
        org_id: &str,
        user_id: Option<&str>,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<PersonalAccessToken>, StoreError> {
        let (c_ms, c_id) = after
            .map(|c| (c.created_ms, c.id))
            .unwrap_or((i64::MIN, String::new()));
        let limit = limit as i64;
        if unmatchable(&[org_id, user_id.unwrap_or_default()]) {
            return Ok(Vec::new());
        }
        run!(self, true, |c| {
            // Two statements rather than `($2 IS NULL OR user_id = $2)`, so each uses its own index.
            let rows = if let Some(user_id) = user_id {
                let stmt = c
                    .prepare_cached(&format!(
                        "SELECT {PAT_COLUMNS} FROM personal_access_tokens WHERE org_id = $1 AND user_id = $2 \
                         AND (created_ms, id) > ($3, $4) ORDER BY created_ms, id LIMIT $5"
                    ))
                    .await?;
                c.query(&stmt, &[&org_id, &user_id, &c_ms, &c_id, &limit])
                    .await?
            } else {
                let stmt = c
                    .prepare_cached(&format!(
                        "SELECT {PAT_COLUMNS} FROM personal_access_tokens WHERE org_id = $1 \
                         AND (created_ms, id) > ($2, $3) ORDER BY created_ms, id LIMIT $4"
                    ))
                    .await?;
                c.query(&stmt, &[&org_id, &c_ms, &c_id, &limit]).await?
            };
            Ok(rows.iter().map(row_to_pat).collect())
        })
    }

    async fn get_personal_access_token(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        if unmatchable(&[org_id, id]) {
            return Ok(None);
        }
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {PAT_COLUMNS} FROM personal_access_tokens WHERE org_id = $1 AND id = $2"
                ))
                .await?;
            let row = c.query_opt(&stmt, &[&org_id, &id]).await?;
            Ok(row.as_ref().map(row_to_pat))
        })
    }

    async fn delete_personal_access_token(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        if unmatchable(&[org_id, id]) {
            return Ok(false);
        }
        // Not retried on a lost connection: a retry after a committed delete would answer "not deleted".
        run!(self, false, |c| {
            let stmt = c
                .prepare_cached("DELETE FROM personal_access_tokens WHERE org_id = $1 AND id = $2")
                .await?;
            Ok(c.execute(&stmt, &[&org_id, &id]).await? > 0)
        })
    }

    async fn find_personal_access_token_by_digest(
        &self,
        digest: [u8; 32],
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {PAT_COLUMNS} FROM personal_access_tokens WHERE secret_hash = $1"
                ))
                .await?;
            let row = c.query_opt(&stmt, &[&digest.as_slice()]).await?;
            Ok(row.as_ref().map(row_to_pat))
        })
    }

    async fn touch_personal_access_token(
        &self,
        id: &str,
        now_ms: Millis,
        min_interval_ms: Millis,
    ) -> Result<(), StoreError> {
        // One conditional UPDATE: PostgreSQL re-checks the WHERE clause on the latest row version after taking
        // the row lock, so racing replicas write at most once per interval and never move the time back.
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(
                    "UPDATE personal_access_tokens SET last_used_ms = $2 \
                     WHERE id = $1 AND (last_used_ms IS NULL OR last_used_ms <= $2::BIGINT - $3::BIGINT)",
                )
                .await?;
            c.execute(&stmt, &[&id, &now_ms, &min_interval_ms]).await?;
            Ok(())
        })
    }

    async fn create_session(
        &self,
        digest: [u8; 32],
        s: Session,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        run!(self, false, |c| {
            // FOR SHARE: a concurrent reset, deregistration or deletion either commits first (and the re-checked
            // row no longer matches) or waits for this insert; either way no session outlives the change.
            let stmt = c
                .prepare_cached(
                    "INSERT INTO sessions (token_hash, org_id, user_id, expires_ms, authenticated_ms, \
                     credential_generation) \
                     SELECT $1, org_id, id, $4, $5, credential_generation FROM users \
                     WHERE id = $3 AND org_id = $2 AND state = 'ENABLED' AND password_hash = $6 FOR SHARE",
                )
                .await?;
            let n = c
                .execute(
                    &stmt,
                    &[
                        &digest.as_slice(),
                        &s.org_id,
                        &s.user_id,
                        &s.expires_ms,
                        &s.authenticated_ms,
                        &password_hash,
                    ],
                )
                .await?;
            Ok(n == 1)
        })
    }

    async fn get_session(&self, digest: [u8; 32]) -> Result<Option<Session>, StoreError> {
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT s.org_id, s.user_id, s.expires_ms, s.authenticated_ms FROM sessions s \
                     JOIN users u ON u.id = s.user_id \
                     WHERE s.token_hash = $1 AND s.credential_generation = u.credential_generation",
                )
                .await?;
            let row = c.query_opt(&stmt, &[&digest.as_slice()]).await?;
            Ok(row.map(|r| Session {
                org_id: r.get(0),
                user_id: r.get(1),
                expires_ms: r.get(2),
                authenticated_ms: r.get(3),
            }))
        })
    }

    async fn reauthenticate_session(
        &self,
        digest: [u8; 32],
        password_hash: &str,
        now_ms: Millis,
    ) -> Result<bool, StoreError> {
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached(
                    "UPDATE sessions SET authenticated_ms = $3 WHERE token_hash = $1 AND credential_generation = \
                     (SELECT credential_generation FROM users WHERE id = sessions.user_id AND state = 'ENABLED' \
                      AND password_hash = $2)",
                )
                .await?;
            let n = c
                .execute(&stmt, &[&digest.as_slice(), &password_hash, &now_ms])
                .await?;
            Ok(n == 1)
        })
    }

    async fn delete_session(&self, digest: [u8; 32]) -> Result<(), StoreError> {
        run!(self, true, |c| {
            let stmt = c
                .prepare_cached("DELETE FROM sessions WHERE token_hash = $1")
                .await?;
            c.execute(&stmt, &[&digest.as_slice()]).await?;
            Ok(())
        })
    }

    async fn reset(&self, partition: Option<&Partition>) -> Result<(), StoreError> {
        run!(self, true, |c| {
            let tx = c.transaction().await?;
            match partition {
                None => {
                    tx.batch_execute(
                        "DELETE FROM sessions; DELETE FROM personal_access_tokens; \
                         DELETE FROM identity_provider_configurations; DELETE FROM users; \
                         DELETE FROM organizations; DELETE FROM client_tokens;",
                    )
                    .await?
                }
                Some(p) => {
                    let orgs = "(SELECT id FROM organizations WHERE account = $1 AND region = $2)";
                    for table in [
                        "sessions",
                        "personal_access_tokens",
                        "identity_provider_configurations",
                        "users",
                    ] {
                        tx.execute(
                            &format!("DELETE FROM {table} WHERE org_id IN {orgs}"),
                            &[&p.account, &p.region],
                        )
                        .await?;
                    }
                    for table in ["organizations", "client_tokens"] {
                        tx.execute(
                            &format!("DELETE FROM {table} WHERE account = $1 AND region = $2"),
                            &[&p.account, &p.region],
                        )
                        .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn reserve_attempt(
        &self,
        request: &super::AttemptRequest,
    ) -> Result<super::SharedAttempt, StoreError> {
        run!(self, false, |c| {
            Ok(super::postgres_attempts::reserve(&mut c, request).await?)
        })
    }

    async fn settle_attempt(
        &self,
        request: &super::AttemptRequest,
        reserved: &[i64],
        failed: bool,
    ) -> Result<(), StoreError> {
        run!(self, true, |c| {
            Ok(super::postgres_attempts::settle(&mut c, request, reserved, failed).await?)
        })
    }

    async fn close(&self) -> Result<(), StoreError> {
        // Every write is committed when acknowledged; closing only hangs up the pooled connections.
        self.pool.close();
        Ok(())
    }
}
