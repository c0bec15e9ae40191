//! The schema as the store sees it, written once for both backends: the tables and their columns, every statement
//! SQLite and PostgreSQL share, the parameters of each write and the decoding of each row.
//!
//! Statements are written with SQLite's `?N` placeholders; [`stmt!`] also makes the PostgreSQL text (`$N`) at
//! compile time, so neither backend rewrites or formats a statement per request. A backend picks its text from a
//! [`Stmt`], binds [`Param`]s (which both drivers accept) and hands its rows to the decoders here through
//! [`SqlRow`]. What is left in `sqlite.rs` and `postgres.rs` is how to run a statement, how errors map, the
//! migrations and the few statements that differ by more than placeholders.
//!
//! A new column: a migration per backend, then this file: [`TABLES`], the column list macro, the decoder and the
//! insert parameters of its table.

use crate::clock::Millis;
use crate::domain::{
    Cursor, IdentityProviderConfiguration, Organization, Partition, PatStatus, PersonalAccessToken,
    Session, User, UserFilter, UserProfile, UserState, UserUpdate, org_state,
};

use async_trait::async_trait;

use super::{
    AttemptRequest, CLIENT_TOKEN_TTL_MS, ClientTokenRecord, Idempotency, Idempotent, ImportBatch,
    SharedAttempt, Store, StoreError, VerifyRecord,
};

/// One statement in both dialects.
#[derive(Debug, Clone, Copy)]
pub struct Stmt {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// `sql` with every `?` turned into `$` (same length, so it can run in a constant).
pub const fn dollars<const N: usize>(sql: &str) -> [u8; N] {
    let bytes = sql.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = if bytes[i] == b'?' { b'$' } else { bytes[i] };
        i += 1;
    }
    out
}

/// A [`Stmt`] from one SQLite text (PostgreSQL's is the same with `$N`), or from two texts that differ by more.
macro_rules! stmt {
    ($sql:expr) => {
        $crate::store::sql::stmt!($sql, $sql)
    };
    ($sqlite:expr, $postgres:expr) => {
        $crate::store::sql::Stmt {
            sqlite: $sqlite,
            postgres: {
                const TEXT: &str = $postgres;
                const BYTES: [u8; TEXT.len()] = $crate::store::sql::dollars(TEXT);
                match std::str::from_utf8(&BYTES) {
                    Ok(s) => s,
                    Err(_) => panic!("statement is not UTF-8"),
                }
            },
        }
    };
}
pub(crate) use stmt;

/// How a stored column is typed (SQLite's dynamic values are checked against it when copying to PostgreSQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    OptText,
    Int,
    OptInt,
    /// SQLite INTEGER 0/1, PostgreSQL BOOLEAN.
    Bool,
    Bytes,
}

use Kind::*;

/// Every table with every column, parents before children (foreign keys hold at every step of a copy). `workmail-pat
/// migrate` copies exactly these; a test checks them against the migrated SQLite schema.
#[rustfmt::skip]
pub const TABLES: &[(&str, &[(&str, Kind)])] = &[
    ("organizations", &[
        ("id", Text), ("account", Text), ("region", Text), ("alias", Text), ("alias_key", Text), ("state", Text),
        ("directory_id", Text), ("directory_type", Text), ("default_mail_domain", Text), ("domains", Text),
        ("kms_key_arn", OptText), ("interoperability_enabled", Bool), ("created_ms", Int), ("completed_ms", OptInt),
    ]),
    ("users", &[
        ("id", Text), ("org_id", Text), ("name", Text), ("name_key", Text), ("email", OptText),
        ("email_key", OptText), ("state", Text), ("role", Text), ("display_name", Text), ("first_name", OptText),
        ("last_name", OptText), ("initials", OptText), ("telephone", OptText), ("street", OptText),
        ("job_title", OptText), ("city", OptText), ("company", OptText), ("zip_code", OptText),
        ("department", OptText), ("country", OptText), ("office", OptText), ("hidden_from_gal", Bool),
        ("identity_provider_user_id", OptText), ("enabled_ms", OptInt), ("disabled_ms", OptInt),
        ("mailbox_provisioned_ms", OptInt), ("mailbox_deprovisioned_ms", OptInt), ("created_ms", Int),
        ("password_hash", OptText), ("credential_generation", Int),
    ]),
    ("identity_provider_configurations", &[
        ("org_id", Text), ("authentication_mode", Text), ("instance_arn", Text), ("application_arn", Text),
        ("pat_status", Text), ("pat_lifetime_days", Int),
    ]),
    ("personal_access_tokens", &[
        ("id", Text), ("org_id", Text), ("user_id", Text), ("name", Text), ("scopes", Text), ("created_ms", Int),
        ("last_used_ms", OptInt), ("expires_ms", Int), ("secret_hash", Bytes),
    ]),
    ("client_tokens", &[
        ("account", Text), ("region", Text), ("operation", Text), ("token", Text), ("request_hash", Bytes),
        ("result", Text), ("created_ms", Int),
    ]),
    ("sessions", &[
        ("token_hash", Bytes), ("org_id", Text), ("user_id", Text), ("expires_ms", Int), ("authenticated_ms", Int),
        ("credential_generation", Int),
    ]),
];

