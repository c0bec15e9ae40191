//! The [`Store`], written once for both backends over an [`Executor`]: each method binds the statements and
//! decoders of `sql.rs`; a backend supplies only how a statement runs, its few dialect-specific statements and the
//! transactions it drives itself.

use async_trait::async_trait;

use super::mail::{
    insert_address, insert_domain, insert_primary_address, release_addresses, release_organization,
};
use super::sql::*;
use super::{
    AttemptRequest, ClientTokenRecord, Idempotency, Idempotent, ImportBatch, ImportRecord,
    SharedAttempt, Store, StoreError, SummaryPage, VerifyRecord,
};
use crate::clock::Millis;
use crate::domain::{
    Cursor, IdentityProviderConfiguration, Organization, Partition, PersonalAccessToken, Session,
    User, UserFilter, UserState, UserUpdate, org_state,
};
use crate::mail::{EmailAddress, MailDomain};

/// How a backend runs statements. Every executor is a [`Store`] (below): a backend adds only how it runs a
/// statement and the writes whose transactions it drives itself.
#[async_trait]
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// A page of stored summaries: `sql` selects [`summary_columns`] rows in page order; at most `limit` of them are
    /// appended to `body` (comma-separated), and one more row only sets [`SummaryPage::has_more`].
    async fn summaries(
        &self,
        sql: Stmt,
        args: &[Arg<'_>],
        limit: usize,
        body: Vec<u8>,
    ) -> Result<SummaryPage, StoreError>;

    /// Runs a query and decodes every row.
    async fn all<T: Send + 'static>(
        &self,
        sql: Stmt,
        args: Vec<Param>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError>;

    /// [`Executor::all`], planned for the values given each time it runs: for a query whose best plan depends on
    /// how many rows a table holds when that grows during a run (an import's lookups), which a plan cached while
    /// the table was small would keep scanning in full.
    async fn all_planned<T: Send + 'static>(
        &self,
        sql: Stmt,
        args: Vec<Param>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.all(sql, args, decode).await
    }

    /// Runs one write, or several in one transaction; returns the rows the last one changed. `retry_safe`: running
    /// it twice is harmless even if the first run's commit reached the server (reads, deletes, absolute updates).
    async fn write(&self, retry_safe: bool, steps: Vec<Step>) -> Result<u64, StoreError>;

    /// Inserts the organization (`inserts`: its row, then its mail domains) and, with a ClientToken, claims it ([`claim_client_token`]) or answers
    /// with the record already there ([`READ_CLIENT_TOKEN`]), in one transaction.
    async fn create_org(
        &self,
        inserts: Vec<Step>,
        org: Organization,
        idempotency: Option<Idempotency>,
    ) -> Result<Idempotent, StoreError>;

    /// Runs `insert` if [`LIVE_SESSION`] with `check` finds the session live, in one transaction.
    async fn insert_if_live(&self, insert: Step, check: Vec<Param>) -> Result<bool, StoreError>;

    /// Flushes and closes cleanly.
    async fn shut_down(&self) -> Result<(), StoreError>;

    /// Readies the store to serve many reads ([`Store::prepare_to_serve`]).
    async fn prepare_to_serve(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Runs the many inserts of a bulk import in one transaction (a backend may give it more memory).
    async fn bulk_write(&self, steps: Vec<Step>) -> Result<(), StoreError> {
        self.write(false, steps).await.map(drop)
    }

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

/// Moves `DateLastUsed` forward (never back, at most once per interval) and the stored summary with it. (On
/// PostgreSQL the WHERE clause is re-checked on the latest row version after taking the row lock, so racing replicas
/// write at most once per interval.)
const TOUCH: Stmt = stmt!(
    "UPDATE personal_access_tokens SET last_used_ms = ?2, summary = ?4 WHERE id = ?1 \
     AND (last_used_ms IS NULL OR last_used_ms <= CAST(?2 AS BIGINT) - CAST(?3 AS BIGINT))"
);

/// The parameters of [`TOUCH`] for a token carrying its new `last_used_ms`.
fn touch_args(touched: &PersonalAccessToken, min_interval_ms: Millis) -> Vec<Param> {
    args![
        &touched.id,
        touched.last_used_ms.unwrap_or_default(),
        min_interval_ms,
        touched.summary_json()
    ]
}

fn holds_nul(args: &[Param]) -> bool {
    args.iter()
        .any(|a| matches!(a, Param::Text(t) if t.contains('\0')))
}

/// The rows of a new organization: the organization, then its test domain and the domains given at creation.
fn org_steps(o: &Organization) -> Result<Vec<Step>, StoreError> {
    let mut steps = vec![insert_org(o)?];
    for d in MailDomain::of_new_organization(o) {
        steps.push(insert_domain(&d)?);
    }
    Ok(steps)
}

/// The rows of a new user: the user, then her primary address if she has one and her organization is live (bulk
/// seeding, imports).
fn user_steps(u: &User) -> Vec<Step> {
    let mut steps = vec![insert_user(u)];
    if let Some(email) = u.email.as_ref().filter(|_| u.state != UserState::Deleted) {
        steps.push(insert_primary_address(&primary_address(
            u,
            email,
            u.created_ms,
        )));
    }
    steps
}

fn primary_address(u: &User, email: &str, now_ms: Millis) -> EmailAddress {
    EmailAddress {
        org_id: u.org_id.clone(),
        entity_id: u.id.clone(),
        address: email.to_string(),
        is_primary: true,
        created_ms: now_ms,
    }
}

/// Writes an import record, replacing the entity's earlier one.
fn put_record(r: &ImportRecord) -> Step {
    let put = stmt!(
        "INSERT INTO import_records (kind, org_id, entity_id, fingerprint, imported_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (org_id, kind, entity_id) \
         DO UPDATE SET fingerprint = excluded.fingerprint, imported_ms = excluded.imported_ms"
    );
    let args = args![
        &r.kind,
        &r.org_id,
        &r.entity_id,
        &r.fingerprint,
        r.imported_ms
    ];
    (put, args)
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
        self.create_org(org_steps(&org)?, org, idempotency).await
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

    async fn get_organization_state(
        &self,
        p: &Partition,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let get =
            stmt!("SELECT state FROM organizations WHERE id = ?1 AND account = ?2 AND region = ?3");
        self.row(get, args![id, &p.account, &p.region], |r| r.text(0))
            .await
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
        let steps = steps
            .into_iter()
            .chain(release_organization(org_id))
            .collect();
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
        self.write(false, user_steps(&u)).await.map(drop)
    }

    async fn find_user(&self, org_id: &str, ident: &str) -> Result<Option<User>, StoreError> {
        let args = args![org_id, ident, ident.to_ascii_lowercase()];
        self.row(FIND_USER, args, user).await
    }

    async fn find_user_key(
        &self,
        org_id: &str,
        ident: &str,
    ) -> Result<Option<(String, UserState)>, StoreError> {
        let args = args![org_id, ident, ident.to_ascii_lowercase()];
        let key = |r: &dyn SqlRow| {
            let state = UserState::parse(&r.text(1)?).unwrap_or(UserState::Disabled);
            Ok((r.text(0)?, state))
        };
        self.row(FIND_USER_KEY, args, key).await
    }

    async fn users_by_keys(
        &self,
        org_id: &str,
        ids: &[String],
        keys: &[String],
    ) -> Result<Vec<User>, StoreError> {
        // The lists travel as JSON arrays, unpacked by each dialect; one indexed branch per column. On PostgreSQL
        // each key is looked up on its own (LATERAL, kept from being flattened by OFFSET 0) and the statement is
        // planned at each run: a first import fills the table it reads, and the plan cached while it was empty
        // read all the organization's users three times a page (half a second a page at 8,000 users).
        let find = stmt!(
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE org_id = ?1 AND id IN (SELECT value FROM json_each(?2)) \
                 UNION ALL SELECT ",
                user_columns!(),
                " FROM users WHERE org_id = ?1 \
                 AND name_key IN (SELECT value FROM json_each(?3)) \
                 UNION ALL SELECT ",
                user_columns!(),
                " FROM users WHERE org_id = ?1 \
                 AND email_key IN (SELECT value FROM json_each(?3))"
            ),
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM jsonb_array_elements_text(?2::text::jsonb) AS k (v), LATERAL \
                 (SELECT * FROM users WHERE org_id = ?1 AND id = k.v OFFSET 0) AS u \
                 UNION ALL SELECT ",
                user_columns!(),
                " FROM jsonb_array_elements_text(?3::text::jsonb) AS k (v), LATERAL \
                 (SELECT * FROM users WHERE org_id = ?1 AND name_key = k.v OFFSET 0) AS u \
                 UNION ALL SELECT ",
                user_columns!(),
                " FROM jsonb_array_elements_text(?3::text::jsonb) AS k (v), LATERAL \
                 (SELECT * FROM users WHERE org_id = ?1 AND email_key = k.v OFFSET 0) AS u"
            )
        );
        // No stored value holds U+0000 (and PostgreSQL's jsonb refuses it): such a key matches nothing.
        let clean = |v: &[String]| -> Vec<String> {
            v.iter().filter(|k| !k.contains('\0')).cloned().collect()
        };
        if org_id.contains('\0') {
            return Ok(Vec::new());
        }
        let args = args![org_id, json(&clean(ids))?, json(&clean(keys))?];
        self.all_planned(find, args, user).await
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
        // The primary address row: its domain must be registered (foreign key), the address free (primary key).
        let find = stmt!("SELECT org_id FROM users WHERE id = ?1");
        let Some(org_id) = self.row(find, args![id], |r| r.text(0)).await? else {
            return Ok(());
        };
        let address = EmailAddress {
            org_id,
            entity_id: id.to_string(),
            address: email.to_string(),
            is_primary: true,
            created_ms: now_ms,
        };
        let steps = vec![(register, args), insert_address(&address)];
        self.write(false, steps).await.map(drop)
    }

    async fn deregister_user(&self, user_id: &str, now_ms: Millis) -> Result<(), StoreError> {
        let deregister = stmt!(
            "UPDATE users SET state = 'DISABLED', email = NULL, email_key = NULL, disabled_ms = ?2, \
             mailbox_deprovisioned_ms = ?2, credential_generation = credential_generation + 1 WHERE id = ?1"
        );
        let steps = vec![
            (deregister, args![user_id, now_ms]),
            release_addresses(user_id),
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
            release_addresses(user_id),
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
                PATS_OF_USER,
                args![org_id, u, c_ms, c_id, limit as i64],
                pat,
            ),
            None => self.rows(PATS_OF_ORG, args![org_id, c_ms, c_id, limit as i64], pat),
        }
        .await
    }

    async fn list_personal_access_token_summaries(
        &self,
        p: &Partition,
        org_id: &str,
        user_id: Option<&str>,
        after: Option<Cursor>,
        limit: usize,
        body: Vec<u8>,
    ) -> Result<SummaryPage, StoreError> {
        let first = after.is_none();
        let (c_ms, c_id) = position(after);
        let (org, account, region) = (
            Arg::Text(org_id),
            Arg::Text(&p.account),
            Arg::Text(&p.region),
        );
        let (c_ms, c_id, n) = (Arg::Int(c_ms), Arg::Text(&c_id), Arg::Int(limit as i64 + 1));
        let (page, by_user, by_org);
        let args: &[Arg<'_>] = match user_id {
            Some(u) => {
                page = if first {
                    SUMMARIES_OF_USER_FIRST
                } else {
                    SUMMARIES_OF_USER
                };
                by_user = [org, Arg::Text(u), c_ms, c_id, n, account, region];
                &by_user
            }
            None => {
                page = if first {
                    SUMMARIES_OF_ORG_FIRST
                } else {
                    SUMMARIES_OF_ORG
                };
                by_org = [org, c_ms, c_id, n, account, region];
                &by_org
            }
        };
        if args.iter().any(|a| a.holds_nul()) {
            let empty = SummaryPage {
                body,
                count: 0,
                has_more: false,
                last: None,
            };
            return Ok(empty);
        }
        self.summaries(page, args, limit, body).await
    }

    async fn get_personal_access_token_summary(
        &self,
        p: &Partition,
        org_id: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let args = args![org_id, id, p.account.as_str(), p.region.as_str()];
        self.row(SUMMARY_OF_TOKEN, args, |r| r.text(0)).await
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
        token: &PersonalAccessToken,
        now_ms: Millis,
        min_interval_ms: Millis,
    ) -> Result<(), StoreError> {
        let touched = PersonalAccessToken {
            last_used_ms: Some(now_ms),
            ..token.clone()
        };
        self.write1(true, TOUCH, touch_args(&touched, min_interval_ms))
            .await
            .map(drop)
    }

    async fn touch_personal_access_tokens(
        &self,
        touched: Vec<PersonalAccessToken>,
        min_interval_ms: Millis,
    ) -> Result<(), StoreError> {
        let steps = touched
            .iter()
            .map(|t| (TOUCH, touch_args(t, min_interval_ms)))
            .collect();
        self.write(true, steps).await.map(drop)
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
            steps.extend(org_steps(o)?);
        }
        steps.extend(batch.users.iter().flat_map(user_steps));
        for (org_id, config) in &batch.configurations {
            steps.push(put_idp(org_id, config));
        }
        for (token, digest) in &batch.tokens {
            steps.push(insert_pat(token, *digest)?);
        }
        steps.extend(batch.addresses.iter().map(insert_address));
        steps.extend(batch.records.iter().map(put_record));
        if steps.is_empty() {
            return Ok(());
        }
        self.bulk_write(steps).await
    }

    async fn import_records(&self, org_id: &str) -> Result<Vec<ImportRecord>, StoreError> {
        let find = stmt!(
            "SELECT kind, org_id, entity_id, fingerprint, imported_ms FROM import_records WHERE org_id = ?1"
        );
        let record = |r: &dyn SqlRow| {
            Ok(ImportRecord {
                kind: r.text(0)?,
                org_id: r.text(1)?,
                entity_id: r.text(2)?,
                fingerprint: r.text(3)?,
                imported_ms: r.int(4)?,
            })
        };
        self.rows(find, args![org_id], record).await
    }

    async fn put_import_records(&self, records: Vec<ImportRecord>) -> Result<(), StoreError> {
        let steps: Vec<Step> = records.iter().map(put_record).collect();
        if steps.is_empty() {
            return Ok(());
        }
        self.bulk_write(steps).await
    }

    async fn update_imported_user(&self, before: &User, after: &User) -> Result<(), StoreError> {
        // The credential generation moves with the state (the old value is the one the CASE reads).
        let update = stmt!(
            "UPDATE users SET name = ?2, email = ?3, \
             credential_generation = credential_generation + (CASE WHEN state = ?4 THEN 0 ELSE 1 END), \
             state = ?4, role = ?5, display_name = ?6, first_name = ?7, last_name = ?8, initials = ?9, \
             telephone = ?10, street = ?11, job_title = ?12, city = ?13, company = ?14, zip_code = ?15, \
             department = ?16, country = ?17, office = ?18, hidden_from_gal = ?19, \
             identity_provider_user_id = ?20, enabled_ms = ?21, disabled_ms = ?22, \
             mailbox_provisioned_ms = ?23, mailbox_deprovisioned_ms = ?24, name_key = ?25, email_key = ?26 \
             WHERE id = ?1"
        );
        let mut args = args![&before.id];
        args.extend(user_fields(after));
        args.extend(args![
            after.name.to_ascii_lowercase(),
            after.email.as_ref().map(|e| e.to_ascii_lowercase()),
        ]);
        let mut steps = vec![(update, args)];
        let state_changed = before.state != after.state;
        if state_changed && after.state != UserState::Enabled {
            steps.push((END_SESSIONS, args![&before.id]));
        }
        if state_changed && after.state == UserState::Deleted {
            let delete_tokens = stmt!("DELETE FROM personal_access_tokens WHERE user_id = ?1");
            steps.push((delete_tokens, args![&before.id]));
        }
        if state_changed || before.email != after.email {
            if after.state == UserState::Enabled {
                let drop_primary =
                    stmt!("DELETE FROM email_addresses WHERE entity_id = ?1 AND is_primary = TRUE");
                steps.push((drop_primary, args![&before.id]));
            } else {
                // As DeregisterFromWorkMail and DeleteUser: the mailbox goes, with every address.
                steps.push(release_addresses(&before.id));
            }
            if let Some(email) = after
                .email
                .as_ref()
                .filter(|_| after.state != UserState::Deleted)
            {
                let address = primary_address(before, email, before.created_ms);
                // The new primary address may be one of the user's aliases until now.
                let drop_alias = stmt!(
                    "DELETE FROM email_addresses WHERE org_id = ?1 AND address_key = ?2 AND entity_id = ?3"
                );
                steps.push((drop_alias, args![&before.org_id, address.key(), &before.id]));
                steps.push(insert_primary_address(&address));
            }
        }
        self.write(false, steps).await.map(drop)
    }

    async fn update_imported_organization(&self, o: &Organization) -> Result<(), StoreError> {
        let update = stmt!(
            "UPDATE organizations SET alias = ?2, alias_key = ?3, state = ?4, directory_id = ?5, \
             directory_type = ?6, domains = ?7, kms_key_arn = ?8, interoperability_enabled = ?9, \
             completed_ms = ?10 WHERE id = ?1"
        );
        let args = args![
            &o.id,
            &o.alias,
            o.alias.to_ascii_lowercase(),
            &o.state,
            &o.directory_id,
            &o.directory_type,
            json(&o.domains)?,
            &o.kms_key_arn,
            o.interoperability_enabled,
            o.completed_ms,
        ];
        if o.state == org_state::DELETED {
            self.write(false, vec![(update, args)]).await?;
            return self.delete_organization(&o.id).await;
        }
        self.write(false, vec![(update, args)]).await.map(drop)
    }

    async fn update_imported_mail_domain(&self, d: &MailDomain) -> Result<(), StoreError> {
        let update = stmt!(
            "UPDATE mail_domains SET is_test_domain = ?3, ownership_status = ?4, dkim_status = ?5, \
             ownership_token = ?6, dkim_tokens = ?7 WHERE org_id = ?1 AND domain_key = ?2"
        );
        let args = args![
            &d.org_id,
            d.domain.to_ascii_lowercase(),
            d.is_test_domain,
            d.ownership.as_str(),
            d.dkim.as_str(),
            &d.ownership_token,
            json(&d.dkim_tokens)?,
        ];
        self.write(true, vec![(update, args)]).await.map(drop)
    }

    async fn reset(&self, partition: Option<&Partition>) -> Result<(), StoreError> {
        // Children before parents.
        let steps = match partition {
            None => [
                "DELETE FROM import_records",
                "DELETE FROM sessions",
                "DELETE FROM email_addresses",
                "DELETE FROM mail_domains",
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
                    of_orgs!("import_records"),
                    of_orgs!("sessions"),
                    of_orgs!("email_addresses"),
                    of_orgs!("mail_domains"),
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

    async fn prepare_to_serve(&self) -> Result<(), StoreError> {
        Executor::prepare_to_serve(self).await
    }
}
