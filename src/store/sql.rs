//! The schema as the store sees it, written once for both backends: the tables and their columns, every statement
//! SQLite and PostgreSQL share, the parameters of each write and the decoding of each row.
//!
//! Statements are written with SQLite's `?N` placeholders; [`stmt!`] also makes the PostgreSQL text (`$N`) at
//! compile time, so neither backend rewrites or formats a statement per request. A backend picks its text from a
//! [`Stmt`], binds [`Param`]s (which both drivers accept) and hands its rows to the decoders here through
//! [`SqlRow`]. The few statements whose texts differ by more than placeholders (a SQLite index hint, a PostgreSQL
//! row lock) are here too, as two texts in one [`Stmt`]. What is left in `sqlite.rs` and `postgres.rs` is how to
//! run a statement, how errors map and the list of migrations.
//!
//! A new column: a migration per backend, then this file: [`TABLES`], the column list macro, the decoder and the
//! insert parameters of its table. The `Store` methods written once over these statements are in `executor.rs`.

use crate::clock::Millis;
use crate::domain::{
    IdentityProviderConfiguration, Organization, Partition, PatStatus, PersonalAccessToken,
    Session, User, UserProfile, UserState,
};

use super::{CLIENT_TOKEN_TTL_MS, ClientTokenRecord, Idempotency, StoreError, VerifyRecord};

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