/// The columns [`org`] decodes, in its order.
macro_rules! org_columns {
    () => {
        "id, account, region, alias, state, directory_id, directory_type, default_mail_domain, domains, \
         kms_key_arn, interoperability_enabled, created_ms, completed_ms"
    };
}

/// The columns [`user`] decodes, in its order.
macro_rules! user_columns {
    () => {
        "id, org_id, name, email, state, role, display_name, first_name, last_name, initials, telephone, street, \
         job_title, city, company, zip_code, department, country, office, hidden_from_gal, \
         identity_provider_user_id, enabled_ms, disabled_ms, mailbox_provisioned_ms, mailbox_deprovisioned_ms, \
         created_ms, password_hash"
    };
}

/// The columns [`pat`] decodes, in its order.
macro_rules! pat_columns {
    () => {
        "id, org_id, user_id, name, scopes, created_ms, last_used_ms, expires_ms"
    };
}
pub(crate) use {pat_columns, user_columns};

/// A bound value, accepted by both drivers.
#[derive(Debug, Clone)]
pub enum Param {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
}

macro_rules! param_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Param {
            fn from($v: $t) -> Self {
                $e
            }
        })*
    };
}
param_from! {
    &str => |v| Param::Text(v.to_string()),
    &String => |v| Param::Text(v.clone()),
    String => |v| Param::Text(v),
    i64 => |v| Param::Int(v),
    bool => |v| Param::Bool(v),
    [u8; 32] => |v| Param::Bytes(v.to_vec()),
}
impl<T: Clone + Into<Param>> From<&Option<T>> for Param {
    fn from(v: &Option<T>) -> Self {
        v.clone().map_or(Param::Null, Into::into)
    }
}
impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(v: Option<T>) -> Self {
        v.map_or(Param::Null, Into::into)
    }
}

/// The parameters of a statement: `args![a, b, ...]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$($crate::store::sql::Param::from($v)),*] };
}
pub(crate) use args;

/// One statement of a write with its parameters; a backend runs a list of them in one transaction.
pub type Step = (Stmt, Vec<Param>);

/// Reads the columns of one result row, whichever driver produced it.
pub trait SqlRow {
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn flag(&self, i: usize) -> Result<bool, StoreError>;
    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError>;
}

/// The [`SqlRow`] methods for a driver's row type, each reading with `$get` and mapping errors with `$err`.
macro_rules! sql_row_getters {
    ($get:ident, $err:path) => {
        fn text(&self, i: usize) -> Result<String, StoreError> {
            self.$get(i).map_err($err)
        }
        fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
            self.$get(i).map_err($err)
        }
        fn int(&self, i: usize) -> Result<i64, StoreError> {
            self.$get(i).map_err($err)
        }
        fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
            self.$get(i).map_err($err)
        }
        fn flag(&self, i: usize) -> Result<bool, StoreError> {
            self.$get(i).map_err($err)
        }
        fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
            self.$get(i).map_err($err)
        }
    };
}
pub(crate) use sql_row_getters;

/// Turns one row into a value.
pub type Decode<T> = fn(&dyn SqlRow) -> Result<T, StoreError>;

pub fn org(r: &dyn SqlRow) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: r.text(0)?,
        account: r.text(1)?,
        region: r.text(2)?,
        alias: r.text(3)?,
        state: r.text(4)?,
        directory_id: r.text(5)?,
        directory_type: r.text(6)?,
        default_mail_domain: r.text(7)?,
        domains: serde_json::from_str(&r.text(8)?).unwrap_or_default(),
        kms_key_arn: r.opt_text(9)?,
        interoperability_enabled: r.flag(10)?,
        created_ms: r.int(11)?,
        completed_ms: r.opt_int(12)?,
    })
}

pub fn user(r: &dyn SqlRow) -> Result<User, StoreError> {
    Ok(User {
        id: r.text(0)?,
        org_id: r.text(1)?,
        name: r.text(2)?,
        email: r.opt_text(3)?,
        state: UserState::parse(&r.text(4)?).unwrap_or(UserState::Disabled),
        role: r.text(5)?,
        profile: UserProfile {
            display_name: r.text(6)?,
            first_name: r.opt_text(7)?,
            last_name: r.opt_text(8)?,
            initials: r.opt_text(9)?,
            telephone: r.opt_text(10)?,
            street: r.opt_text(11)?,
            job_title: r.opt_text(12)?,
            city: r.opt_text(13)?,
            company: r.opt_text(14)?,
            zip_code: r.opt_text(15)?,
            department: r.opt_text(16)?,
            country: r.opt_text(17)?,
            office: r.opt_text(18)?,
            hidden_from_global_address_list: r.flag(19)?,
        },
        identity_provider_user_id: r.opt_text(20)?,
        enabled_ms: r.opt_int(21)?,
        disabled_ms: r.opt_int(22)?,
        mailbox_provisioned_ms: r.opt_int(23)?,
        mailbox_deprovisioned_ms: r.opt_int(24)?,
        created_ms: r.int(25)?,
        password_hash: r.opt_text(26)?,
    })
}

