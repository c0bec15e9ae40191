//! The embedded default store: one SQLite file in WAL mode.
//!
//! One connection behind a mutex, used from tokio's blocking pool: SQLite serialises writers anyway, and a single
//! connection keeps every statement cached and every method trivially atomic. `synchronous=FULL` makes every
//! acknowledged write durable across power loss, not only across a process crash.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    CLIENT_TOKEN_TTL_MS, ClientTokenRecord, Conflict, Idempotency, Idempotent, ImportBatch, Store,
    StoreError, VerifyRecord,
};
use crate::clock::Millis;
use crate::domain::{
    Cursor, IdentityProviderConfiguration, Organization, Partition, PatStatus, PersonalAccessToken,
    Session, User, UserFilter, UserProfile, UserState, UserUpdate, org_state,
};

/// Versioned migrations, applied in order at open. Never edit a released one: add a new file.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_user_lookup_indexes.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/0003_credential_generations.sql"),
    ),
];

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The one writer (SQLite serialises writers anyway).
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections used inline on the calling thread: a point read takes microseconds, while a hop to
    /// the blocking pool and back cost more than the query itself (profiled: a third of the server's time was
    /// thread switching). In WAL mode readers never wait for the writer. Empty for an in-memory store, whose
    /// data only its own connection can see.
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
}

/// Read-only connections per file store.
const READERS: usize = 4;

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
        } else if msg.contains("users.email_key") {
            Some(Conflict::Email)
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
                readers.push(Mutex::new(reader));
            }
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(readers),
            next_reader: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
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
        let n = self.readers.len();
        let start = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for i in 0..n {
            if let Ok(guard) = self.readers[(start + i) % n].try_lock() {
                return f(&guard);
            }
        }
        // All busy (more concurrent reads than readers): wait for one; reads are short.
        let guard = self.readers[start % n]
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
    tx.commit().map_err(backend)
}

const ORG_COLUMNS: &str = "id, account, region, alias, state, directory_id, directory_type, default_mail_domain, \
    domains, kms_key_arn, interoperability_enabled, created_ms, completed_ms";

fn row_to_org(r: &Row<'_>) -> rusqlite::Result<Organization> {
    let domains: String = r.get(8)?;
    Ok(Organization {
        id: r.get(0)?,
        account: r.get(1)?,
        region: r.get(2)?,
        alias: r.get(3)?,
        state: r.get(4)?,
        directory_id: r.get(5)?,
        directory_type: r.get(6)?,
        default_mail_domain: r.get(7)?,
        domains: serde_json::from_str(&domains).unwrap_or_default(),
        kms_key_arn: r.get(9)?,
        interoperability_enabled: r.get(10)?,
        created_ms: r.get(11)?,
        completed_ms: r.get(12)?,
    })
}

const USER_COLUMNS: &str = "id, org_id, name, email, state, role, display_name, first_name, last_name, initials, \
    telephone, street, job_title, city, company, zip_code, department, country, office, hidden_from_gal, \
    identity_provider_user_id, enabled_ms, disabled_ms, mailbox_provisioned_ms, mailbox_deprovisioned_ms, \
    created_ms, password_hash";

fn row_to_user(r: &Row<'_>) -> rusqlite::Result<User> {
    let state: String = r.get(4)?;
    Ok(User {
        id: r.get(0)?,
        org_id: r.get(1)?,
        name: r.get(2)?,
        email: r.get(3)?,
        state: UserState::parse(&state).unwrap_or(UserState::Disabled),
        role: r.get(5)?,
        profile: UserProfile {
            display_name: r.get(6)?,
            first_name: r.get(7)?,
            last_name: r.get(8)?,
            initials: r.get(9)?,
            telephone: r.get(10)?,
            street: r.get(11)?,
            job_title: r.get(12)?,
            city: r.get(13)?,
            company: r.get(14)?,
            zip_code: r.get(15)?,
            department: r.get(16)?,
            country: r.get(17)?,
            office: r.get(18)?,
            hidden_from_global_address_list: r.get(19)?,
        },
        identity_provider_user_id: r.get(20)?,
        enabled_ms: r.get(21)?,
        disabled_ms: r.get(22)?,
        mailbox_provisioned_ms: r.get(23)?,
        mailbox_deprovisioned_ms: r.get(24)?,
        created_ms: r.get(25)?,
        password_hash: r.get(26)?,
    })
}