/// A backend's migrations, applied in order at open: `(version, SQL text of migrations/<dir>/<file>)`. Never edit a
/// released one: add a new file.
macro_rules! migrations {
    ($dir:literal: $($version:literal => $file:literal),+ $(,)?) => {
        &[$(($version, include_str!(concat!("../../migrations/", $dir, "/", $file)))),+]
    };
}
pub(crate) use migrations;

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
        ("last_used_ms", OptInt), ("expires_ms", Int), ("secret_hash", Bytes), ("summary", Text),
    ]),
    ("client_tokens", &[
        ("account", Text), ("region", Text), ("operation", Text), ("token", Text), ("request_hash", Bytes),
        ("result", Text), ("created_ms", Int),
    ]),
    ("sessions", &[
        ("token_hash", Bytes), ("org_id", Text), ("user_id", Text), ("expires_ms", Int), ("authenticated_ms", Int),
        ("credential_generation", Int),
    ]),
    ("mail_domains", &[
        ("org_id", Text), ("account", Text), ("region", Text), ("domain_key", Text), ("is_test_domain", Bool),
        ("ownership_status", Text), ("dkim_status", Text), ("ownership_token", Text), ("dkim_tokens", Text),
        ("created_ms", Int),
    ]),
    ("email_addresses", &[
        ("org_id", Text), ("address_key", Text), ("address", Text), ("domain_key", Text), ("entity_id", Text),
        ("is_primary", Bool), ("created_ms", Int),
    ]),
    ("import_records", &[
        ("kind", Text), ("org_id", Text), ("entity_id", Text), ("fingerprint", Text), ("imported_ms", Int),
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
pub(crate) use {org_columns, pat_columns, user_columns};

/// Resolves `?2` (id) or `?3` (lower-cased name or email) in organization `?1`: the exact id first, then a live user
/// before a DELETED one, then the newest. SQLite runs three indexed lookups (it answers an OR with a scan of the
/// organization's users); PostgreSQL plans the OR well.
#[rustfmt::skip]
macro_rules! find_user {
    ($columns:expr) => { stmt!(
        concat!("SELECT ", $columns, " FROM (SELECT *, 1 AS by_id FROM users WHERE id = ?2 AND org_id = ?1 \
                 UNION ALL SELECT *, 0 FROM users WHERE org_id = ?1 AND name_key = ?3 \
                 UNION ALL SELECT *, 0 FROM users WHERE org_id = ?1 AND email_key = ?3) \
                 ORDER BY by_id DESC, (state = 'DELETED') ASC, created_ms DESC LIMIT 1"),
        concat!("SELECT ", $columns, " FROM users WHERE org_id = ?1 AND (id = ?2 OR name_key = ?3 OR email_key = ?3) \
                 ORDER BY (id = ?2) DESC, (state = 'DELETED') ASC, created_ms DESC LIMIT 1")
    ) };
}

/// The user a login names, [`user`] columns.
pub const FIND_USER: Stmt = find_user!(user_columns!());
/// The same, only `id, state`.
pub const FIND_USER_KEY: Stmt = find_user!("id, state");

/// Tokens of an organization (`?1`) or of one user (`?1`, `?2`) after a position, at most a limit, in page order.
/// SQLite pins each page to its index (without statistics its planner walked the organization index for a user's
/// tokens: 67 ms at 1M tokens; an organization's page is a range of the table's own key, `NOT INDEXED`), given as
/// `$index`, and reads `LIMIT ?N + 0`: a bare bound LIMIT is read while preparing, so each new value expired the
/// cached statement and every page was parsed and planned again (issue 14). PostgreSQL plans the plain text well.
#[rustfmt::skip]
macro_rules! token_page {
    ($columns:expr, $index:literal, $filter:expr, $after:literal, $limit:literal) => { stmt!(
        concat!("SELECT ", $columns, " FROM personal_access_tokens ", $index, " WHERE ", $filter,
                " AND (created_ms, id) > (", $after, ") ORDER BY created_ms, id LIMIT ", $limit, " + 0"),
        concat!("SELECT ", $columns, " FROM personal_access_tokens WHERE ", $filter,
                " AND (created_ms, id) > (", $after, ") ORDER BY created_ms, id LIMIT ", $limit)
    ) };
}

/// A user's tokens (`?1` org, `?2` user) after (`?3`, `?4`), at most `?5`; [`pat`] columns.
#[rustfmt::skip]
pub const PATS_OF_USER: Stmt =
    token_page!(pat_columns!(), "INDEXED BY pats_user_page", "org_id = ?1 AND user_id = ?2", "?3, ?4", "?5");
/// An organization's tokens (`?1`) after (`?2`, `?3`), at most `?4`; [`pat`] columns.
#[rustfmt::skip]
pub const PATS_OF_ORG: Stmt = token_page!(pat_columns!(), "NOT INDEXED", "org_id = ?1", "?2, ?3", "?4");
/// The organization `?1` is Active in the partition (`account`, `region`) bound at `$a`, `$r`: an uncorrelated
/// condition, which both databases evaluate once per statement (one index lookup), so a page or a summary and the
/// organization's state are read by one statement in one read transaction.
#[rustfmt::skip]
macro_rules! org_active {
    ($a:literal, $r:literal) => {
        concat!("EXISTS (SELECT 1 FROM organizations WHERE id = ?1 AND account = ", $a, " AND region = ", $r,
                " AND state = 'Active')")
    };
}

/// The organization `?1`, Active in the partition bound at `$a`, `$r`, as the row `o` of a join.
#[rustfmt::skip]
macro_rules! org_row {
    ($a:literal, $r:literal) => {
        concat!("o.id = ?1 AND o.account = ", $a, " AND o.region = ", $r, " AND o.state = 'Active'")
    };
}

/// A page of stored summaries ([`token_page`] with [`summary_columns`]) read only while `$checks` hold. SQLite
/// reads the organization (and the user) as the outer rows of a join, each found by its primary key, and the page
/// as the inner loop: as an `EXISTS` it ran the condition as a subroutine inside the loop, four more opcodes per row
/// (issue 14). PostgreSQL gets the `EXISTS` form (`$pg_filter`), which it evaluates once as an initplan. With
/// `first`, SQLite's text has no position (a first page starts at the index range's start): it re-checked the row
/// value against the position on every row, five opcodes more. PostgreSQL's text is the same for both, since it
/// must give every bound parameter a type.
#[rustfmt::skip]
macro_rules! summary_page {
    ($outer:literal, $index:literal, $checks:expr, $filter:expr, $after:literal, $limit:literal, $pg_filter:expr) => {
        summary_page!(@ $outer, $index, $checks, concat!($filter, " AND (t.created_ms, t.id) > (", $after, ")"),
                      $after, $limit, $pg_filter)
    };
    (first $outer:literal, $index:literal, $checks:expr, $filter:expr, $after:literal, $limit:literal,
     $pg_filter:expr) => {
        summary_page!(@ $outer, $index, $checks, $filter, $after, $limit, $pg_filter)
    };
    (@ $outer:literal, $index:literal, $checks:expr, $filter:expr, $after:literal, $limit:literal, $pg_filter:expr) => {
        stmt!(
            concat!("SELECT t.created_ms, t.id, t.summary FROM ", $outer, " CROSS JOIN personal_access_tokens t ",
                    $index, " WHERE ", $checks, " AND ", $filter, " ORDER BY t.created_ms, t.id LIMIT ", $limit, " + 0"),
            concat!("SELECT ", summary_columns!(), " FROM personal_access_tokens WHERE ", $pg_filter,
                    " AND (created_ms, id) > (", $after, ") ORDER BY created_ms, id LIMIT ", $limit)
        )
    };
}

/// [`PATS_OF_USER`] with [`summary_columns`], only while the organization is Active in the partition (`?6`, `?7`)
/// and `?2` is the id of a user that is not DELETED: what a list filtered by that user answers when it has rows.
/// [`SUMMARIES_OF_USER_FIRST`] is the same for a first page (the position `?3`, `?4` is before every token).
macro_rules! summaries_of_user {
    ($($first:ident)?) => { summary_page!($($first)?
        "organizations o CROSS JOIN users u", "INDEXED BY pats_user_page",
        concat!(org_row!("?6", "?7"), " AND u.org_id = ?1 AND u.id = ?2 AND u.state <> 'DELETED'"),
        "t.org_id = ?1 AND t.user_id = ?2", "?3, ?4", "?5",
        concat!("org_id = ?1 AND user_id = ?2 AND ", org_active!("?6", "?7"),
                " AND EXISTS (SELECT 1 FROM users WHERE org_id = ?1 AND id = ?2 AND state <> 'DELETED')")) };
}
pub const SUMMARIES_OF_USER: Stmt = summaries_of_user!();
pub const SUMMARIES_OF_USER_FIRST: Stmt = summaries_of_user!(first);
/// [`PATS_OF_ORG`] with [`summary_columns`], only while the organization is Active in the partition (`?5`, `?6`);
/// [`SUMMARIES_OF_ORG_FIRST`] for a first page.
macro_rules! summaries_of_org {
    ($($first:ident)?) => { summary_page!($($first)?
        "organizations o", "NOT INDEXED", org_row!("?5", "?6"), "t.org_id = ?1", "?2, ?3", "?4",
        concat!("org_id = ?1 AND ", org_active!("?5", "?6"))) };
}
pub const SUMMARIES_OF_ORG: Stmt = summaries_of_org!();
pub const SUMMARIES_OF_ORG_FIRST: Stmt = summaries_of_org!(first);
/// One token's stored summary (`?1` org, `?2` id), only while the organization is Active in the partition (`?3`,
/// `?4`).
#[rustfmt::skip]
pub const SUMMARY_OF_TOKEN: Stmt = stmt!(concat!(
    "SELECT summary FROM personal_access_tokens WHERE org_id = ?1 AND id = ?2 AND ", org_active!("?3", "?4")));

/// A bound value borrowed from the caller: what each driver binds ([`Param::as_arg`] gives it for an owned value).
/// The page read of the hot path ([`super::executor::Executor::summaries`]) binds the caller's strings where they are,
/// not copied into [`Param`]s first (issue 14: allocations per request).
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Bool(bool),
    Bytes(&'a [u8]),
}

impl Arg<'_> {
    /// The owned form, for a backend that must move the values to another thread.
    pub fn to_param(self) -> Param {
        match self {
            Arg::Null => Param::Null,
            Arg::Text(s) => Param::Text(s.to_owned()),
            Arg::Int(i) => Param::Int(i),
            Arg::Bool(b) => Param::Bool(b),
            Arg::Bytes(b) => Param::Bytes(b.to_vec()),
        }
    }

    /// Whether the value is text holding NUL, which no stored key holds (and PostgreSQL refuses).
    pub fn holds_nul(self) -> bool {
        matches!(self, Arg::Text(t) if t.contains('\0'))
    }
}

/// A bound value, accepted by both drivers.
#[derive(Debug, Clone)]
pub enum Param {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
}

impl Param {
    /// The value borrowed, as the drivers bind it.
    pub fn as_arg(&self) -> Arg<'_> {
        match self {
            Param::Null => Arg::Null,
            Param::Text(s) => Arg::Text(s),
            Param::Int(i) => Arg::Int(*i),
            Param::Bool(b) => Arg::Bool(*b),
            Param::Bytes(b) => Arg::Bytes(b),
        }
    }
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

pub(super) fn idp(r: &dyn SqlRow) -> Result<IdentityProviderConfiguration, StoreError> {
    Ok(IdentityProviderConfiguration {
        authentication_mode: r.text(0)?,
        instance_arn: r.text(1)?,
        application_arn: r.text(2)?,
        pat_status: PatStatus::parse(&r.text(3)?).unwrap_or(PatStatus::Inactive),
        pat_lifetime_days: r.int(4)?,
    })
}

pub(super) fn session(r: &dyn SqlRow) -> Result<Session, StoreError> {
    Ok(Session {
        org_id: r.text(0)?,
        user_id: r.text(1)?,
        expires_ms: r.int(2)?,
        authenticated_ms: r.int(3)?,
    })
}

pub(super) fn verify_record(r: &dyn SqlRow) -> Result<VerifyRecord, StoreError> {
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

pub(super) fn partition(r: &dyn SqlRow) -> Result<Partition, StoreError> {
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
pub(super) fn like_prefix(prefix: &str) -> String {
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

pub(super) fn json(v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(e.to_string()))
}

/// `SELECT <columns of a decoder> <rest>`.
macro_rules! select {
    ($columns:ident, $rest:literal) => {
        stmt!(concat!("SELECT ", $columns!(), " ", $rest))
    };
}
pub(crate) use select;

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

pub(super) fn insert_user(u: &User) -> Step {
    let insert = stmt!(concat!(
        "INSERT INTO users (",
        user_columns!(),
        ", name_key, email_key) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
          ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)"
    ));
    let mut args = args![&u.id, &u.org_id];
    args.extend(user_fields(u));
    args.extend(args![
        u.created_ms,
        &u.password_hash,
        u.name.to_ascii_lowercase(),
        u.email.as_ref().map(|e| e.to_ascii_lowercase()),
    ]);
    (insert, args)
}

/// A user's fields from `name` to `mailbox_deprovisioned_ms` in [`user_columns`] order (23 values): what an insert
/// writes after the ids, and what an import's update replaces.
pub(super) fn user_fields(u: &User) -> Vec<Param> {
    let p = &u.profile;
    args![
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
    ]
}

pub(super) fn put_idp(org_id: &str, c: &IdentityProviderConfiguration) -> Step {
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
        ", secret_hash, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
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
        t.summary_json(),
    ];
    Ok((insert, args))
}

/// Rows still without their stored summary (written before migration 4 of SQLite / 5 of PostgreSQL); [`pat`]
/// columns. Filled right after migrating, so every later read finds one.
pub const PATS_WITHOUT_SUMMARY: Stmt = select!(
    pat_columns,
    "FROM personal_access_tokens WHERE summary = ''"
);

/// Stores a token's summary (`?1` id, `?2` [`PersonalAccessToken::summary_json`]).
pub const SET_SUMMARY: Stmt = stmt!("UPDATE personal_access_tokens SET summary = ?2 WHERE id = ?1");

/// A page of stored summaries: every row is `created_ms, id, summary` (the position of the row, its wire form);
/// [`SUMMARIES_OF_ORG`] and [`SUMMARIES_OF_USER`] bind the parameters of [`PATS_OF_ORG`] and [`PATS_OF_USER`].
macro_rules! summary_columns {
    () => {
        "created_ms, id, summary"
    };
}
pub(crate) use summary_columns;

/// Ends a user's sessions after a change of credentials (the generation moved with it).
pub(super) const END_SESSIONS: Stmt = stmt!("DELETE FROM sessions WHERE user_id = ?1");

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