pub fn pat(r: &dyn SqlRow) -> Result<PersonalAccessToken, StoreError> {
    Ok(PersonalAccessToken {
        id: r.text(0)?,
        org_id: r.text(1)?,
        user_id: r.text(2)?,
        name: r.text(3)?,
        scopes: serde_json::from_str(&r.text(4)?).unwrap_or_default(),
        created_ms: r.int(5)?,
        last_used_ms: r.opt_int(6)?,
        expires_ms: r.int(7)?,
    })
}

fn idp(r: &dyn SqlRow) -> Result<IdentityProviderConfiguration, StoreError> {
    Ok(IdentityProviderConfiguration {
        authentication_mode: r.text(0)?,
        instance_arn: r.text(1)?,
        application_arn: r.text(2)?,
        pat_status: PatStatus::parse(&r.text(3)?).unwrap_or(PatStatus::Inactive),
        pat_lifetime_days: r.int(4)?,
    })
}

fn session(r: &dyn SqlRow) -> Result<Session, StoreError> {
    Ok(Session {
        org_id: r.text(0)?,
        user_id: r.text(1)?,
        expires_ms: r.int(2)?,
        authenticated_ms: r.int(3)?,
    })
}

fn verify_record(r: &dyn SqlRow) -> Result<VerifyRecord, StoreError> {
    let token = pat(r)?;
    Ok(VerifyRecord {
        user_id: token.user_id.clone(),
        user_name_key: r.text(8)?,
        user_email_key: r.opt_text(9)?,
        user_state: UserState::parse(&r.text(10)?).unwrap_or(UserState::Disabled),
        org_state: r.text(11)?,
        pat_status: r.opt_text(12)?.as_deref().and_then(PatStatus::parse),
        token,
    })
}

fn partition(r: &dyn SqlRow) -> Result<Partition, StoreError> {
    Ok(Partition {
        account: r.text(0)?,
        region: r.text(1)?,
    })
}

/// A remembered ClientToken with its creation time.
pub fn client_token(r: &dyn SqlRow) -> Result<(ClientTokenRecord, Millis), StoreError> {
    let hash = r.bytes(0)?;
    let request_hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| StoreError::Backend("stored request hash is not 32 bytes".into()))?;
    let result = r.text(1)?;
    Ok((
        ClientTokenRecord {
            request_hash,
            result,
        },
        r.int(2)?,
    ))
}

