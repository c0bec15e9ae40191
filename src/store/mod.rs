//! Storage behind one trait, written in domain terms so that backends (SQLite, PostgreSQL) can be swapped
//! without touching the operations. Each method is atomic on its own.

use async_trait::async_trait;

use crate::clock::Millis;
use crate::domain::{
    Cursor, IdentityProviderConfiguration, Organization, Partition, PersonalAccessToken, Session,
    User, UserFilter, UserUpdate,
};

pub mod credentials;
pub mod executor;
pub mod mail;
pub mod postgres;
mod postgres_attempts;
pub mod sql;
pub mod sqlite;

pub use credentials::redact_url;
pub use mail::MailStore;

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    Alias,
    Directory,
    UserName,
    Email,
    TokenId,
    /// A mail domain already registered (to this or another organization of the partition).
    MailDomain,
    /// A row names one that does not exist, or a row still named by others was to be deleted (foreign key): an
    /// address whose domain is not registered, or a domain that still has addresses.
    Reference,
    /// A generated organization or user id already exists (only possible with seeded ids, `/_workmail-pat/seed`).
    Id,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("uniqueness conflict: {0:?}")]
    Conflict(Conflict),
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The database cannot be reached right now (connection refused or lost, pool exhausted, timeout): the
    /// request may succeed if retried, and is answered with a 503 rather than a 500.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// Everything verifying a presented token needs, read in one go.
#[derive(Debug, Clone)]
pub struct VerifyRecord {
    pub token: PersonalAccessToken,
    /// The owner's id, lower-cased name and lower-cased email (any of them may be the login name).
    pub user_id: String,
    pub user_name_key: String,
    pub user_email_key: Option<String>,
    pub user_state: crate::domain::UserState,
    pub org_state: String,
    pub pat_status: Option<crate::domain::PatStatus>,
}

/// A page of stored token summaries (the wire form of `PersonalAccessTokenSummary`), appended to a response buffer.
#[derive(Debug, Default)]
pub struct SummaryPage {
    /// The buffer handed in, with the page's summaries appended, separated by commas.
    pub body: Vec<u8>,
    /// How many summaries were appended.
    pub count: usize,
    /// Whether a row follows the last appended one.
    pub has_more: bool,
    /// The position of the last row of a full page (the `limit`th): where the next page starts. A page with fewer
    /// rows has none.
    pub last: Option<Cursor>,
}

impl SummaryPage {
    /// An empty page over `body` (which may already hold the start of the answer).
    pub(crate) fn new(body: Vec<u8>) -> Self {
        Self {
            body,
            ..Self::default()
        }
    }

    /// Appends a row read in page order (its stored summary); a row beyond `limit` only says that more exist.
    /// `false` once the page is complete: the caller stops reading. The row's position (`created_ms`, id) is read
    /// only for the `limit`th row, the one a NextToken names (issue 14: two columns fewer read per row), into one
    /// cursor, so nothing is allocated per row.
    pub(crate) fn push<'r, E>(
        &mut self,
        limit: usize,
        summary: &[u8],
        position: impl FnOnce() -> Result<(i64, &'r str), E>,
    ) -> Result<bool, E> {
        if self.count == limit {
            self.has_more = true;
            return Ok(false);
        }
        if self.count > 0 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(summary);
        self.count += 1;
        if self.count == limit {
            let (created_ms, id) = position()?;
            let last = self.last.get_or_insert_with(|| Cursor {
                created_ms,
                id: String::new(),
            });
            last.created_ms = created_ms;
            last.id.clear();
            last.id.push_str(id);
        }
        Ok(true)
    }

    /// Forgets every row appended after the first `start` bytes of the body (a retried read starts again).
    pub(crate) fn restart(&mut self, start: usize) {
        self.body.truncate(start);
        (self.count, self.has_more, self.last) = (0, false, None);
    }
}

/// Rows written together by bulk seeding.
#[derive(Debug, Default)]
pub struct ImportBatch {
    pub organizations: Vec<Organization>,
    pub users: Vec<User>,
    pub configurations: Vec<(String, IdentityProviderConfiguration)>,
    /// Tokens with the keyed digests of their secrets.
    pub tokens: Vec<(PersonalAccessToken, [u8; 32])>,
    /// Addresses (aliases) of users written earlier or in this batch; their domains must be registered.
    pub addresses: Vec<crate::mail::EmailAddress>,
    /// Import records written with the rows (replacing those of the same entities).
    pub records: Vec<ImportRecord>,
}