const PAT_COLUMNS: &str = "id, org_id, user_id, name, scopes, created_ms, last_used_ms, expires_ms";

fn row_to_pat(r: &Row<'_>) -> rusqlite::Result<PersonalAccessToken> {
    let scopes: String = r.get(4)?;
    Ok(PersonalAccessToken {
        id: r.get(0)?,
        org_id: r.get(1)?,
        user_id: r.get(2)?,
        name: r.get(3)?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        created_ms: r.get(5)?,
        last_used_ms: r.get(6)?,
        expires_ms: r.get(7)?,
    })
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

fn insert_org(conn: &Connection, org: &Organization) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO organizations ({ORG_COLUMNS}, alias_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))
    .map_err(backend)?
    .execute(params![
        org.id,
        org.account,
        org.region,
        org.alias,
        org.state,
        org.directory_id,
        org.directory_type,
        org.default_mail_domain,
        serde_json::to_string(&org.domains).map_err(backend)?,
        org.kms_key_arn,
        org.interoperability_enabled,
        org.created_ms,
        org.completed_ms,
        org.alias.to_ascii_lowercase(),
    ])
    .map_err(map_write_error)?;
    Ok(())
}

fn read_client_token(
    conn: &Connection,
    account: &str,
    region: &str,
    operation: &str,
    token: &str,
    now_ms: Millis,
) -> Result<Option<ClientTokenRecord>, StoreError> {
    let row: Option<(Vec<u8>, String, Millis)> = conn
        .prepare_cached(
            "SELECT request_hash, result, created_ms FROM client_tokens \
             WHERE account = ?1 AND region = ?2 AND operation = ?3 AND token = ?4",
        )
        .map_err(backend)?
        .query_row(params![account, region, operation, token], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(backend)?;
    Ok(row.and_then(|(hash, result, created)| {
        if now_ms - created > CLIENT_TOKEN_TTL_MS {
            return None;
        }
        let request_hash: [u8; 32] = hash.try_into().ok()?;
        Some(ClientTokenRecord {
            request_hash,
            result,
        })
    }))
}

fn write_client_token(
    conn: &Connection,
    account: &str,
    region: &str,
    i: &Idempotency,
) -> Result<(), StoreError> {
    // An expired record of the same token is replaced; a live one is kept (first answer wins).
    conn.prepare_cached(
        "INSERT INTO client_tokens (account, region, operation, token, request_hash, result, created_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (account, region, operation, token) DO UPDATE SET \
           request_hash = excluded.request_hash, result = excluded.result, created_ms = excluded.created_ms \
         WHERE client_tokens.created_ms < ?7 - ?8",
    )
    .map_err(backend)?
    .execute(params![
        account,
        region,
        i.operation,
        i.token,
        i.request_hash.as_slice(),
        i.result,
        i.now_ms,
        CLIENT_TOKEN_TTL_MS,
    ])
    .map_err(backend)?;
    Ok(())
}

fn insert_user(conn: &Connection, user: &User) -> Result<(), StoreError> {
    let p = &user.profile;
    conn.prepare_cached(&format!(
        "INSERT INTO users ({USER_COLUMNS}, name_key, email_key) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
          ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)"
    ))
    .map_err(backend)?
    .execute(params![
        user.id,
        user.org_id,
        user.name,
        user.email,
        user.state.as_str(),
        user.role,
        p.display_name,
        p.first_name,
        p.last_name,
        p.initials,
        p.telephone,
        p.street,
        p.job_title,
        p.city,
        p.company,
        p.zip_code,
        p.department,
        p.country,
        p.office,
        p.hidden_from_global_address_list,
        user.identity_provider_user_id,
        user.enabled_ms,
        user.disabled_ms,
        user.mailbox_provisioned_ms,
        user.mailbox_deprovisioned_ms,
        user.created_ms,
        user.password_hash,
        user.name.to_ascii_lowercase(),
        user.email.as_ref().map(|e| e.to_ascii_lowercase()),
    ])
    .map_err(map_write_error)?;
    Ok(())
}

fn insert_pat(
    conn: &Connection,
    t: &PersonalAccessToken,
    secret_digest: &[u8; 32],
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO personal_access_tokens ({PAT_COLUMNS}, secret_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))
    .map_err(backend)?
    .execute(params![
        t.id,
        t.org_id,
        t.user_id,
        t.name,
        serde_json::to_string(&t.scopes).map_err(backend)?,
        t.created_ms,
        t.last_used_ms,
        t.expires_ms,
        secret_digest.as_slice(),
    ])
    .map_err(map_write_error)?;
    Ok(())
}