/// A remembered ClientToken, if it is still within its lifetime at `now_ms`.
pub fn live(
    record: Option<(ClientTokenRecord, Millis)>,
    now_ms: Millis,
) -> Option<ClientTokenRecord> {
    record.and_then(|(rec, created)| (now_ms - created <= CLIENT_TOKEN_TTL_MS).then_some(rec))
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

/// `SELECT <columns of a decoder> <rest>`.
macro_rules! select {
    ($columns:ident, $rest:literal) => {
        stmt!(concat!("SELECT ", $columns!(), " ", $rest))
    };
}

// --- statements the backends use in the transactions they drive themselves ---

pub fn insert_org(o: &Organization) -> Result<Step, StoreError> {
    let insert = stmt!(concat!(
        "INSERT INTO organizations (",
        org_columns!(),
        ", alias_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ));
    let args = args![
        &o.id,
        &o.account,
        &o.region,
        &o.alias,
        &o.state,
        &o.directory_id,
        &o.directory_type,
        &o.default_mail_domain,
        json(&o.domains)?,
        &o.kms_key_arn,
        o.interoperability_enabled,
        o.created_ms,
        o.completed_ms,
        o.alias.to_ascii_lowercase(),
    ];
    Ok((insert, args))
}

pub const READ_CLIENT_TOKEN: Stmt = stmt!(
    "SELECT request_hash, result, created_ms FROM client_tokens \
     WHERE account = ?1 AND region = ?2 AND operation = ?3 AND token = ?4"
);

/// Claims a ClientToken: inserts it, or takes over an expired record of it (a live one is kept: first answer
/// wins). Changes one row when this call now owns the token. On PostgreSQL a concurrent claimant's uncommitted
/// insert makes this wait until that transaction ends.
pub fn claim_client_token(account: &str, region: &str, i: &Idempotency) -> Step {
    let claim = stmt!(
        "INSERT INTO client_tokens (account, region, operation, token, request_hash, result, created_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (account, region, operation, token) DO UPDATE SET \
           request_hash = excluded.request_hash, result = excluded.result, created_ms = excluded.created_ms \
         WHERE client_tokens.created_ms < CAST(?7 AS BIGINT) - CAST(?8 AS BIGINT)"
    );
    let (op, ttl) = (i.operation, CLIENT_TOKEN_TTL_MS);
    let args = args![
        account,
        region,
        op,
        &i.token,
        i.request_hash,
        &i.result,
        i.now_ms,
        ttl
    ];
    (claim, args)
}

/// One row while the session is live for this user (its generation is the user's and the user is ENABLED). On
/// PostgreSQL the owner's row is share-locked: a concurrent reset or deletion waits for the transaction this runs
/// in, or commits first and the re-checked row no longer matches.
pub const LIVE_SESSION: Stmt = stmt!(
    "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id \
     WHERE s.token_hash = ?1 AND s.user_id = ?2 AND u.state = 'ENABLED' \
     AND s.credential_generation = u.credential_generation",
    "SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id \
     WHERE s.token_hash = ?1 AND s.user_id = ?2 AND u.state = 'ENABLED' \
     AND s.credential_generation = u.credential_generation FOR SHARE OF u"
);

fn insert_user(u: &User) -> Step {
    let insert = stmt!(concat!(
        "INSERT INTO users (",
        user_columns!(),
        ", name_key, email_key) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
          ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)"
    ));
    let p = &u.profile;
    let args = args![
        &u.id,
        &u.org_id,
        &u.name,
        &u.email,
        u.state.as_str(),
        &u.role,
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
        p.hidden_from_global_address_list,
        &u.identity_provider_user_id,
        u.enabled_ms,
        u.disabled_ms,
        u.mailbox_provisioned_ms,
        u.mailbox_deprovisioned_ms,
        u.created_ms,
        &u.password_hash,
        u.name.to_ascii_lowercase(),
        u.email.as_ref().map(|e| e.to_ascii_lowercase()),
    ];
    (insert, args)
}

fn put_idp(org_id: &str, c: &IdentityProviderConfiguration) -> Step {
    let put = stmt!(
        "INSERT INTO identity_provider_configurations \
         (org_id, authentication_mode, instance_arn, application_arn, pat_status, pat_lifetime_days) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (org_id) DO UPDATE SET \
         authentication_mode = excluded.authentication_mode, instance_arn = excluded.instance_arn, \
         application_arn = excluded.application_arn, pat_status = excluded.pat_status, \
         pat_lifetime_days = excluded.pat_lifetime_days"
    );
    let (mode, status) = (&c.authentication_mode, c.pat_status.as_str());
    let args = args![
        org_id,
        mode,
        &c.instance_arn,
        &c.application_arn,
        status,
        c.pat_lifetime_days
    ];
    (put, args)
}

pub fn insert_pat(t: &PersonalAccessToken, secret_digest: [u8; 32]) -> Result<Step, StoreError> {
    let insert = stmt!(concat!(
        "INSERT INTO personal_access_tokens (",
        pat_columns!(),
        ", secret_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ));
    let args = args![
        &t.id,
        &t.org_id,
        &t.user_id,
        &t.name,
        json(&t.scopes)?,
        t.created_ms,
        t.last_used_ms,
        t.expires_ms,
        secret_digest,
    ];
    Ok((insert, args))
}

/// Ends a user's sessions after a change of credentials (the generation moved with it).
const END_SESSIONS: Stmt = stmt!("DELETE FROM sessions WHERE user_id = ?1");

// --- the store, written once over a backend's executor ---

/// How a backend runs statements. Every executor is a [`Store`] (below): a backend adds only how it runs a
/// statement, its three statements that differ by more than placeholders and the two writes whose transactions it
/// drives itself.
#[async_trait]
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Resolves `?2` (id) or `?3` (lower-cased name or email) in organization `?1`, the exact id first, then a
    /// live user before a DELETED one, then the newest; [`user`] columns.
    const FIND_USER: Stmt;
    /// A user's tokens (`?1` org, `?2` user) after (`?3`, `?4`), at most `?5`; [`pat`] columns.
    const PATS_OF_USER: Stmt;
    /// An organization's tokens (`?1`) after (`?2`, `?3`), at most `?4`; [`pat`] columns.
    const PATS_OF_ORG: Stmt;

    /// Runs a query and decodes every row.
    async fn all<T: Send + 'static>(
        &self,
        sql: Stmt,
        args: Vec<Param>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError>;

    /// Runs one write, or several in one transaction; returns the rows the last one changed. `retry_safe`: running
    /// it twice is harmless even if the first run's commit reached the server (reads, deletes, absolute updates).
    async fn write(&self, retry_safe: bool, steps: Vec<Step>) -> Result<u64, StoreError>;

    /// Inserts the organization (`insert`) and, with a ClientToken, claims it ([`claim_client_token`]) or answers
    /// with the record already there ([`READ_CLIENT_TOKEN`]), in one transaction.
    async fn create_org(
        &self,
        insert: Step,
        org: Organization,
        idempotency: Option<Idempotency>,
    ) -> Result<Idempotent, StoreError>;

    /// Runs `insert` if [`LIVE_SESSION`] with `check` finds the session live, in one transaction.
    async fn insert_if_live(&self, insert: Step, check: Vec<Param>) -> Result<bool, StoreError>;

    /// Flushes and closes cleanly.
    async fn shut_down(&self) -> Result<(), StoreError>;

    /// [`Store::shares_attempts`].
    fn shares_attempts(&self) -> bool {
        false
    }

    /// [`Store::reserve_attempt`]: only a backend shared by several processes keeps attempts.
    async fn reserve_shared_attempt(
        &self,
        request: &AttemptRequest,
    ) -> Result<SharedAttempt, StoreError> {
        let _ = request;
        Ok(SharedAttempt::NotShared)
    }

    /// [`Store::settle_attempt`].
    async fn settle_shared_attempt(
        &self,
        request: &AttemptRequest,
        reserved: &[i64],
        failed: bool,
    ) -> Result<(), StoreError> {
        let _ = (request, reserved, failed);
        Ok(())
    }

    /// Runs a read; one whose text parameter holds U+0000 matches nothing and is answered without asking.
    /// PostgreSQL `text` cannot hold that character and fails the whole statement when one is bound (SQLSTATE
    /// 22021), while no stored value contains one (validation refuses it in every written string).
    async fn rows<T: Send + 'static>(
        &self,
        sql: Stmt,
        args: Vec<Param>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        if holds_nul(&args) {
            return Ok(Vec::new());
        }
        self.all(sql, args, decode).await
    }

    /// The first row of [`Executor::rows`].
    async fn row<T: Send + 'static>(
        &self,
        sql: Stmt,
        args: Vec<Param>,
        decode: Decode<T>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.rows(sql, args, decode).await?.into_iter().next())
    }

    /// Runs one write statement.
    async fn write1(
        &self,
        retry_safe: bool,
        sql: Stmt,
        args: Vec<Param>,
    ) -> Result<u64, StoreError> {
        self.write(retry_safe, vec![(sql, args)]).await
    }
}