/// What an import last wrote of one entity (issue 16): a fingerprint of the content it compares, so that a later
/// run can tell a change made at the source (the target still holds what was imported) from an edit made in this
/// store since. Bookkeeping only: no API answer and no `dump` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    /// `Organization`, `User`, `MailDomain`, `Alias` (its id: the lower-cased address) or `Configuration`.
    pub kind: String,
    pub org_id: String,
    /// The entity's id (a mail domain: its lower-cased name; the organization and its configuration: its id).
    pub entity_id: String,
    pub fingerprint: String,
    pub imported_ms: Millis,
}

/// A `ClientToken` presented with a request (spec D3).
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub operation: &'static str,
    pub token: String,
    /// SHA-256 of the request's other parameters.
    pub request_hash: [u8; 32],
    /// What to answer a replay with (operation-defined text).
    pub result: String,
    pub now_ms: Millis,
}

/// One window an attempt is counted in, shared across replicas: a keyed hash of what is limited (the pair, the
/// user, the client address), the most failures (plus attempts in flight) allowed, and the window's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptWindow {
    pub key: [u8; 16],
    pub limit: u32,
    pub window_ms: Millis,
}

/// A password attempt to account for in the store (see [`Store::reserve_attempt`]).
#[derive(Debug, Clone)]
pub struct AttemptRequest {
    /// (user, client address): a success here clears its failures and exempts the address from `user`.
    pub pair: AttemptWindow,
    /// The user from every address (skipped for an address with a recent success).
    pub user: AttemptWindow,
    /// The client address across users.
    pub address: Option<AttemptWindow>,
    pub now_ms: Millis,
}

/// The answer of [`Store::reserve_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedAttempt {
    /// This backend serves one process, where the in-memory limiter is exact: nothing is stored.
    NotShared,
    /// Reserved: these pending rows are settled by [`Store::settle_attempt`] (or age out if the request dies).
    Reserved(Vec<i64>),
    /// Limited: try again after this long.
    Limited { retry_after_ms: Millis },
}

/// How long a reserved attempt counts as in flight if it is never settled (a replica died mid-request).
pub const ATTEMPT_PENDING_TTL_MS: Millis = 2 * 60 * 1000;
/// How long a success exempts its address from the user's ceiling.
pub const ATTEMPT_KNOWN_GOOD_MS: Millis = 30 * 24 * 60 * 60 * 1000;

/// How long a ClientToken is remembered.
pub const CLIENT_TOKEN_TTL_MS: Millis = 24 * 60 * 60 * 1000;

/// The outcome of an idempotent write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotent {
    /// The write happened now.
    Done,
    /// The same ClientToken and parameters were seen before: answer with this stored result.
    Replay(String),
    /// The same ClientToken came with different parameters.
    Mismatch,
}

/// A remembered ClientToken.
#[derive(Debug, Clone)]
pub struct ClientTokenRecord {
    pub request_hash: [u8; 32],
    pub result: String,
}

