//! The apply half of an import: for one organization at a time, looks up what the target holds, asks the plan
//! ([`super::plan`]) what to do with each entity and, unless it is a dry run, writes it through the store with the
//! source's ids. Each entity is written on its own, so an interrupted import leaves only whole entities behind and
//! a rerun creates what is still missing (the rest is unchanged).
//!
//! Mail domains come with the organization ([`Target::organization`]): a new organization is written with the
//! source's domains (their verification state and DNS values) in one transaction, before any user, since a user's
//! address must be in a registered domain of the organization; aliases follow each page of users
//! ([`OrgImport::aliases`]).

use std::collections::{HashMap, HashSet};

use crate::clock::Millis;
use crate::domain::{
    IdentityProviderConfiguration, Organization, Partition, PersonalAccessToken, User, UserFilter,
    UserState, org_state,
};
use crate::mail::{EmailAddress, MAX_ALIASES_PER_USER, MailDomain};
use crate::ops::{self, Ctx};
use crate::pagination::Keyed;
use crate::state::AppState;
use crate::store::{Conflict, ImportBatch, ImportRecord, StoreError};

use super::plan::{self, Action};
use super::report::{Gone, OrgReport, Report, TokenMetadata, UserRef, UserTokens};

fn err(e: StoreError) -> String {
    e.to_string()
}

/// Passwords to set (`--passwords-from`), keyed by lower-cased user id or email.
#[derive(Debug, Default)]
pub struct Passwords(HashMap<String, String>);

impl Passwords {
    /// Reads `user id or email,password` lines; blank lines and lines starting with `#` are skipped. The password
    /// is everything after the first comma.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((who, password)) = line.split_once(',') else {
                return Err(format!(
                    "line {}: expected `user id or email,password`",
                    n + 1
                ));
            };
            map.insert(who.trim().to_ascii_lowercase(), password.to_string());
        }
        Ok(Self(map))
    }

    fn for_user(&self, user: &User) -> Option<&String> {
        self.0.get(&user.id.to_ascii_lowercase()).or_else(|| {
            user.email
                .as_ref()
                .and_then(|e| self.0.get(&e.to_ascii_lowercase()))
        })
    }
}

/// What earlier imports recorded of an organization's entities (fingerprints by kind and id), and the records this
/// run has to write: only those that changed, so a run that changes nothing writes nothing.
#[derive(Default)]
struct Records {
    last: HashMap<(&'static str, String), String>,
    pending: Vec<ImportRecord>,
}

impl Records {
    fn get(&self, kind: &'static str, id: &str) -> Option<&str> {
        self.last.get(&(kind, id.to_string())).map(String::as_str)
    }

    fn organization(&mut self, o: &Organization) {
        self.keep("Organization", &o.id, &o.id, &plan::organization_content(o));
    }

    fn user(&mut self, u: &User) {
        self.keep("User", &u.org_id, &u.id, &plan::user_content(u));
    }

    fn mail_domain(&mut self, d: &MailDomain) {
        self.keep(
            "MailDomain",
            &d.org_id,
            &d.domain,
            &plan::mail_domain_content(d),
        );
    }

    /// An alias the source gives `user_id`, now held by her in the target: recorded so that a later run can tell an
    /// alias removed at the source (recorded, still here, no longer listed) from one added here (never recorded).
    fn alias(&mut self, alias: &EmailAddress) {
        let content = serde_json::json!({ "UserId": alias.entity_id });
        self.keep("Alias", &alias.org_id, &alias.key(), &content);
    }

    fn configuration(&mut self, org_id: &str, c: &IdentityProviderConfiguration) {
        let content = plan::configuration_content(c);
        self.keep("Configuration", org_id, org_id, &content);
    }

    /// The target now holds `content` for this entity (written, updated or found equal to the source).
    fn keep(&mut self, kind: &'static str, org_id: &str, id: &str, content: &serde_json::Value) {
        if let Some(record) = self.record(kind, org_id, id, content) {
            self.written(&record);
            self.pending.push(record);
        }
    }

    /// The record of an entity whose content is `content`, unless the last one already says the same.
    fn record(
        &self,
        kind: &'static str,
        org_id: &str,
        id: &str,
        content: &serde_json::Value,
    ) -> Option<ImportRecord> {
        let fingerprint = plan::fingerprint(content);
        if self.get(kind, id) == Some(fingerprint.as_str()) {
            return None;
        }
        Some(ImportRecord {
            kind: kind.to_string(),
            org_id: org_id.to_string(),
            entity_id: id.to_string(),
            fingerprint,
            imported_ms: crate::clock::Clock::real_now_ms(),
        })
    }