fn holds_nul(args: &[Param]) -> bool {
    args.iter()
        .any(|a| matches!(a, Param::Text(t) if t.contains('\0')))
}

/// The keyset position after `after` (before everything when `None`).
fn position(after: Option<Cursor>) -> (i64, String) {
    after.map_or((i64::MIN, String::new()), |c| (c.created_ms, c.id))
}

#[async_trait]
impl<E: Executor> Store for E {
    async fn create_organization(
        &self,
        org: Organization,
        idempotency: Option<Idempotency>,
    ) -> Result<Idempotent, StoreError> {
        self.create_org(insert_org(&org)?, org, idempotency).await
    }

    async fn get_organization(
        &self,
        p: &Partition,
        id: &str,
    ) -> Result<Option<Organization>, StoreError> {
        let get = select!(
            org_columns,
            "FROM organizations WHERE id = ?1 AND account = ?2 AND region = ?3"
        );
        self.row(get, args![id, &p.account, &p.region], org).await
    }

    async fn find_organization(&self, id: &str) -> Result<Option<Organization>, StoreError> {
        let find = select!(org_columns, "FROM organizations WHERE id = ?1");
        self.row(find, args![id], org).await
    }

    async fn list_organizations(
        &self,
        p: &Partition,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Organization>, StoreError> {
        let page = select!(
            org_columns,
            "FROM organizations WHERE account = ?1 AND region = ?2 \
             AND (created_ms, id) > (?3, ?4) ORDER BY created_ms, id LIMIT ?5"
        );
        let (c_ms, c_id) = position(after);
        let args = args![&p.account, &p.region, c_ms, c_id, limit as i64];
        self.rows(page, args, org).await
    }

    async fn delete_organization(&self, org_id: &str) -> Result<(), StoreError> {
        let steps = vec![
            (
                stmt!("UPDATE organizations SET state = ?2 WHERE id = ?1"),
                args![org_id, org_state::DELETED],
            ),
            (
                stmt!("DELETE FROM personal_access_tokens WHERE org_id = ?1"),
                args![org_id],
            ),
            (
                stmt!("DELETE FROM sessions WHERE org_id = ?1"),
                args![org_id],
            ),
        ];
        self.write(true, steps).await.map(drop)
    }

    async fn count_enabled_users(&self, org_id: &str) -> Result<u64, StoreError> {
        let count = stmt!("SELECT COUNT(*) FROM users WHERE org_id = ?1 AND state = 'ENABLED'");
        let n = self.row(count, args![org_id], |r| r.int(0));
        Ok(n.await?.unwrap_or(0) as u64)
    }

    async fn get_client_token(
        &self,
        p: &Partition,
        operation: &str,
        token: &str,
        now_ms: Millis,
    ) -> Result<Option<ClientTokenRecord>, StoreError> {
        let args = args![&p.account, &p.region, operation, token];
        let found = self.row(READ_CLIENT_TOKEN, args, client_token);
        Ok(live(found.await?, now_ms))
    }

    async fn put_client_token(&self, p: &Partition, i: Idempotency) -> Result<(), StoreError> {
        // A live record is kept (first answer wins), so running this twice is harmless.
        let claim = claim_client_token(&p.account, &p.region, &i);
        self.write(true, vec![claim]).await.map(drop)
    }

    async fn create_user(&self, u: User) -> Result<(), StoreError> {
        self.write(false, vec![insert_user(&u)]).await.map(drop)
    }

    async fn find_user(&self, org_id: &str, ident: &str) -> Result<Option<User>, StoreError> {
        let args = args![org_id, ident, ident.to_ascii_lowercase()];
        self.row(E::FIND_USER, args, user).await
    }

    async fn list_users(
        &self,
        org_id: &str,
        filter: &UserFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        macro_rules! users_where {
            ($($clause:literal),+) => {
                concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE org_id = ?1 AND (created_ms, id) > (?2, ?3) AND (",
                    $($clause),+,
                    ") ORDER BY created_ms, id LIMIT ?4"
                )
            };
        }
        // SQLite's LIKE ignores ASCII case; ILIKE on PostgreSQL's "C"-collated columns does exactly that.
        macro_rules! prefix {
            ($column:literal) => {
                stmt!(
                    users_where!($column, " LIKE ?5 ESCAPE '\\'"),
                    users_where!($column, " ILIKE ?5 ESCAPE '\\'")
                )
            };
        }
        let (page, arg) = match filter {
            UserFilter::None => (stmt!(users_where!("CAST(?5 AS TEXT) IS NULL")), None),
            UserFilter::UsernamePrefix(p) => (prefix!("name"), Some(like_prefix(p))),
            UserFilter::DisplayNamePrefix(p) => (prefix!("display_name"), Some(like_prefix(p))),
            UserFilter::PrimaryEmailPrefix(p) => (prefix!("email"), Some(like_prefix(p))),
            UserFilter::State(s) => (stmt!(users_where!("state = ?5")), Some(s.as_str().into())),
            UserFilter::IdentityProviderUserIdPrefix(p) => {
                (prefix!("identity_provider_user_id"), Some(like_prefix(p)))
            }
        };
        let (c_ms, c_id) = position(after);
        let args = args![org_id, c_ms, c_id, limit as i64, arg];
        self.rows(page, args, user).await
    }

    async fn update_user(&self, user_id: &str, u: UserUpdate) -> Result<(), StoreError> {
        // Sets the fields the update names and keeps the others: one statement whatever the update holds.
        let update = stmt!(
            "UPDATE users SET role = COALESCE(?2, role), display_name = COALESCE(?3, display_name), \
             first_name = COALESCE(?4, first_name), last_name = COALESCE(?5, last_name), \
             initials = COALESCE(?6, initials), telephone = COALESCE(?7, telephone), \
             street = COALESCE(?8, street), job_title = COALESCE(?9, job_title), city = COALESCE(?10, city), \
             company = COALESCE(?11, company), zip_code = COALESCE(?12, zip_code), \
             department = COALESCE(?13, department), country = COALESCE(?14, country), \
             office = COALESCE(?15, office), hidden_from_gal = COALESCE(?16, hidden_from_gal), \
             identity_provider_user_id = CASE WHEN ?17 THEN ?18 ELSE identity_provider_user_id END WHERE id = ?1"
        );
        let idp = u.identity_provider_user_id;
        let args = args![
            user_id,
            u.role,
            u.display_name,
            u.first_name,
            u.last_name,
            u.initials,
            u.telephone,
            u.street,
            u.job_title,
            u.city,
            u.company,
            u.zip_code,
            u.department,
            u.country,
            u.office,
            u.hidden_from_global_address_list,
            idp.is_some(),
            idp.flatten(),
        ];
        self.write1(true, update, args).await.map(drop)
    }

    async fn register_user(&self, id: &str, email: &str, now_ms: Millis) -> Result<(), StoreError> {
        // The credential generation moves: sessions of an earlier registration end.
        let register = stmt!(
            "UPDATE users SET state = 'ENABLED', email = ?2, email_key = ?3, enabled_ms = ?4, \
             mailbox_provisioned_ms = ?4, credential_generation = credential_generation + 1 WHERE id = ?1"
        );
        let args = args![id, email, email.to_ascii_lowercase(), now_ms];
        self.write1(true, register, args).await.map(drop)
    }

    async fn deregister_user(&self, user_id: &str, now_ms: Millis) -> Result<(), StoreError> {
        let deregister = stmt!(
            "UPDATE users SET state = 'DISABLED', email = NULL, email_key = NULL, disabled_ms = ?2, \
             mailbox_deprovisioned_ms = ?2, credential_generation = credential_generation + 1 WHERE id = ?1"
        );
        let steps = vec![
            (deregister, args![user_id, now_ms]),
            (END_SESSIONS, args![user_id]),
        ];
        self.write(true, steps).await.map(drop)
    }

    async fn delete_user(&self, user_id: &str, _now_ms: Millis) -> Result<(), StoreError> {
        let delete = stmt!(
            "UPDATE users SET state = 'DELETED', credential_generation = credential_generation + 1 WHERE id = ?1"
        );
        let delete_tokens = stmt!("DELETE FROM personal_access_tokens WHERE user_id = ?1");
        let steps = vec![
            (delete, args![user_id]),
            (delete_tokens, args![user_id]),
            (END_SESSIONS, args![user_id]),
        ];
        self.write(true, steps).await.map(drop)
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<(), StoreError> {
        let set = stmt!(
            "UPDATE users SET password_hash = ?2, credential_generation = credential_generation + 1 WHERE id = ?1"
        );
        let steps = vec![
            (set, args![user_id, password_hash]),
            (END_SESSIONS, args![user_id]),
        ];
        self.write(true, steps).await.map(drop)
    }

    async fn put_identity_provider_configuration(
        &self,
        org_id: &str,
        c: IdentityProviderConfiguration,
    ) -> Result<(), StoreError> {
        self.write(true, vec![put_idp(org_id, &c)]).await.map(drop)
    }

    async fn get_identity_provider_configuration(
        &self,
        org_id: &str,
    ) -> Result<Option<IdentityProviderConfiguration>, StoreError> {
        let get = stmt!(
            "SELECT authentication_mode, instance_arn, application_arn, pat_status, pat_lifetime_days \
             FROM identity_provider_configurations WHERE org_id = ?1"
        );
        self.row(get, args![org_id], idp).await
    }

    async fn delete_identity_provider_configuration(&self, org_id: &str) -> Result<(), StoreError> {
        let delete = stmt!("DELETE FROM identity_provider_configurations WHERE org_id = ?1");
        self.write1(true, delete, args![org_id]).await.map(drop)
    }

    async fn insert_personal_access_token(
        &self,
        t: PersonalAccessToken,
        secret_digest: [u8; 32],
    ) -> Result<(), StoreError> {
        let insert = insert_pat(&t, secret_digest)?;
        self.write(false, vec![insert]).await.map(drop)
    }

    async fn insert_personal_access_token_for_session(
        &self,
        t: PersonalAccessToken,
        secret_digest: [u8; 32],
        session_digest: [u8; 32],
    ) -> Result<bool, StoreError> {
        let check = args![session_digest, &t.user_id];
        self.insert_if_live(insert_pat(&t, secret_digest)?, check)
            .await
    }

    async fn list_personal_access_tokens(
        &self,
        org_id: &str,
        user_id: Option<&str>,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<PersonalAccessToken>, StoreError> {
        let (c_ms, c_id) = position(after);
        match user_id {
            Some(u) => self.rows(
                E::PATS_OF_USER,
                args![org_id, u, c_ms, c_id, limit as i64],
                pat,
            ),
            None => self.rows(E::PATS_OF_ORG, args![org_id, c_ms, c_id, limit as i64], pat),
        }
        .await
    }

    async fn get_personal_access_token(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        let get = select!(
            pat_columns,
            "FROM personal_access_tokens WHERE org_id = ?1 AND id = ?2"
        );
        self.row(get, args![org_id, id], pat).await
    }

    async fn delete_personal_access_token(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let (delete, args) = (
            stmt!("DELETE FROM personal_access_tokens WHERE org_id = ?1 AND id = ?2"),
            args![org_id, id],
        );
        if holds_nul(&args) {
            return Ok(false);
        }
        // Not retried on a lost connection: a retry after a committed delete would answer "not deleted".
        Ok(self.write1(false, delete, args).await? > 0)
    }

    async fn find_personal_access_token_by_digest(
        &self,
        digest: [u8; 32],
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        let find = select!(
            pat_columns,
            "FROM personal_access_tokens WHERE secret_hash = ?1"
        );
        self.row(find, args![digest], pat).await
    }

    async fn verify_lookup(&self, digest: [u8; 32]) -> Result<Option<VerifyRecord>, StoreError> {
        let lookup = stmt!(
            "SELECT t.id, t.org_id, t.user_id, t.name, t.scopes, t.created_ms, t.last_used_ms, t.expires_ms, \
                    u.name_key, u.email_key, u.state, o.state, c.pat_status \
             FROM personal_access_tokens t \
             JOIN users u ON u.id = t.user_id \
             JOIN organizations o ON o.id = t.org_id \
             LEFT JOIN identity_provider_configurations c ON c.org_id = t.org_id \
             WHERE t.secret_hash = ?1"
        );
        self.row(lookup, args![digest], verify_record).await
    }

    async fn touch_personal_access_token(
        &self,
        id: &str,
        now_ms: Millis,
        min_interval_ms: Millis,
    ) -> Result<(), StoreError> {
        // Never moves it back. (On PostgreSQL the WHERE clause is re-checked on the latest row version after taking
        // the row lock, so racing replicas write at most once per interval.)
        let touch = stmt!(
            "UPDATE personal_access_tokens SET last_used_ms = ?2 WHERE id = ?1 \
             AND (last_used_ms IS NULL OR last_used_ms <= CAST(?2 AS BIGINT) - CAST(?3 AS BIGINT))"
        );
        let args = args![id, now_ms, min_interval_ms];
        self.write1(true, touch, args).await.map(drop)
    }

    async fn create_session(
        &self,
        digest: [u8; 32],
        s: Session,
        hash: &str,
    ) -> Result<bool, StoreError> {
        // Only while the user is ENABLED with exactly this hash and her organization is Active. On PostgreSQL FOR
        // SHARE (of the user and her organization) makes a concurrent reset, deregistration, deletion or
        // DeleteOrganization either commit first (and the re-checked rows no longer match) or wait for this insert;
        // either way no session outlives the change.
        let create = stmt!(
            "INSERT INTO sessions (token_hash, org_id, user_id, expires_ms, authenticated_ms, credential_generation) \
             SELECT ?1, u.org_id, u.id, ?4, ?5, u.credential_generation FROM users u \
             JOIN organizations o ON o.id = u.org_id \
             WHERE u.id = ?3 AND u.org_id = ?2 AND u.state = 'ENABLED' AND u.password_hash = ?6 \
             AND o.state = 'Active'",
            "INSERT INTO sessions (token_hash, org_id, user_id, expires_ms, authenticated_ms, credential_generation) \
             SELECT ?1, u.org_id, u.id, ?4, ?5, u.credential_generation FROM users u \
             JOIN organizations o ON o.id = u.org_id \
             WHERE u.id = ?3 AND u.org_id = ?2 AND u.state = 'ENABLED' AND u.password_hash = ?6 \
             AND o.state = 'Active' FOR SHARE"
        );
        let (expires, authenticated) = (s.expires_ms, s.authenticated_ms);
        let args = args![digest, &s.org_id, &s.user_id, expires, authenticated, hash];
        Ok(self.write1(false, create, args).await? == 1)
    }

    async fn get_session(&self, digest: [u8; 32]) -> Result<Option<Session>, StoreError> {
        let get = stmt!(
            "SELECT s.org_id, s.user_id, s.expires_ms, s.authenticated_ms FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ?1 AND s.credential_generation = u.credential_generation"
        );
        self.row(get, args![digest], session).await
    }

    async fn reauthenticate_session(
        &self,
        digest: [u8; 32],
        password_hash: &str,
        now_ms: Millis,
    ) -> Result<bool, StoreError> {
        let reauthenticate = stmt!(
            "UPDATE sessions SET authenticated_ms = ?3 WHERE token_hash = ?1 AND credential_generation = \
             (SELECT credential_generation FROM users WHERE id = sessions.user_id AND state = 'ENABLED' \
              AND password_hash = ?2)"
        );
        let args = args![digest, password_hash, now_ms];
        Ok(self.write1(true, reauthenticate, args).await? == 1)
    }

    async fn delete_session(&self, digest: [u8; 32]) -> Result<(), StoreError> {
        let delete = stmt!("DELETE FROM sessions WHERE token_hash = ?1");
        self.write1(true, delete, args![digest]).await.map(drop)
    }

    async fn list_partitions(&self) -> Result<Vec<Partition>, StoreError> {
        let list =
            stmt!("SELECT DISTINCT account, region FROM organizations ORDER BY account, region");
        self.rows(list, Vec::new(), partition).await
    }

    async fn import(&self, batch: ImportBatch) -> Result<(), StoreError> {
        // One transaction with cached statements: the bulk path of `seed --generate`.
        let mut steps = Vec::new();
        for o in &batch.organizations {
            steps.push(insert_org(o)?);
        }
        steps.extend(batch.users.iter().map(insert_user));
        for (org_id, config) in &batch.configurations {
            steps.push(put_idp(org_id, config));
        }
        for (token, digest) in &batch.tokens {
            steps.push(insert_pat(token, *digest)?);
        }
        if steps.is_empty() {
            return Ok(());
        }
        self.write(false, steps).await.map(drop)
    }

    async fn reset(&self, partition: Option<&Partition>) -> Result<(), StoreError> {
        // Children before parents.
        let steps = match partition {
            None => [
                "DELETE FROM sessions",
                "DELETE FROM personal_access_tokens",
                "DELETE FROM identity_provider_configurations",
                "DELETE FROM users",
                "DELETE FROM organizations",
                "DELETE FROM client_tokens",
            ]
            .map(|s| {
                (
                    Stmt {
                        sqlite: s,
                        postgres: s,
                    },
                    Vec::new(),
                )
            }),
            Some(p) => {
                macro_rules! of_orgs {
                    ($table:literal) => {
                        stmt!(concat!(
                            "DELETE FROM ",
                            $table,
                            " WHERE org_id IN (SELECT id FROM organizations WHERE account = ?1 AND region = ?2)"
                        ))
                    };
                }
                [
                    of_orgs!("sessions"),
                    of_orgs!("personal_access_tokens"),
                    of_orgs!("identity_provider_configurations"),
                    of_orgs!("users"),
                    stmt!("DELETE FROM organizations WHERE account = ?1 AND region = ?2"),
                    stmt!("DELETE FROM client_tokens WHERE account = ?1 AND region = ?2"),
                ]
                .map(|s| (s, args![&p.account, &p.region]))
            }
        };
        self.write(true, steps.into()).await.map(drop)
    }

    fn shares_attempts(&self) -> bool {
        Executor::shares_attempts(self)
    }

    async fn reserve_attempt(&self, request: &AttemptRequest) -> Result<SharedAttempt, StoreError> {
        self.reserve_shared_attempt(request).await
    }

    async fn settle_attempt(
        &self,
        request: &AttemptRequest,
        reserved: &[i64],
        failed: bool,
    ) -> Result<(), StoreError> {
        self.settle_shared_attempt(request, reserved, failed).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.shut_down().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_statements_use_dollar_placeholders() {
        let get = select!(
            pat_columns,
            "FROM personal_access_tokens WHERE org_id = ?1 AND id = ?2"
        );
        assert_eq!(
            get.postgres,
            "SELECT id, org_id, user_id, name, scopes, created_ms, last_used_ms, expires_ms \
             FROM personal_access_tokens WHERE org_id = $1 AND id = $2"
        );
        assert_eq!(get.sqlite, get.postgres.replace('$', "?"));
        assert!(LIVE_SESSION.postgres.ends_with("FOR SHARE OF u"));
    }
}