#[async_trait]
pub trait Store: MailStore + Send + Sync + std::fmt::Debug {
    // --- organizations ---
    /// Inserts an organization; with a ClientToken, atomically replays or refuses a reuse instead.
    async fn create_organization(
        &self,
        org: Organization,
        idempotency: Option<Idempotency>,
    ) -> Result<Idempotent, StoreError>;
    async fn get_organization(
        &self,
        partition: &Partition,
        id: &str,
    ) -> Result<Option<Organization>, StoreError>;
    /// Only the state of [`Store::get_organization`] (the check in front of every read of an organization's data).
    async fn get_organization_state(
        &self,
        partition: &Partition,
        id: &str,
    ) -> Result<Option<String>, StoreError>;
    /// An organization by id alone, whatever its partition (for the web application and mail-server verification,
    /// which name an organization without a SigV4 identity; organization ids are random and unique).
    async fn find_organization(&self, id: &str) -> Result<Option<Organization>, StoreError>;
    /// Organizations after `after` in (created, id) order, at most `limit`.
    async fn list_organizations(
        &self,
        partition: &Partition,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Organization>, StoreError>;
    /// Marks the organization Deleted and removes its PATs and sessions (spec D2).
    async fn delete_organization(&self, org_id: &str) -> Result<(), StoreError>;
    async fn count_enabled_users(&self, org_id: &str) -> Result<u64, StoreError>;
    /// A ClientToken remembered for (partition, operation) within its lifetime.
    async fn get_client_token(
        &self,
        partition: &Partition,
        operation: &str,
        token: &str,
        now_ms: Millis,
    ) -> Result<Option<ClientTokenRecord>, StoreError>;
    /// Remembers a ClientToken unless one is already remembered.
    async fn put_client_token(
        &self,
        partition: &Partition,
        idempotency: Idempotency,
    ) -> Result<(), StoreError>;

    // --- users ---
    async fn create_user(&self, user: User) -> Result<(), StoreError>;
    /// Resolves a user id, username or email (names and emails ignore case). A live user wins over a DELETED one
    /// of the same name.
    async fn find_user(&self, org_id: &str, ident: &str) -> Result<Option<User>, StoreError>;
    /// The id and state of the user [`Store::find_user`] resolves (what verification and list filters need).
    async fn find_user_key(
        &self,
        org_id: &str,
        ident: &str,
    ) -> Result<Option<(String, crate::domain::UserState)>, StoreError>;
    /// Every user of the organization (DELETED ones too) whose id is one of `ids` or whose lower-cased name or
    /// email is one of `keys`, in no particular order, possibly more than once: an import's lookups for a page of
    /// users in one round trip.
    async fn users_by_keys(
        &self,
        org_id: &str,
        ids: &[String],
        keys: &[String],
    ) -> Result<Vec<User>, StoreError>;
    async fn list_users(
        &self,
        org_id: &str,
        filter: &UserFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<User>, StoreError>;
    async fn update_user(&self, user_id: &str, update: UserUpdate) -> Result<(), StoreError>;
    /// ENABLED with this email (spec D5 checks happen before).
    async fn register_user(
        &self,
        user_id: &str,
        email: &str,
        now_ms: Millis,
    ) -> Result<(), StoreError>;
    /// DISABLED, email released, sessions ended (credential generation moved).
    async fn deregister_user(&self, user_id: &str, now_ms: Millis) -> Result<(), StoreError>;
    /// DELETED; the user's PATs and sessions are removed (credential generation moved).
    async fn delete_user(&self, user_id: &str, now_ms: Millis) -> Result<(), StoreError>;
    /// Replaces the password hash and ends the user's sessions (credential generation moved).
    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<(), StoreError>;

    // --- identity provider / PAT configuration ---
    async fn put_identity_provider_configuration(
        &self,
        org_id: &str,
        config: IdentityProviderConfiguration,
    ) -> Result<(), StoreError>;
    async fn get_identity_provider_configuration(
        &self,
        org_id: &str,
    ) -> Result<Option<IdentityProviderConfiguration>, StoreError>;
    async fn delete_identity_provider_configuration(&self, org_id: &str) -> Result<(), StoreError>;

    // --- personal access tokens ---
    async fn insert_personal_access_token(
        &self,
        token: PersonalAccessToken,
        secret_digest: [u8; 32],
    ) -> Result<(), StoreError>;
    /// Inserts a token created through a web session, atomically with the check that the session is still live
    /// (its credential generation is its user's current one and the user is ENABLED). `false`: nothing inserted.
    async fn insert_personal_access_token_for_session(
        &self,
        token: PersonalAccessToken,
        secret_digest: [u8; 32],
        session_digest: [u8; 32],
    ) -> Result<bool, StoreError>;
    /// Tokens of the organization (or of one user) after `after` in (created, id) order, at most `limit`.
    async fn list_personal_access_tokens(
        &self,
        org_id: &str,
        user_id: Option<&str>,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<PersonalAccessToken>, StoreError>;
    /// The same page as [`Store::list_personal_access_tokens`] (at most `limit` tokens), as the stored wire form of
    /// each summary appended to `body`: one range scan whose stored bytes are copied, nothing decoded. The page is
    /// read, in the same statement, only while the organization is Active in partition `p` and (with `user_id`)
    /// `user_id` is the id of a user that is not DELETED; otherwise it is empty (the caller tells why).
    async fn list_personal_access_token_summaries(
        &self,
        p: &Partition,
        org_id: &str,
        user_id: Option<&str>,
        after: Option<Cursor>,
        limit: usize,
        body: Vec<u8>,
    ) -> Result<SummaryPage, StoreError>;
    async fn get_personal_access_token(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<PersonalAccessToken>, StoreError>;
    /// The stored wire form of one token's summary (what [`PersonalAccessToken::summary_json`] gives), read in the
    /// same statement as the organization's state: `None` unless the organization is Active in partition `p`.
    async fn get_personal_access_token_summary(
        &self,
        p: &Partition,
        org_id: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Returns whether a token was deleted.
    async fn delete_personal_access_token(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<bool, StoreError>;
    async fn find_personal_access_token_by_digest(
        &self,
        digest: [u8; 32],
    ) -> Result<Option<PersonalAccessToken>, StoreError>;
    /// The token with this digest and the state of its owner, organization and PAT configuration. Backends override
    /// this with one query (it is on every mail login); the default composes the ordinary reads.
    async fn verify_lookup(&self, digest: [u8; 32]) -> Result<Option<VerifyRecord>, StoreError> {
        let Some(token) = self.find_personal_access_token_by_digest(digest).await? else {
            return Ok(None);
        };
        let Some(user) = self.find_user(&token.org_id, &token.user_id).await? else {
            return Ok(None);
        };
        let Some(org) = self.find_organization(&token.org_id).await? else {
            return Ok(None);
        };
        let pat_status = self
            .get_identity_provider_configuration(&token.org_id)
            .await?
            .map(|c| c.pat_status);
        Ok(Some(VerifyRecord {
            user_id: user.id,
            user_name_key: user.name.to_ascii_lowercase(),
            user_email_key: user.email.map(|e| e.to_ascii_lowercase()),
            user_state: user.state,
            org_state: org.state,
            pat_status,
            token,
        }))
    }

    /// Sets `DateLastUsed` to `now_ms` unless it was set less than `min_interval_ms` ago; never moves it back. The
    /// stored summary is rewritten with it (`token` is the token as read: every other member of it is immutable).
    async fn touch_personal_access_token(
        &self,
        token: &PersonalAccessToken,
        now_ms: Millis,
        min_interval_ms: Millis,
    ) -> Result<(), StoreError>;

    /// [`Store::touch_personal_access_token`] for many tokens in one transaction (each `touched` carries its new
    /// `last_used_ms`): how the batched `DateLastUsed` writes of `touches` reach the store.
    async fn touch_personal_access_tokens(
        &self,
        touched: Vec<PersonalAccessToken>,
        min_interval_ms: Millis,
    ) -> Result<(), StoreError>;

    // --- web sessions ---
    /// Creates a session bound to the user's current credential generation, in one atomic step, only if the user
    /// is still ENABLED with exactly `password_hash` (the hash the password was checked against). `false` when
    /// anything changed meanwhile (a reset, deregistration or deletion raced with the sign-in): no session exists.
    async fn create_session(
        &self,
        digest: [u8; 32],
        session: Session,
        password_hash: &str,
    ) -> Result<bool, StoreError>;
    /// A session, only while its credential generation is its user's current one.
    async fn get_session(&self, digest: [u8; 32]) -> Result<Option<Session>, StoreError>;
    /// Records a fresh password entry for a live session (re-authentication), if the user still has exactly
    /// `password_hash`. `false` when the session is gone or stale.
    async fn reauthenticate_session(
        &self,
        digest: [u8; 32],
        password_hash: &str,
        now_ms: Millis,
    ) -> Result<bool, StoreError>;
    async fn delete_session(&self, digest: [u8; 32]) -> Result<(), StoreError>;

    // --- attempts shared by replicas ---
    /// Whether [`Store::reserve_attempt`] accounts for attempts across replicas (and so is the authority on each
    /// user's ceiling and her known-good addresses, which a replica's memory only sees in part).
    fn shares_attempts(&self) -> bool {
        false
    }

    /// Atomically checks every window of `request` (failures within the window plus attempts still in flight)
    /// and, when none is full, reserves the attempt in each. Backends that serve a single process answer
    /// [`SharedAttempt::NotShared`]: their callers' in-memory limiter is exact.
    async fn reserve_attempt(&self, request: &AttemptRequest) -> Result<SharedAttempt, StoreError> {
        let _ = request;
        Ok(SharedAttempt::NotShared)
    }

    /// Settles a reservation: the pending rows go; a failure is recorded in every window it was reserved in; a
    /// success clears the pair's failures and marks the pair known-good.
    async fn settle_attempt(
        &self,
        request: &AttemptRequest,
        reserved: &[i64],
        failed: bool,
    ) -> Result<(), StoreError> {
        let _ = (request, reserved, failed);
        Ok(())
    }

    /// Every (account, region) that holds an organization, in a stable order.
    async fn list_partitions(&self) -> Result<Vec<Partition>, StoreError> {
        Err(StoreError::Backend(
            "listing partitions is not supported by this backend".into(),
        ))
    }

    /// Writes a batch of rows (bulk seeding). Backends override this with one fast transaction; the default
    /// writes row by row through the ordinary methods.
    async fn import(&self, batch: ImportBatch) -> Result<(), StoreError> {
        for org in batch.organizations {
            self.create_organization(org, None).await?;
        }
        for user in batch.users {
            self.create_user(user).await?;
        }
        for (org_id, config) in batch.configurations {
            self.put_identity_provider_configuration(&org_id, config)
                .await?;
        }
        for (token, digest) in batch.tokens {
            self.insert_personal_access_token(token, digest).await?;
        }
        self.put_import_records(batch.records).await?;
        for address in batch.addresses {
            if !self
                .create_alias(address, crate::mail::MAX_ALIASES_PER_USER)
                .await?
            {
                return Err(StoreError::Backend(
                    "an alias of a user who cannot hold one more".into(),
                ));
            }
        }
        Ok(())
    }

    /// Every import record of an organization (see [`ImportRecord`]).
    async fn import_records(&self, org_id: &str) -> Result<Vec<ImportRecord>, StoreError>;

    /// Writes import records, replacing those of the same entities, in one transaction.
    async fn put_import_records(&self, records: Vec<ImportRecord>) -> Result<(), StoreError>;

    /// Gives an imported user (`before`, as the target holds her) the content of `after` (every field an import
    /// compares; not her creation time nor her password), with what a state or address change implies: a user no
    /// longer ENABLED loses her sessions and, with her mailbox, her addresses; a DELETED one her tokens; a new
    /// primary address replaces the old one.
    async fn update_imported_user(&self, before: &User, after: &User) -> Result<(), StoreError>;

    /// Gives an imported organization the content of `o` (alias, state, directory, settings; not its partition,
    /// creation time or default domain). Becoming Deleted releases its tokens, sessions, addresses and domains,
    /// as DeleteOrganization does.
    async fn update_imported_organization(&self, o: &Organization) -> Result<(), StoreError>;

    /// Gives a registered mail domain the test-domain flag, verification states and DNS values of `d`.
    async fn update_imported_mail_domain(
        &self,
        d: &crate::mail::MailDomain,
    ) -> Result<(), StoreError>;

    /// Deletes all state, or one partition's: its organizations with their users, configurations, tokens and
    /// sessions, and its remembered ClientTokens (the test-support reset).
    async fn reset(&self, partition: Option<&Partition>) -> Result<(), StoreError> {
        let _ = partition;
        Err(StoreError::Backend(
            "reset is not supported by this backend".into(),
        ))
    }

    /// Flushes and closes cleanly (called on shutdown).
    async fn close(&self) -> Result<(), StoreError>;

    /// Called once by the server before it answers anything: a backend may ready itself for many reads.
    async fn prepare_to_serve(&self) -> Result<(), StoreError>;
}

/// Opens the store named by a `--database` URL: `sqlite:PATH`, `sqlite://PATH`, `sqlite::memory:`, or
/// `postgres://...` / `postgresql://...` (default pool limits).
pub fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, String> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(
                "sqlite: URL needs a path, e.g. sqlite:workmail-pat.db or sqlite::memory:".into(),
            );
        }
        let store = sqlite::SqliteStore::open(path).map_err(|e| e.to_string())?;
        return Ok(std::sync::Arc::new(store));
    }
    if is_postgres_url(url) {
        return open_postgres(url, &postgres::PostgresOptions::default());
    }
    Err(format!(
        "unsupported database URL {:?}: expected sqlite:PATH, sqlite::memory: or postgres://USER@HOST/DB",
        redact_url(url)
    ))
}

/// Opens a store with explicit PostgreSQL pool limits (ignored for SQLite).
pub fn open_with(
    url: &str,
    options: &postgres::PostgresOptions,
) -> Result<std::sync::Arc<dyn Store>, String> {
    if is_postgres_url(url) {
        return open_postgres(url, options);
    }
    open(url)
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn open_postgres(
    url: &str,
    options: &postgres::PostgresOptions,
) -> Result<std::sync::Arc<dyn Store>, String> {
    let store = postgres::PostgresStore::open(url, options).map_err(|e| e.to_string())?;
    Ok(std::sync::Arc::new(store))
}

/// Where the generated key files of a database live: beside the SQLite file, never inside it. `None` for an
/// in-memory store (its keys live only as long as the process).
pub fn key_file_base(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path == ":memory:" || path.is_empty() {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}