    /// `record` is (or will be) the last one of its entity.
    fn written(&mut self, record: &ImportRecord) {
        let kind = match record.kind.as_str() {
            "Organization" => "Organization",
            "User" => "User",
            "MailDomain" => "MailDomain",
            "Configuration" => "Configuration",
            "Alias" => "Alias",
            _ => return,
        };
        self.last
            .insert((kind, record.entity_id.clone()), record.fingerprint.clone());
    }
}

/// Where an import writes, and how.
pub struct Target<'a> {
    pub app: &'a AppState,
    pub dry_run: bool,
    pub passwords: &'a Passwords,
}

impl Target<'_> {
    /// Writes the records gathered so far (never in a dry run).
    async fn flush(&self, records: &mut Records) -> Result<(), String> {
        let pending = std::mem::take(&mut records.pending);
        if self.dry_run || pending.is_empty() {
            return Ok(());
        }
        self.app
            .store
            .put_import_records(pending)
            .await
            .map_err(err)
    }

    /// Every organization of a partition, in list order.
    pub async fn organizations(&self, partition: &Partition) -> Result<Vec<Organization>, String> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .app
                .store
                .list_organizations(partition, after, 1000)
                .await
                .map_err(err)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            after = Some(last.cursor());
            out.extend(page);
        }
    }

    /// Starts importing one organization of the source: plans it, creates it when absent, with its mail domains
    /// (`domains`, in the source's list order; `None` when the source does not show them: then the default domain
    /// as test domain and the domains given at creation, as CreateOrganization registers them). `None` when it is
    /// skipped (a conflict), and then so is everything in it.
    pub async fn organization(
        &self,
        mut source: Organization,
        domains: Option<Vec<MailDomain>>,
        report: &mut OrgReport,
    ) -> Result<Option<OrgImport<'_>>, String> {
        report.organization_id = source.id.clone();
        report.alias = source.alias.clone();
        report.account = source.account.clone();
        report.region = source.region.clone();
        report.state = source.state.clone();
        let partition = Partition {
            account: source.account.clone(),
            region: source.region.clone(),
        };
        // Whether the source showed its domains: only then are the target's others gone from it.
        let listed = domains.is_some() && source.state == org_state::ACTIVE;
        let domains = domains.unwrap_or_else(|| {
            if source.state == org_state::DELETED {
                return Vec::new();
            }
            let mut rows = MailDomain::of_new_organization(&source);
            for d in &mut rows {
                // Not the source's: fresh values are drawn when written, never compared.
                d.ownership_token.clear();
                d.dkim_tokens.clear();
            }
            rows
        });
        let source_default = source.default_mail_domain.clone();
        let by_id = self
            .app
            .store
            .find_organization(&source.id)
            .await
            .map_err(err)?;
        let mut records = Records::default();
        if by_id.is_some() {
            for r in self
                .app
                .store
                .import_records(&source.id)
                .await
                .map_err(err)?
            {
                records.written(&r);
            }
        }
        let existing = self.organizations(&partition).await?;
        let alias_holder = existing.iter().find(|o| {
            o.state != org_state::DELETED
                && o.id != source.id
                && (o.alias.eq_ignore_ascii_case(&source.alias)
                    || o.directory_id == source.directory_id)
        });
        let action = plan::organization(
            &source,
            by_id.as_ref(),
            alias_holder,
            records.get("Organization", &source.id),
        );
        let target_default;
        match &action {
            Action::Create => {
                source.created_ms = plan::creation_time(
                    source.created_ms,
                    &source.id,
                    existing.iter().map(|o| (o.created_ms, o.id.as_str())).max(),
                );
                let kept = self.new_domains(&source, domains, report).await?;
                if !kept
                    .iter()
                    .any(|d| d.domain == source_default.to_ascii_lowercase())
                    && let Some(test) = kept.iter().find(|d| d.is_test_domain)
                {
                    // Its default domain is another organization's in the target: the test domain stands in.
                    source.default_mail_domain = test.domain.clone();
                }
                target_default = source.default_mail_domain.clone();
                let count = kept.len() as u64;
                if !self.dry_run {
                    match self
                        .app
                        .store
                        .create_organization_with_domains(source.clone(), kept.clone())
                        .await
                    {
                        Ok(_) => {}
                        Err(StoreError::Conflict(c)) => {
                            report.skip(
                                "Organization",
                                &source.id,
                                format!("the target refused it: {}", conflict_text(c)),
                            );
                            return Ok(None);
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
                records.organization(&source);
                for d in &kept {
                    records.mail_domain(d);
                }
                report.count("Organization").created += 1;
                if count > 0 {
                    report.count("MailDomain").created += count;
                }
            }
            Action::Unchanged | Action::Update(_) => {
                let target = by_id.expect("present in the target");
                if let Action::Update(fields) = &action {
                    if !self.dry_run {
                        match self.app.store.update_imported_organization(&source).await {
                            Ok(()) => {}
                            Err(StoreError::Conflict(c)) => {
                                report.skip(
                                    "Organization",
                                    &source.id,
                                    format!(
                                        "the target refused its update: {}; nothing in it was imported",
                                        conflict_text(c)
                                    ),
                                );
                                return Ok(None);
                            }
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    records.organization(&source);
                    report.update("Organization", &source.id, fields.clone());
                } else {
                    records.organization(&target);
                    report.count("Organization").unchanged += 1;
                }
                target_default = target.default_mail_domain;
                self.more_domains(&source, domains, listed, &mut records, report)
                    .await?;
            }
            Action::Conflict(why) => {
                report.skip(
                    "Organization",
                    &source.id,
                    format!("{why}; nothing in it was imported"),
                );
                return Ok(None);
            }
        }
        if let Action::Conflict(why) = plan::default_domain(&source_default, &target_default) {
            report.skip("DefaultMailDomain", &source.id, why);
        }
        self.flush(&mut records).await?;
        Ok(Some(OrgImport {
            target: self,
            partition,
            org: source,
            last_user: None,
            seen: HashSet::new(),
            names: HashMap::new(),
            enabled: HashMap::new(),
            records,
        }))
    }

    /// The domains of a new organization that no other organization of the partition holds, in the source's
    /// order, with creation times that keep it and DNS values (the source's, or fresh).
    async fn new_domains(
        &self,
        org: &Organization,
        domains: Vec<MailDomain>,
        report: &mut OrgReport,
    ) -> Result<Vec<MailDomain>, String> {
        let mut kept: Vec<MailDomain> = Vec::new();
        for d in domains {
            let holder = self
                .app
                .store
                .mail_domain_in_partition(&org.account, &org.region, &d.domain)
                .await
                .map_err(err)?;
            match plan::mail_domain(&d, None, holder.as_ref(), None) {
                Action::Create => {
                    let last = kept.last().map(|k| (k.created_ms, k.domain.as_str()));
                    kept.push(prepared(org, d, last));
                }
                Action::Unchanged | Action::Update(_) => {}
                Action::Conflict(why) => report.skip("MailDomain", &d.domain, why),
            }
        }
        Ok(kept)
    }

    /// The domains of an organization already in the target: those it lacks are registered one by one, those
    /// changed at the source since the last import are updated. When the source `listed` its domains, the
    /// target's others are reported as gone from it (never deregistered).
    async fn more_domains(
        &self,
        org: &Organization,
        domains: Vec<MailDomain>,
        listed: bool,
        records: &mut Records,
        report: &mut OrgReport,
    ) -> Result<(), String> {
        if listed {
            let at_source: HashSet<String> = domains
                .iter()
                .map(|d| d.domain.to_ascii_lowercase())
                .collect();
            let mut after = None;
            loop {
                let page = self
                    .app
                    .store
                    .list_mail_domains(&org.id, after, 1000)
                    .await
                    .map_err(err)?;
                let Some(last) = page.last() else { break };
                after = Some(last.cursor());
                for d in page {
                    if !at_source.contains(&d.domain.to_ascii_lowercase()) {
                        report.deleted_at_source.push(Gone {
                            entity: "MailDomain",
                            id: d.domain.clone(),
                            name: d.domain,
                        });
                    }
                }
            }
        }
        let mut last: Option<(Millis, String)> = None;
        for d in domains {
            let target = self
                .app
                .store
                .get_mail_domain(&org.id, &d.domain)
                .await
                .map_err(err)?;
            let holder = match &target {
                Some(_) => None,
                None => self
                    .app
                    .store
                    .mail_domain_in_partition(&org.account, &org.region, &d.domain)
                    .await
                    .map_err(err)?,
            };
            let recorded = records.get("MailDomain", &d.domain);
            let action = plan::mail_domain(&d, target.as_ref(), holder.as_ref(), recorded);
            match action.clone() {
                Action::Create => {
                    let row = prepared(org, d, last.as_ref().map(|(ms, k)| (*ms, k.as_str())));
                    last = Some((row.created_ms, row.domain.clone()));
                    if !self.dry_run {
                        match self.app.store.insert_mail_domain(row.clone(), None).await {
                            Ok(()) => {}
                            Err(StoreError::Conflict(c)) => {
                                report.skip("MailDomain", &row.domain, conflict_text(c));
                                continue;
                            }
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    records.mail_domain(&row);
                    report.count("MailDomain").created += 1;
                }
                Action::Unchanged | Action::Update(_) => {
                    let t = target.expect("unchanged means present");
                    if last
                        .as_ref()
                        .is_none_or(|(ms, k)| (*ms, k.as_str()) < (t.created_ms, t.domain.as_str()))
                    {
                        last = Some((t.created_ms, t.domain.clone()));
                    }
                    let Action::Update(fields) = action else {
                        records.mail_domain(&t);
                        report.count("MailDomain").unchanged += 1;
                        continue;
                    };
                    // The source's states; its DNS values when it shows them, else the target's.
                    let mut row = MailDomain {
                        org_id: t.org_id.clone(),
                        account: t.account.clone(),
                        region: t.region.clone(),
                        domain: t.domain.clone(),
                        created_ms: t.created_ms,
                        ..d
                    };
                    if row.ownership_token.is_empty() && row.dkim_tokens.is_empty() {
                        row.ownership_token = t.ownership_token.clone();
                        row.dkim_tokens = t.dkim_tokens.clone();
                    }
                    if !self.dry_run {
                        self.app
                            .store
                            .update_imported_mail_domain(&row)
                            .await
                            .map_err(err)?;
                    }
                    records.mail_domain(&row);
                    report.update("MailDomain", &row.domain, fields);
                }
                Action::Conflict(why) => report.skip("MailDomain", &d.domain, why),
            }
        }
        Ok(())
    }
}

/// A source's domain as the target stores it: the organization's partition, a creation time after `last`, and
/// fresh DNS values where the source showed none.
fn prepared(org: &Organization, mut d: MailDomain, last: Option<(Millis, &str)>) -> MailDomain {
    d.org_id = org.id.clone();
    d.account = org.account.clone();
    d.region = org.region.clone();
    d.created_ms = plan::creation_time(d.created_ms, &d.domain, last);
    let fresh = MailDomain::new(org, &d.domain, d.is_test_domain, false, d.created_ms);
    if d.ownership_token.is_empty() {
        d.ownership_token = fresh.ownership_token;
    }
    if d.dkim_tokens.is_empty() {
        d.dkim_tokens = fresh.dkim_tokens;
    }
    d
}

fn conflict_text(c: Conflict) -> &'static str {
    match c {
        Conflict::Alias => "its alias is taken",
        Conflict::Directory => "its directory id is taken",
        Conflict::UserName => "its name is taken",
        Conflict::Email => "its email is taken",
        Conflict::TokenId => "its id is taken",
        Conflict::Id => "its id is taken (by another organization or user)",
        Conflict::MailDomain => "its mail domain is registered to another organization",
        Conflict::Reference => {
            "its email address is in a mail domain the organization has not registered"
        }
    }
}

/// The target's users matching a page of the source's.
#[derive(Default)]
struct Lookups {
    by_id: HashMap<String, User>,
    /// Live users by lower-cased name.
    by_name: HashMap<String, User>,
    /// Live users by lower-cased email.
    by_email: HashMap<String, User>,
}

/// One organization being imported.
pub struct OrgImport<'a> {
    target: &'a Target<'a>,
    partition: Partition,
    pub org: Organization,
    /// The (creation time, id) of the last user handled, so that users keep the source's order.
    last_user: Option<(Millis, String)>,
    seen: HashSet<String>,
    /// (name, email) of every user of the source seen, for the token report.
    names: HashMap<String, (String, Option<String>)>,
    /// ENABLED users now in the target (in a dry run: that would be), with the time their aliases start from.
    enabled: HashMap<String, Millis>,
    records: Records,
}

impl OrgImport<'_> {
    fn app(&self) -> &AppState {
        self.target.app
    }

    /// The PAT configuration of the organization.
    pub async fn configuration(
        &mut self,
        source: &IdentityProviderConfiguration,
        report: &mut OrgReport,
    ) -> Result<(), String> {
        let target = self
            .app()
            .store
            .get_identity_provider_configuration(&self.org.id)
            .await
            .map_err(err)?;
        let recorded = self.records.get("Configuration", &self.org.id);
        let action = plan::configuration(source, target.as_ref(), recorded);
        match action {
            Action::Create | Action::Update(_) => {
                if !self.target.dry_run {
                    self.app()
                        .store
                        .put_identity_provider_configuration(&self.org.id, source.clone())
                        .await
                        .map_err(err)?;
                }
                match action {
                    Action::Update(fields) => report.update("Configuration", &self.org.id, fields),
                    _ => report.count("Configuration").created += 1,
                }
            }
            Action::Unchanged => report.count("Configuration").unchanged += 1,
            Action::Conflict(why) => {
                report.skip("Configuration", &self.org.id, why);
                return Ok(());
            }
        }
        self.records.configuration(&self.org.id, source);
        self.target.flush(&mut self.records).await
    }

    /// What the target holds for a page of the source's users, read in one round trip per 500 users: by id, and
    /// the live users by lower-cased name and by lower-cased email.
    async fn lookups(&self, users: &[User]) -> Result<Lookups, String> {
        let mut out = Lookups::default();
        for chunk in users.chunks(500) {
            let ids: Vec<String> = chunk.iter().map(|u| u.id.clone()).collect();
            let keys: Vec<String> = chunk
                .iter()
                .flat_map(|u| std::iter::once(&u.name).chain(u.email.as_ref()))
                .map(|k| k.to_ascii_lowercase())
                .collect();
            let found = self
                .app()
                .store
                .users_by_keys(&self.org.id, &ids, &keys)
                .await
                .map_err(err)?;
            for u in found {
                if u.state != UserState::Deleted {
                    out.by_name.insert(u.name.to_ascii_lowercase(), u.clone());
                    if let Some(e) = &u.email {
                        out.by_email.insert(e.to_ascii_lowercase(), u.clone());
                    }
                }
                out.by_id.insert(u.id.clone(), u);
            }
        }
        Ok(out)
    }

    /// A page of the source's users, in the source's list order. Each user's `created_ms` is the preferred
    /// creation time (see [`plan::creation_time`]). The page's new users are written in one transaction (one at
    /// a time when the target refuses one, so that only that one is skipped); then their passwords are set.
    pub async fn users(&mut self, users: Vec<User>, report: &mut OrgReport) -> Result<(), String> {
        // (user, whether it has a password in the target) for every user created or unchanged.
        let mut kept: Vec<(User, bool)> = Vec::new();
        let mut create: Vec<User> = Vec::new();
        let mut lookups = self.lookups(&users).await?;
        for mut source in users {
            self.seen.insert(source.id.clone());
            self.names.insert(
                source.id.clone(),
                (source.name.clone(), source.email.clone()),
            );
            let by_id = lookups.by_id.remove(&source.id);
            let (mut name_holder, mut email_holder) = (None, None);
            if by_id.is_none() && source.state != UserState::Deleted {
                let other = |u: &&User| u.id != source.id;
                name_holder = lookups
                    .by_name
                    .get(&source.name.to_ascii_lowercase())
                    .filter(other)
                    .cloned();
                email_holder = source.email.as_ref().and_then(|e| {
                    lookups
                        .by_email
                        .get(&e.to_ascii_lowercase())
                        .filter(other)
                        .cloned()
                });
            }
            let recorded = self.records.get("User", &source.id);
            match plan::user(
                &source,
                by_id.as_ref(),
                name_holder.as_ref(),
                email_holder.as_ref(),
                recorded,
            ) {
                Action::Create => {
                    source.created_ms = plan::creation_time(
                        source.created_ms,
                        &source.id,
                        self.last_user.as_ref().map(|(ms, id)| (*ms, id.as_str())),
                    );
                    source.password_hash = None;
                    self.last_user = Some((source.created_ms, source.id.clone()));
                    create.push(source);
                }
                Action::Unchanged => {
                    let target = by_id.expect("unchanged means present");
                    self.after_user(&target);
                    self.records.user(&target);
                    report.count("User").unchanged += 1;
                    kept.push((target.clone(), target.password_hash.is_some()));
                }
                Action::Update(fields) => {
                    let target = by_id.expect("an update is of a user present");
                    self.after_user(&target);
                    // The source's content; the target's creation time and password.
                    source.created_ms = target.created_ms;
                    source.password_hash = target.password_hash.clone();
                    if !self.target.dry_run {
                        match self
                            .app()
                            .store
                            .update_imported_user(&target, &source)
                            .await
                        {
                            Ok(()) => {}
                            Err(StoreError::Conflict(c)) => {
                                report.skip(
                                    "User",
                                    &source.id,
                                    format!(
                                        "the target refused its update ({}): {}",
                                        fields.join(", "),
                                        conflict_text(c)
                                    ),
                                );
                                if target.state == UserState::Enabled {
                                    self.enabled.insert(
                                        target.id.clone(),
                                        target.enabled_ms.unwrap_or(target.created_ms),
                                    );
                                }
                                continue;
                            }
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    self.records.user(&source);
                    report.update("User", &source.id, fields);
                    let has_password = source.password_hash.is_some();
                    kept.push((source, has_password));
                }
                Action::Conflict(why) => {
                    // Left as the target has it; its aliases are still entities of their own.
                    if let Some(t) = by_id.filter(|t| t.state == UserState::Enabled) {
                        self.enabled
                            .insert(t.id.clone(), t.enabled_ms.unwrap_or(t.created_ms));
                    }
                    report.skip("User", &source.id, why)
                }
            }
        }
        for user in self.create_users(create, report).await? {
            kept.push((user, false));
        }
        self.target.flush(&mut self.records).await?;
        for (user, mut has_password) in kept {
            if user.state == UserState::Enabled {
                self.enabled
                    .insert(user.id.clone(), user.enabled_ms.unwrap_or(user.created_ms));
            }
            if user.state == UserState::Deleted {
                continue;
            }
            if let Some(password) = self.target.passwords.for_user(&user) {
                if has_password {
                    // Set by an earlier run (or by the user): never replaced.
                    report.count("Password").unchanged += 1;
                } else {
                    has_password = self.set_password(&user, password, report).await?;
                }
            }
            if !has_password {
                report.users_without_password.push(UserRef {
                    user_id: user.id.clone(),
                    name: user.name.clone(),
                    email: user.email.clone(),
                    state: user.state.as_str(),
                });
            }
        }
        Ok(())
    }

    /// Users are handled in the source's order: the (creation time, id) of one already in the target.
    fn after_user(&mut self, target: &User) {
        let key = (target.created_ms, target.id.clone());
        if self.last_user.as_ref().is_none_or(|last| *last < key) {
            self.last_user = Some(key);
        }
    }

    /// Writes new users: all in one transaction with the page's import records, or, when the target refuses
    /// that, one at a time (each refused one is skipped). The users now in the target.
    async fn create_users(
        &mut self,
        users: Vec<User>,
        report: &mut OrgReport,
    ) -> Result<Vec<User>, String> {
        if users.is_empty() {
            return Ok(users);
        }
        if self.target.dry_run {
            users.iter().for_each(|u| self.records.user(u));
        } else {
            let pending = std::mem::take(&mut self.records.pending);
            let mut records = pending.clone();
            records.extend(users.iter().filter_map(|u| {
                self.records
                    .record("User", &u.org_id, &u.id, &plan::user_content(u))
            }));
            let batch = ImportBatch {
                users: users.clone(),
                records: records.clone(),
                ..ImportBatch::default()
            };
            match self.app().store.import(batch).await {
                Ok(()) => records.iter().for_each(|r| self.records.written(r)),
                Err(StoreError::Conflict(_)) => {
                    self.records.pending = pending;
                    let created = self.create_users_one_by_one(users, report).await?;
                    created.iter().for_each(|u| self.records.user(u));
                    return Ok(created);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        report.count("User").created += users.len() as u64;
        Ok(users)
    }

    async fn create_users_one_by_one(
        &self,
        users: Vec<User>,
        report: &mut OrgReport,
    ) -> Result<Vec<User>, String> {
        let mut created = Vec::new();
        for user in users {
            match self.app().store.create_user(user.clone()).await {
                Ok(()) => {
                    report.count("User").created += 1;
                    created.push(user);
                }
                Err(StoreError::Conflict(c)) => report.skip(
                    "User",
                    &user.id,
                    format!("the target refused it: {}", conflict_text(c)),
                ),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(created)
    }

    /// Sets a password through ResetPassword (its checks: a live user of an Active organization, the password
    /// policy). Whether the user now has one (a dry run answers as if it had been set).
    async fn set_password(
        &self,
        user: &User,
        password: &str,
        report: &mut OrgReport,
    ) -> Result<bool, String> {
        if self.target.dry_run {
            if !crate::domain::password_is_strong(password) {
                report.skip(
                    "Password",
                    &user.id,
                    "ResetPassword would refuse it: too weak (at least 8 characters of 3 kinds)",
                );
                return Ok(false);
            }
            report.count("Password").created += 1;
            return Ok(true);
        }
        let ctx = Ctx {
            app: self.app(),
            partition: self.partition.clone(),
        };
        let input = ops::reset_password::Input {
            organization_id: Some(self.org.id.clone()),
            user_id: Some(user.id.clone()),
            password: Some(password.to_string()),
        };
        match ops::reset_password::handle(&ctx, input).await {
            Ok(_) => {
                report.count("Password").created += 1;
                Ok(true)
            }
            Err(e) => {
                report.skip(
                    "Password",
                    &user.id,
                    format!("ResetPassword refused it: {}", e.message),
                );
                Ok(false)
            }
        }
    }

    /// The aliases of users of the last page (user id, aliases in the source's list order). A user not imported
    /// gets none; an address the target gives to another entity is a conflict. New aliases are written in one
    /// transaction (one at a time when the target refuses one). An alias an earlier run imported that the source no
    /// longer lists is reported as deleted at the source and kept.
    pub async fn aliases(
        &mut self,
        aliases: Vec<(String, Vec<String>)>,
        report: &mut OrgReport,
    ) -> Result<(), String> {
        self.aliases_gone(&aliases, report).await?;
        let created = self.write_aliases(aliases, report).await;
        self.target.flush(&mut self.records).await?;
        created
    }

    /// Reports the recorded aliases of the page's users that the source no longer lists.
    async fn aliases_gone(
        &self,
        aliases: &[(String, Vec<String>)],
        report: &mut OrgReport,
    ) -> Result<(), String> {
        for (user_id, addresses) in aliases {
            if !self.enabled.contains_key(user_id) {
                continue;
            }
            let listed: HashSet<String> =
                addresses.iter().map(|a| a.to_ascii_lowercase()).collect();
            let mut after = None;
            loop {
                let page = self
                    .app()
                    .store
                    .list_aliases(user_id, after, 1000)
                    .await
                    .map_err(err)?;
                let Some(last) = page.last() else { break };
                after = Some(last.cursor());
                for a in page {
                    let key = a.key();
                    if !listed.contains(&key) && self.records.get("Alias", &key).is_some() {
                        report.deleted_at_source.push(Gone {
                            entity: "Alias",
                            id: a.address.clone(),
                            name: a.address,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    async fn write_aliases(
        &mut self,
        aliases: Vec<(String, Vec<String>)>,
        report: &mut OrgReport,
    ) -> Result<(), String> {
        let mut create = Vec::new();
        for (user_id, addresses) in aliases {
            let Some(&base) = self.enabled.get(&user_id) else {
                for a in &addresses {
                    report.skip(
                        "Alias",
                        a,
                        format!("its user {user_id} is not an ENABLED user of the target"),
                    );
                }
                continue;
            };
            let mut last: Option<(Millis, String)> = None;
            for address in addresses {
                let holder = self
                    .app()
                    .store
                    .find_address(&self.org.id, &address)
                    .await
                    .map_err(err)?;
                match plan::alias(&user_id, &address, holder.as_ref()) {
                    Action::Create => {
                        let key = address.to_ascii_lowercase();
                        let ms = plan::creation_time(
                            base,
                            &key,
                            last.as_ref().map(|(ms, k)| (*ms, k.as_str())),
                        );
                        last = Some((ms, key));
                        create.push(EmailAddress {
                            org_id: self.org.id.clone(),
                            entity_id: user_id.clone(),
                            address,
                            is_primary: false,
                            created_ms: ms,
                        });
                    }
                    Action::Unchanged | Action::Update(_) => {
                        let h = holder.expect("unchanged means held");
                        let key = (h.created_ms, h.key());
                        if last.as_ref().is_none_or(|l| *l < key) {
                            last = Some(key);
                        }
                        self.records.alias(&h);
                        report.count("Alias").unchanged += 1;
                    }
                    Action::Conflict(why) => report.skip("Alias", &address, why),
                }
            }
        }
        if create.is_empty() {
            return Ok(());
        }
        if !self.target.dry_run {
            let batch = ImportBatch {
                addresses: create.clone(),
                ..ImportBatch::default()
            };
            match self.app().store.import(batch).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => {
                    for a in create {
                        match self.app().store.create_alias(a.clone(), MAX_ALIASES_PER_USER).await {
                            Ok(true) => {
                                self.records.alias(&a);
                                report.count("Alias").created += 1;
                            }
                            Ok(false) => report.skip(
                                "Alias",
                                &a.address,
                                "the target refused it: its user has the most aliases allowed or is not ENABLED",
                            ),
                            Err(StoreError::Conflict(c)) => report.skip(
                                "Alias",
                                &a.address,
                                format!("the target refused it: {}", conflict_text(c)),
                            ),
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    return Ok(());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        for a in &create {
            self.records.alias(a);
        }
        report.count("Alias").created += create.len() as u64;
        Ok(())
    }

    /// The source's tokens, for the report: their secrets stay behind, so each owner must create them anew.
    pub fn tokens_to_recreate(&self, tokens: &[PersonalAccessToken], report: &mut OrgReport) {
        let mut by_user: Vec<UserTokens> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for t in tokens {
            let i = *index.entry(t.user_id.as_str()).or_insert_with(|| {
                let (name, email) = self.names.get(&t.user_id).cloned().unwrap_or_default();
                by_user.push(UserTokens {
                    user_id: t.user_id.clone(),
                    name,
                    email,
                    tokens: Vec::new(),
                });
                by_user.len() - 1
            });
            by_user[i].tokens.push(TokenMetadata::from(t));
        }
        report.tokens_to_recreate = by_user;
    }

    /// Tokens restored from a dump: their metadata with the same ids; `secret_for` makes each a fresh secret
    /// (the old ones were never dumped) and returns its digest.
    pub async fn restore_tokens(
        &self,
        tokens: Vec<PersonalAccessToken>,
        report: &mut OrgReport,
        mut secret_for: impl FnMut(&PersonalAccessToken) -> [u8; 32],
    ) -> Result<(), String> {
        for t in tokens {
            let existing = self
                .app()
                .store
                .get_personal_access_token(&self.org.id, &t.id)
                .await
                .map_err(err)?;
            match plan::token(&t, existing.as_ref()) {
                Action::Create => {
                    if !self.target.dry_run {
                        let digest = secret_for(&t);
                        match self
                            .app()
                            .store
                            .insert_personal_access_token(t.clone(), digest)
                            .await
                        {
                            Ok(()) => {}
                            Err(StoreError::Conflict(c)) => {
                                report.skip("Token", &t.id, conflict_text(c));
                                continue;
                            }
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    report.count("Token").created += 1;
                }
                Action::Unchanged | Action::Update(_) => report.count("Token").unchanged += 1,
                Action::Conflict(why) => report.skip("Token", &t.id, why),
            }
        }
        Ok(())
    }

    /// After every user of the source was seen: the target's users of this organization that the source no longer
    /// lists are reported (never deleted).
    pub async fn finish(mut self, report: &mut OrgReport) -> Result<(), String> {
        self.target.flush(&mut self.records).await?;
        let mut after = None;
        loop {
            let page = self
                .app()
                .store
                .list_users(&self.org.id, &UserFilter::None, after, 1000)
                .await
                .map_err(err)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.cursor());
            for u in page {
                if !self.seen.contains(&u.id) {
                    report.deleted_at_source.push(Gone {
                        entity: "User",
                        id: u.id,
                        name: u.name,
                    });
                }
            }
        }
    }
}

/// Organizations of the target, in the given partitions, that the source did not list.
pub async fn organizations_gone(
    target: &Target<'_>,
    partitions: &HashSet<Partition>,
    seen: &HashSet<String>,
    report: &mut Report,
) -> Result<(), String> {
    let mut partitions: Vec<_> = partitions.iter().collect();
    partitions.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    for p in partitions {
        for o in target.organizations(p).await? {
            if !seen.contains(&o.id) {
                report.organizations_deleted_at_source.push(Gone {
                    entity: "Organization",
                    id: o.id,
                    name: o.alias,
                });
            }
        }
    }
    Ok(())
}