fn put_idp(
    conn: &Connection,
    org_id: &str,
    c: &IdentityProviderConfiguration,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO identity_provider_configurations \
         (org_id, authentication_mode, instance_arn, application_arn, pat_status, pat_lifetime_days) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (org_id) DO UPDATE SET \
         authentication_mode = excluded.authentication_mode, instance_arn = excluded.instance_arn, \
         application_arn = excluded.application_arn, pat_status = excluded.pat_status, \
         pat_lifetime_days = excluded.pat_lifetime_days",
    )
    .map_err(backend)?
    .execute(params![
        org_id,
        c.authentication_mode,
        c.instance_arn,
        c.application_arn,
        c.pat_status.as_str(),
        c.pat_lifetime_days
    ])
    .map_err(backend)?;
    Ok(())
}

/// Applies an optional text change: `Some(v)` sets the column.
fn set_opt(
    sets: &mut Vec<String>,
    values: &mut Vec<rusqlite::types::Value>,
    col: &str,
    v: Option<String>,
) {
    if let Some(v) = v {
        values.push(rusqlite::types::Value::Text(v));
        sets.push(format!("{col} = ?{}", values.len()));
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_organization(
        &self,
        org: Organization,
        idempotency: Option<Idempotency>,
    ) -> Result<Idempotent, StoreError> {
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            if let Some(i) = &idempotency
                && let Some(rec) = read_client_token(
                    &tx,
                    &org.account,
                    &org.region,
                    i.operation,
                    &i.token,
                    i.now_ms,
                )?
            {
                return Ok(if rec.request_hash == i.request_hash {
                    Idempotent::Replay(rec.result)
                } else {
                    Idempotent::Mismatch
                });
            }
            insert_org(&tx, &org)?;
            if let Some(i) = &idempotency {
                write_client_token(&tx, &org.account, &org.region, i)?;
            }
            tx.commit().map_err(backend)?;
            Ok(Idempotent::Done)
        })
        .await
    }

    async fn get_organization(
        &self,
        partition: &Partition,
        id: &str,
    ) -> Result<Option<Organization>, StoreError> {
        let (account, region, id) = (
            partition.account.clone(),
            partition.region.clone(),
            id.to_string(),
        );
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?1 AND account = ?2 AND region = ?3"
            ))
            .map_err(backend)?
            .query_row(params![id, account, region], row_to_org)
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn find_organization(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?1"
            ))
            .map_err(backend)?
            .query_row(params![id], row_to_org)
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn list_organizations(
        &self,
        partition: &Partition,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Organization>, StoreError> {
        let (account, region) = (partition.account.clone(), partition.region.clone());
        self.read(move |conn| {
            let (c_ms, c_id) = after
                .map(|c| (c.created_ms, c.id))
                .unwrap_or((i64::MIN, String::new()));
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ORG_COLUMNS} FROM organizations WHERE account = ?1 AND region = ?2 \
                     AND (created_ms, id) > (?3, ?4) ORDER BY created_ms, id LIMIT ?5"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![account, region, c_ms, c_id, limit as i64],
                    row_to_org,
                )
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn delete_organization(&self, org_id: &str) -> Result<(), StoreError> {
        let org_id = org_id.to_string();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            tx.execute(
                "UPDATE organizations SET state = ?2 WHERE id = ?1",
                params![org_id, org_state::DELETED],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM personal_access_tokens WHERE org_id = ?1",
                params![org_id],
            )
            .map_err(backend)?;
            tx.execute("DELETE FROM sessions WHERE org_id = ?1", params![org_id])
                .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn count_enabled_users(&self, org_id: &str) -> Result<u64, StoreError> {
        let org_id = org_id.to_string();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT COUNT(*) FROM users WHERE org_id = ?1 AND state = 'ENABLED'",
            )
            .map_err(backend)?
            .query_row(params![org_id], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn get_client_token(
        &self,
        partition: &Partition,
        operation: &str,
        token: &str,
        now_ms: Millis,
    ) -> Result<Option<ClientTokenRecord>, StoreError> {
        let (account, region) = (partition.account.clone(), partition.region.clone());
        let (operation, token) = (operation.to_string(), token.to_string());
        self.read(move |conn| {
            read_client_token(conn, &account, &region, &operation, &token, now_ms)
        })
        .await
    }

    async fn put_client_token(
        &self,
        partition: &Partition,
        idempotency: Idempotency,
    ) -> Result<(), StoreError> {
        let (account, region) = (partition.account.clone(), partition.region.clone());
        self.run(move |conn| write_client_token(conn, &account, &region, &idempotency))
            .await
    }

    async fn create_user(&self, user: User) -> Result<(), StoreError> {
        self.run(move |conn| insert_user(conn, &user)).await
    }

    async fn find_user(&self, org_id: &str, ident: &str) -> Result<Option<User>, StoreError> {
        let (org_id, ident) = (org_id.to_string(), ident.to_string());
        self.read(move |conn| {
            let key = ident.to_ascii_lowercase();
            // Three indexed lookups instead of one OR (which the planner answers with a scan of the organization's
            // users). Order: exact id first, then a live user before a DELETED one, then the newest.
            conn.prepare_cached(&format!(
                "SELECT * FROM ( \
                   SELECT {USER_COLUMNS}, 1 AS by_id FROM users WHERE id = ?2 AND org_id = ?1 \
                   UNION ALL SELECT {USER_COLUMNS}, 0 FROM users WHERE org_id = ?1 AND name_key = ?3 \
                   UNION ALL SELECT {USER_COLUMNS}, 0 FROM users WHERE org_id = ?1 AND email_key = ?3) \
                 ORDER BY by_id DESC, (state = 'DELETED') ASC, created_ms DESC LIMIT 1"
            ))
            .map_err(backend)?
            .query_row(params![org_id, ident, key], row_to_user)
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn list_users(
        &self,
        org_id: &str,
        filter: &UserFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        let org_id = org_id.to_string();
        let filter = filter.clone();
        self.read(move |conn| {
            let (c_ms, c_id) = after.map(|c| (c.created_ms, c.id)).unwrap_or((i64::MIN, String::new()));
            let (clause, arg): (&str, Option<String>) = match &filter {
                UserFilter::None => ("1 = 1 OR ?5 IS NULL", None),
                UserFilter::UsernamePrefix(p) => ("name LIKE ?5 ESCAPE '\\'", Some(like_prefix(p))),
                UserFilter::DisplayNamePrefix(p) => ("display_name LIKE ?5 ESCAPE '\\'", Some(like_prefix(p))),
                UserFilter::PrimaryEmailPrefix(p) => ("email LIKE ?5 ESCAPE '\\'", Some(like_prefix(p))),
                UserFilter::State(s) => ("state = ?5", Some(s.as_str().to_string())),
                UserFilter::IdentityProviderUserIdPrefix(p) => {
                    ("identity_provider_user_id LIKE ?5 ESCAPE '\\'", Some(like_prefix(p)))
                }
            };
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE org_id = ?1 AND (created_ms, id) > (?2, ?3) \
                     AND ({clause}) ORDER BY created_ms, id LIMIT ?4"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![org_id, c_ms, c_id, limit as i64, arg], row_to_user)
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn update_user(&self, user_id: &str, u: UserUpdate) -> Result<(), StoreError> {
        let user_id = user_id.to_string();
        self.run(move |conn| {
            let mut sets = Vec::new();
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            set_opt(&mut sets, &mut values, "role", u.role);
            set_opt(&mut sets, &mut values, "display_name", u.display_name);
            set_opt(&mut sets, &mut values, "first_name", u.first_name);
            set_opt(&mut sets, &mut values, "last_name", u.last_name);
            set_opt(&mut sets, &mut values, "initials", u.initials);
            set_opt(&mut sets, &mut values, "telephone", u.telephone);
            set_opt(&mut sets, &mut values, "street", u.street);
            set_opt(&mut sets, &mut values, "job_title", u.job_title);
            set_opt(&mut sets, &mut values, "city", u.city);
            set_opt(&mut sets, &mut values, "company", u.company);
            set_opt(&mut sets, &mut values, "zip_code", u.zip_code);
            set_opt(&mut sets, &mut values, "department", u.department);
            set_opt(&mut sets, &mut values, "country", u.country);
            set_opt(&mut sets, &mut values, "office", u.office);
            if let Some(h) = u.hidden_from_global_address_list {
                values.push(rusqlite::types::Value::Integer(h as i64));
                sets.push(format!("hidden_from_gal = ?{}", values.len()));
            }
            if let Some(idp) = u.identity_provider_user_id {
                values.push(idp.map_or(rusqlite::types::Value::Null, rusqlite::types::Value::Text));
                sets.push(format!("identity_provider_user_id = ?{}", values.len()));
            }
            if sets.is_empty() {
                return Ok(());
            }
            values.push(rusqlite::types::Value::Text(user_id));
            let sql = format!(
                "UPDATE users SET {} WHERE id = ?{}",
                sets.join(", "),
                values.len()
            );
            conn.execute(&sql, rusqlite::params_from_iter(values))
                .map_err(map_write_error)?;
            Ok(())
        })
        .await
    }

    async fn register_user(
        &self,
        user_id: &str,
        email: &str,
        now_ms: Millis,
    ) -> Result<(), StoreError> {
        let (user_id, email) = (user_id.to_string(), email.to_string());
        self.run(move |conn| {
            conn.prepare_cached(
                "UPDATE users SET state = 'ENABLED', email = ?2, email_key = ?3, enabled_ms = ?4, \
                 mailbox_provisioned_ms = ?4, credential_generation = credential_generation + 1 WHERE id = ?1",
            )
            .map_err(backend)?
            .execute(params![user_id, email, email.to_ascii_lowercase(), now_ms])
            .map_err(map_write_error)?;
            Ok(())
        })
        .await
    }

    async fn deregister_user(&self, user_id: &str, now_ms: Millis) -> Result<(), StoreError> {
        let user_id = user_id.to_string();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute(
                "UPDATE users SET state = 'DISABLED', email = NULL, email_key = NULL, disabled_ms = ?2, \
                 mailbox_deprovisioned_ms = ?2, credential_generation = credential_generation + 1 WHERE id = ?1",
                params![user_id, now_ms],
            )
            .map_err(backend)?;
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", params![user_id])
                .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn delete_user(&self, user_id: &str, _now_ms: Millis) -> Result<(), StoreError> {
        let user_id = user_id.to_string();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute(
                "UPDATE users SET state = 'DELETED', credential_generation = credential_generation + 1 \
                 WHERE id = ?1",
                params![user_id],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM personal_access_tokens WHERE user_id = ?1",
                params![user_id],
            )
            .map_err(backend)?;
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", params![user_id])
                .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<(), StoreError> {
        let (user_id, hash) = (user_id.to_string(), password_hash.to_string());
        self.run(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute(
                "UPDATE users SET password_hash = ?2, credential_generation = credential_generation + 1 \
                 WHERE id = ?1",
                params![user_id, hash],
            )
            .map_err(backend)?;
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", params![user_id])
                .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn put_identity_provider_configuration(
        &self,
        org_id: &str,
        c: IdentityProviderConfiguration,
    ) -> Result<(), StoreError> {
        let org_id = org_id.to_string();
        self.run(move |conn| put_idp(conn, &org_id, &c)).await
    }

    async fn get_identity_provider_configuration(
        &self,
        org_id: &str,
    ) -> Result<Option<IdentityProviderConfiguration>, StoreError> {
        let org_id = org_id.to_string();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT authentication_mode, instance_arn, application_arn, pat_status, pat_lifetime_days \
                 FROM identity_provider_configurations WHERE org_id = ?1",
            )
            .map_err(backend)?
            .query_row(params![org_id], |r| {
                let status: String = r.get(3)?;
                Ok(IdentityProviderConfiguration {
                    authentication_mode: r.get(0)?,
                    instance_arn: r.get(1)?,
                    application_arn: r.get(2)?,
                    pat_status: PatStatus::parse(&status).unwrap_or(PatStatus::Inactive),
                    pat_lifetime_days: r.get(4)?,
                })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn delete_identity_provider_configuration(&self, org_id: &str) -> Result<(), StoreError> {
        let org_id = org_id.to_string();
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM identity_provider_configurations WHERE org_id = ?1",
                params![org_id],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn insert_personal_access_token(
        &self,
        t: PersonalAccessToken,
        secret_digest: [u8; 32],
    ) -> Result<(), StoreError> {
        self.run(move |conn| insert_pat(conn, &t, &secret_digest))
            .await
    }

    async fn insert_personal_access_token_for_session(
        &self,
        t: PersonalAccessToken,
        secret_digest: [u8; 32],
        session_digest: [u8; 32],
    ) -> Result<bool, StoreError> {
        self.run(move |conn| {
            // One writer connection: the check and the insert cannot interleave with a reset.
            let tx = conn.transaction().map_err(backend)?;
            let live: bool = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.token_hash = ?1 AND s.user_id = ?2 AND u.state = 'ENABLED' \
                     AND s.credential_generation = u.credential_generation)",
                )
                .map_err(backend)?
                .query_row(params![session_digest.as_slice(), t.user_id], |r| r.get(0))
                .map_err(backend)?;
            if !live {
                return Ok(false);
            }
            insert_pat(&tx, &t, &secret_digest)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn list_personal_access_tokens(
        &self,
        org_id: &str,
        user_id: Option<&str>,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<PersonalAccessToken>, StoreError> {
        let org_id = org_id.to_string();
        let user_id = user_id.map(str::to_string);
        self.read(move |conn| {
            let (c_ms, c_id) = after.map(|c| (c.created_ms, c.id)).unwrap_or((i64::MIN, String::new()));
            // Two statements rather than `(?2 IS NULL OR user_id = ?2)`, each pinned to its index: without
            // statistics the planner walked the organization index for a user's tokens (67 ms at 1M tokens).
            let rows = if let Some(user_id) = user_id {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {PAT_COLUMNS} FROM personal_access_tokens INDEXED BY pats_user_page \
                         WHERE org_id = ?1 AND user_id = ?2 \
                         AND (created_ms, id) > (?3, ?4) ORDER BY created_ms, id LIMIT ?5"
                    ))
                    .map_err(backend)?;
                stmt.query_map(params![org_id, user_id, c_ms, c_id, limit as i64], row_to_pat)
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
            } else {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {PAT_COLUMNS} FROM personal_access_tokens INDEXED BY pats_org_page \
                         WHERE org_id = ?1 \
                         AND (created_ms, id) > (?2, ?3) ORDER BY created_ms, id LIMIT ?4"
                    ))
                    .map_err(backend)?;
                stmt.query_map(params![org_id, c_ms, c_id, limit as i64], row_to_pat)
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
            };
            rows.map_err(backend)
        })
        .await
    }

    async fn get_personal_access_token(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        let (org_id, id) = (org_id.to_string(), id.to_string());
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {PAT_COLUMNS} FROM personal_access_tokens WHERE org_id = ?1 AND id = ?2"
            ))
            .map_err(backend)?
            .query_row(params![org_id, id], row_to_pat)
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn delete_personal_access_token(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let (org_id, id) = (org_id.to_string(), id.to_string());
        self.run(move |conn| {
            conn.prepare_cached("DELETE FROM personal_access_tokens WHERE org_id = ?1 AND id = ?2")
                .map_err(backend)?
                .execute(params![org_id, id])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn find_personal_access_token_by_digest(
        &self,
        digest: [u8; 32],
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {PAT_COLUMNS} FROM personal_access_tokens WHERE secret_hash = ?1"
            ))
            .map_err(backend)?
            .query_row(params![digest.as_slice()], row_to_pat)
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn verify_lookup(&self, digest: [u8; 32]) -> Result<Option<VerifyRecord>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT t.id, t.org_id, t.user_id, t.name, t.scopes, t.created_ms, t.last_used_ms, t.expires_ms, \
                        u.name_key, u.email_key, u.state, o.state, c.pat_status \
                 FROM personal_access_tokens t \
                 JOIN users u ON u.id = t.user_id \
                 JOIN organizations o ON o.id = t.org_id \
                 LEFT JOIN identity_provider_configurations c ON c.org_id = t.org_id \
                 WHERE t.secret_hash = ?1",
            )
            .map_err(backend)?
            .query_row(params![digest.as_slice()], |r| {
                let token = row_to_pat(r)?;
                let user_state: String = r.get(10)?;
                let pat_status: Option<String> = r.get(12)?;
                Ok(VerifyRecord {
                    user_id: token.user_id.clone(),
                    user_name_key: r.get(8)?,
                    user_email_key: r.get(9)?,
                    user_state: UserState::parse(&user_state).unwrap_or(UserState::Disabled),
                    org_state: r.get(11)?,
                    pat_status: pat_status.as_deref().and_then(PatStatus::parse),
                    token,
                })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn touch_personal_access_token(
        &self,
        id: &str,
        now_ms: Millis,
        min_interval_ms: Millis,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        self.run(move |conn| {
            conn.prepare_cached(
                "UPDATE personal_access_tokens SET last_used_ms = ?2 \
                 WHERE id = ?1 AND (last_used_ms IS NULL OR last_used_ms <= ?2 - ?3)",
            )
            .map_err(backend)?
            .execute(params![id, now_ms, min_interval_ms])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn create_session(
        &self,
        digest: [u8; 32],
        s: Session,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let password_hash = password_hash.to_string();
        self.run(move |conn| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO sessions (token_hash, org_id, user_id, expires_ms, authenticated_ms, \
                     credential_generation) \
                     SELECT ?1, org_id, id, ?4, ?5, credential_generation FROM users \
                     WHERE id = ?3 AND org_id = ?2 AND state = 'ENABLED' AND password_hash = ?6",
                )
                .map_err(backend)?
                .execute(params![
                    digest.as_slice(),
                    s.org_id,
                    s.user_id,
                    s.expires_ms,
                    s.authenticated_ms,
                    password_hash
                ])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_session(&self, digest: [u8; 32]) -> Result<Option<Session>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT s.org_id, s.user_id, s.expires_ms, s.authenticated_ms FROM sessions s \
                 JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = ?1 AND s.credential_generation = u.credential_generation",
            )
            .map_err(backend)?
            .query_row(params![digest.as_slice()], |r| {
                Ok(Session {
                    org_id: r.get(0)?,
                    user_id: r.get(1)?,
                    expires_ms: r.get(2)?,
                    authenticated_ms: r.get(3)?,
                })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn reauthenticate_session(
        &self,
        digest: [u8; 32],
        password_hash: &str,
        now_ms: Millis,
    ) -> Result<bool, StoreError> {
        let password_hash = password_hash.to_string();
        self.run(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE sessions SET authenticated_ms = ?3 WHERE token_hash = ?1 AND credential_generation = \
                     (SELECT credential_generation FROM users WHERE id = sessions.user_id AND state = 'ENABLED' \
                      AND password_hash = ?2)",
                )
                .map_err(backend)?
                .execute(params![digest.as_slice(), password_hash, now_ms])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_session(&self, digest: [u8; 32]) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")
                .map_err(backend)?
                .execute(params![digest.as_slice()])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn list_partitions(&self) -> Result<Vec<Partition>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT DISTINCT account, region FROM organizations ORDER BY account, region",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Partition {
                        account: r.get(0)?,
                        region: r.get(1)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn import(&self, batch: ImportBatch) -> Result<(), StoreError> {
        self.run(move |conn| {
            // One transaction with cached statements: the bulk path of `seed --generate`.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            for org in &batch.organizations {
                insert_org(&tx, org)?;
            }
            for user in &batch.users {
                insert_user(&tx, user)?;
            }
            for (org_id, config) in &batch.configurations {
                put_idp(&tx, org_id, config)?;
            }
            for (token, digest) in &batch.tokens {
                insert_pat(&tx, token, digest)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn reset(&self, partition: Option<&Partition>) -> Result<(), StoreError> {
        let partition = partition.cloned();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            match partition {
                None => tx.execute_batch(
                    "DELETE FROM sessions; DELETE FROM personal_access_tokens; \
                     DELETE FROM identity_provider_configurations; DELETE FROM users; \
                     DELETE FROM organizations; DELETE FROM client_tokens;",
                ),
                Some(p) => {
                    let orgs = "(SELECT id FROM organizations WHERE account = ?1 AND region = ?2)";
                    for table in [
                        "sessions",
                        "personal_access_tokens",
                        "identity_provider_configurations",
                        "users",
                    ] {
                        tx.execute(
                            &format!("DELETE FROM {table} WHERE org_id IN {orgs}"),
                            params![p.account, p.region],
                        )
                        .map_err(backend)?;
                    }
                    tx.execute(
                        "DELETE FROM organizations WHERE account = ?1 AND region = ?2",
                        params![p.account, p.region],
                    )
                    .map_err(backend)?;
                    tx.execute(
                        "DELETE FROM client_tokens WHERE account = ?1 AND region = ?2",
                        params![p.account, p.region],
                    )
                    .map(|_| ())
                }
            }
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            // Fold the WAL back into the main file so a clean shutdown leaves one self-contained file.
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(backend)
        })
        .await
    }
}
