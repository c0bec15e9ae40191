//! Data the AWS API cannot create by itself: declarative seed files (YAML or JSON), a fast synthetic store for
//! benchmarks, and a dump of the whole state (never secrets).
//!
//! Seed files go through the same operations as API calls (so every model constraint holds) and are idempotent:
//! an organization whose alias is live in its account/region, a user whose name exists, a token whose secret or
//! (user, name) exists are kept, not duplicated, so `serve --seed FILE` can restart on a persistent database.

use serde::{Deserialize, Serialize};

use crate::auth::DEFAULT_ACCOUNT;
use crate::clock::Millis;
use crate::domain::{
    EpochSeconds, IdentityProviderConfiguration, Organization, Partition, PatStatus,
    PersonalAccessToken, User, UserFilter, UserProfile, UserState, org_state,
};
use crate::ops::{self, Ctx, validate};
use crate::pagination::Keyed;
use crate::secrets::{PatSecret, hash_password};
use crate::state::AppState;
use crate::store::ImportBatch;

pub const DEFAULT_REGION: &str = "us-east-1";
/// Identity Center ARNs used for PAT configurations declared in seed files (any pattern-valid ARN is accepted).
const SEED_INSTANCE_ARN: &str = "arn:aws:sso:::instance/ssoins-0000000000000000";
const SEED_APPLICATION_ARN: &str =
    "arn:aws:sso::000000000000:application/ssoins-0000000000000000/apl-0000000000000000";

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub organizations: Vec<SeedOrganization>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SeedOrganization {
    pub alias: String,
    pub account: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    pub pat_configuration: Option<SeedPatConfiguration>,
    #[serde(default)]
    pub users: Vec<SeedUser>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SeedPatConfiguration {
    pub status: String,
    pub lifetime_in_days: Option<i64>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub name: String,
    pub display_name: Option<String>,
    pub password: Option<String>,
    /// Given: the user is registered (ENABLED) with this address.
    pub email: Option<String>,
    #[serde(default)]
    pub tokens: Vec<SeedToken>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SeedToken {
    pub name: String,
    pub scopes: Option<Vec<String>>,
    /// A fixed secret (`wmpat_…`, for fixtures); generated when absent.
    pub secret: Option<String>,
}

/// Parses a seed file; YAML is a superset of JSON, so one parser reads both.
pub fn parse(text: &str) -> Result<SeedFile, String> {
    serde_norway::from_str(text).map_err(|e| format!("invalid seed file: {e}"))
}

/// What seeding created or found, with the secrets of tokens it generated (shown once, by the `seed` command).
#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SeedReport {
    pub organizations: Vec<SeededOrganization>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SeededOrganization {
    pub alias: String,
    pub organization_id: String,
    pub account: String,
    pub region: String,
    pub users: Vec<SeededUser>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SeededUser {
    pub name: String,
    pub user_id: String,
    pub tokens: Vec<SeededToken>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SeededToken {
    pub name: String,
    pub personal_access_token_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The context of an API call from `partition`: seed files go through the operations themselves.
fn api_call<'a>(app: &'a AppState, partition: &Partition) -> Ctx<'a> {
    Ctx {
        app,
        partition: partition.clone(),
    }
}

/// An operation's error as a seeding failure that names the operation.
fn failed(op: &'static str) -> impl Fn(crate::error::ServiceError) -> String {
    move |e| format!("{op}: {e}")
}

/// A live organization with this alias in the partition, if any.
async fn find_live_org(
    app: &AppState,
    partition: &Partition,
    alias: &str,
) -> Result<Option<Organization>, String> {
    let mut after = None;
    loop {
        let page = app
            .store
            .list_organizations(partition, after, 1000)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(o) = page
            .iter()
            .find(|o| o.alias.eq_ignore_ascii_case(alias) && o.state != org_state::DELETED)
        {
            return Ok(Some(o.clone()));
        }
        let Some(last) = page.last() else {
            return Ok(None);
        };
        after = Some(last.cursor());
    }
}

/// Applies a seed file.
pub async fn apply(app: &AppState, file: &SeedFile) -> Result<SeedReport, String> {
    let mut report = SeedReport::default();
    for o in &file.organizations {
        let partition = Partition {
            account: o
                .account
                .clone()
                .unwrap_or_else(|| DEFAULT_ACCOUNT.to_string()),
            region: o
                .region
                .clone()
                .unwrap_or_else(|| DEFAULT_REGION.to_string()),
        };
        let org = match find_live_org(app, &partition, &o.alias).await? {
            Some(existing) => existing,
            None => {
                let input = ops::create_organization::Input {
                    alias: Some(o.alias.clone()),
                    domains: Some(
                        o.domains
                            .iter()
                            .map(|d| ops::create_organization::Domain {
                                domain_name: Some(d.clone()),
                                hosted_zone_id: None,
                            })
                            .collect(),
                    ),
                    ..Default::default()
                };
                let id = ops::create_organization::handle(&api_call(app, &partition), input)
                    .await
                    .map_err(failed("CreateOrganization"))?
                    .organization_id;
                app.store
                    .get_organization(&partition, &id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the organization vanished while seeding")?
            }
        };
        if let Some(c) = &o.pat_configuration {
            use ops::put_identity_provider_configuration as put;
            let input = put::Input {
                organization_id: Some(org.id.clone()),
                authentication_mode: Some("IDENTITY_PROVIDER_AND_DIRECTORY".to_string()),
                identity_center_configuration: Some(put::IdentityCenterConfiguration {
                    instance_arn: Some(SEED_INSTANCE_ARN.to_string()),
                    application_arn: Some(SEED_APPLICATION_ARN.to_string()),
                }),
                personal_access_token_configuration: Some(put::PersonalAccessTokenConfiguration {
                    status: Some(c.status.clone()),
                    lifetime_in_days: c.lifetime_in_days,
                }),
            };
            put::handle(&api_call(app, &partition), input)
                .await
                .map_err(failed("PutIdentityProviderConfiguration"))?;
        }
        let mut users = Vec::new();
        for u in &o.users {
            users.push(seed_user(app, &partition, &org, u).await?);
        }
        report.organizations.push(SeededOrganization {
            alias: o.alias.clone(),
            organization_id: org.id.clone(),
            account: partition.account.clone(),
            region: partition.region.clone(),
            users,
        });
    }
    Ok(report)
}

async fn seed_user(
    app: &AppState,
    partition: &Partition,
    org: &Organization,
    u: &SeedUser,
) -> Result<SeededUser, String> {
    let existing = app
        .store
        .find_user(&org.id, &u.name)
        .await
        .map_err(|e| e.to_string())?
        .filter(|x| x.state != UserState::Deleted && x.name.eq_ignore_ascii_case(&u.name));
    let user_id = match existing {
        Some(x) => x.id,
        None => {
            let input = ops::create_user::Input {
                organization_id: Some(org.id.clone()),
                name: Some(u.name.clone()),
                display_name: Some(u.display_name.clone().unwrap_or_else(|| u.name.clone())),
                password: u.password.clone(),
                ..Default::default()
            };
            ops::create_user::handle(&api_call(app, partition), input)
                .await
                .map_err(failed("CreateUser"))?
                .user_id
        }
    };
    if let Some(email) = &u.email {
        let input = ops::register_to_work_mail::Input {
            organization_id: Some(org.id.clone()),
            entity_id: Some(user_id.clone()),
            email: Some(email.clone()),
        };
        ops::register_to_work_mail::handle(&api_call(app, partition), input)
            .await
            .map_err(failed("RegisterToWorkMail"))?;
    }
    let user = app
        .store
        .find_user(&org.id, &user_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the user vanished while seeding")?;
    let mut tokens = Vec::new();
    for t in &u.tokens {
        if let Some(seeded) = seed_token(app, org, &user, t).await? {
            tokens.push(seeded);
        }
    }
    Ok(SeededUser {
        name: user.name.clone(),
        user_id: user.id.clone(),
        tokens,
    })
}

async fn seed_token(
    app: &AppState,
    org: &Organization,
    user: &User,
    t: &SeedToken,
) -> Result<Option<SeededToken>, String> {
    validate::safe_text(&t.name, "tokens.name", 1, 64).map_err(|e| e.to_string())?;
    let scopes = t
        .scopes
        .clone()
        .unwrap_or_else(|| app.settings.default_scopes.clone());
    validate::scopes(&scopes, "tokens.scopes").map_err(|e| e.to_string())?;
    let (secret, generated) = match &t.secret {
        Some(text) => (
            PatSecret::check(text).map_err(|e| {
                format!(
                    "token {:?}: the secret is not a valid wmpat_ token: {e}. Write a real one with \
                     `workmail-pat token secret`, or leave `secret` out to have one generated",
                    t.name
                )
            })?,
            false,
        ),
        None => (PatSecret::generate(), true),
    };
    let digest = secret.digest(&app.pepper);
    // Idempotent: a fixed secret already stored, or a generated one whose (user, name) exists, is kept.
    if let Some(existing) = app
        .store
        .find_personal_access_token_by_digest(digest)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(Some(SeededToken {
            name: existing.name,
            personal_access_token_id: existing.id,
            token: None,
        }));
    }
    if generated {
        let own = app
            .store
            .list_personal_access_tokens(&org.id, Some(&user.id), None, 1000)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(existing) = own.into_iter().find(|x| x.name == t.name) {
            return Ok(Some(SeededToken {
                name: existing.name,
                personal_access_token_id: existing.id,
                token: None,
            }));
        }
    }
    let lifetime_days = app
        .store
        .get_identity_provider_configuration(&org.id)
        .await
        .map_err(|e| e.to_string())?
        .map_or(365, |c| c.pat_lifetime_days);
    let now = app.clock.now_ms();
    let token = PersonalAccessToken {
        id: app.ids.guid(),
        org_id: org.id.clone(),
        user_id: user.id.clone(),
        name: t.name.clone(),
        scopes,
        created_ms: now,
        last_used_ms: None,
        expires_ms: now + lifetime_days * 86_400_000,
    };
    app.store
        .insert_personal_access_token(token.clone(), digest)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(SeededToken {
        name: token.name,
        personal_access_token_id: token.id,
        token: generated.then(|| secret.expose().to_string()),
    }))
}

/// Parameters of a synthetic store.
#[derive(Debug, Clone)]
pub struct GenerateSpec {
    pub tokens: u64,
    pub organizations: u64,
    pub users: u64,
    pub partition: Partition,
    /// The password every generated user gets (hashed once).
    pub password: String,
}

impl GenerateSpec {
    /// The benchmark's default shape: 10 organizations and one user per 10 tokens.
    pub fn new(tokens: u64, partition: Partition) -> Self {
        Self {
            tokens,
            organizations: 10.min(tokens.max(1)),
            users: (tokens / 10).max(1),
            partition,
            password: "Generated-Passw0rd".into(),
        }
    }
}

/// One generated secret kept for benchmarks and tests (`--secrets-out`).
#[derive(Debug, Clone)]
pub struct SampleSecret {
    pub organization_id: String,
    pub user_name: String,
    pub secret: String,
}

const TOKEN_NAMES: &[&str] = &[
    "laptop",
    "phone",
    "tablet",
    "thunderbird",
    "outlook",
    "apple-mail",
    "mutt",
    "ci-bot",
    "backup",
    "calendar-sync",
];
const FIRST_NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yolanda",
];

/// Builds a large synthetic store through the bulk path, calling `progress(tokens_written)` after each batch.
/// Returns up to `sample` secrets (spread over the store) for later verification.
pub async fn generate(
    app: &AppState,
    spec: &GenerateSpec,
    sample: usize,
    mut progress: impl FnMut(u64),
) -> Result<Vec<SampleSecret>, String> {
    let password_hash = {
        let p = spec.password.clone();
        crate::hashing::on_password_thread(crate::hashing::Lane::Admin, move || hash_password(&p))
            .await
            .map_err(|e| e.to_string())??
    };
    let now: Millis = app.clock.now_ms();
    // Creation times spread over the last 300 days, in order, so pages walk through realistic history.
    let span_ms: Millis = 300 * 86_400_000;
    let start = now - span_ms;
    let run = &app.ids.guid()[..8];

    let mut orgs = Vec::new();
    let mut batch = ImportBatch::default();
    // Tokens are generated organization by organization in creation order, the oldest first. With ids in the same
    // order, every token lands at the end of SQLite's token table, whose key is the page order (organization,
    // creation, id), and the bulk load appends to its last page instead of splitting pages in the middle.
    let mut ids: Vec<String> = (0..spec.organizations)
        .map(|_| app.ids.organization_id())
        .collect();
    ids.sort_unstable();
    for (i, id) in ids.into_iter().enumerate() {
        let alias = format!("gen-{run}-{i}");
        let org = Organization {
            id,
            account: spec.partition.account.clone(),
            region: spec.partition.region.clone(),
            default_mail_domain: format!("{alias}.awsapps.com"),
            alias,
            state: org_state::ACTIVE.into(),
            directory_id: app.ids.directory_id(),
            directory_type: "VpcDirectory".into(),
            domains: Vec::new(),
            kms_key_arn: None,
            interoperability_enabled: false,
            created_ms: start + i as i64,
            completed_ms: Some(start + i as i64),
        };
        batch.configurations.push((
            org.id.clone(),
            IdentityProviderConfiguration {
                authentication_mode: "IDENTITY_PROVIDER_AND_DIRECTORY".into(),
                instance_arn: SEED_INSTANCE_ARN.into(),
                application_arn: SEED_APPLICATION_ARN.into(),
                pat_status: PatStatus::Active,
                pat_lifetime_days: 365,
            },
        ));
        batch.organizations.push(org.clone());
        orgs.push(org);
    }
    app.store
        .import(std::mem::take(&mut batch))
        .await
        .map_err(|e| e.to_string())?;

    let users_per_org = spec.users.div_ceil(spec.organizations);
    let mut written: u64 = 0;
    let mut samples = Vec::new();
    let sample_every = if sample == 0 {
        u64::MAX
    } else {
        (spec.tokens / sample as u64).max(1)
    };
    const BATCH_TOKENS: usize = 100_000;
    for u in 0..spec.users {
        let org = &orgs[(u / users_per_org) as usize % orgs.len()];
        let name = format!("{}.{}{:06}", FIRST_NAMES[(u % 20) as usize], "user", u);
        let user = User {
            id: app.ids.guid(),
            org_id: org.id.clone(),
            email: Some(format!("{name}@{}", org.default_mail_domain)),
            state: UserState::Enabled,
            role: "USER".into(),
            profile: UserProfile {
                display_name: format!("{} {u}", FIRST_NAMES[(u % 20) as usize]),
                ..UserProfile::default()
            },
            identity_provider_user_id: None,
            enabled_ms: Some(start),
            disabled_ms: None,
            mailbox_provisioned_ms: Some(start),
            mailbox_deprovisioned_ms: None,
            created_ms: start + u as i64,
            password_hash: Some(password_hash.clone()),
            name,
        };
        // Tokens are spread evenly over users; the remainder goes to the first ones.
        let count = spec.tokens / spec.users + u64::from(u < spec.tokens % spec.users);
        for k in 0..count {
            let index = written + batch.tokens.len() as u64;
            let created_ms =
                start + (index as i128 * span_ms as i128 / spec.tokens.max(1) as i128) as i64;
            let secret = PatSecret::generate();
            let scopes = match index % 10 {
                0 => vec!["IMAP".to_string()],
                1 => vec!["SMTP".to_string()],
                _ => vec!["IMAP".to_string(), "SMTP".to_string()],
            };
            let token = PersonalAccessToken {
                id: app.ids.guid(),
                org_id: org.id.clone(),
                user_id: user.id.clone(),
                name: format!("{} {}", TOKEN_NAMES[(k % 10) as usize], k / 10 + 1),
                scopes,
                created_ms,
                // Every third token has been used.
                last_used_ms: index.is_multiple_of(3).then_some(created_ms + 3_600_000),
                expires_ms: created_ms + 365 * 86_400_000,
            };
            // Samples are verified for IMAP (as a mail server would ask), so they must carry it.
            if index.is_multiple_of(sample_every)
                && samples.len() < sample
                && token.scopes.iter().any(|s| s == "IMAP")
            {
                samples.push(SampleSecret {
                    organization_id: org.id.clone(),
                    user_name: user.name.clone(),
                    secret: secret.expose().to_string(),
                });
            }
            batch.tokens.push((token, secret.digest(&app.pepper)));
        }
        batch.users.push(user);
        if batch.tokens.len() >= BATCH_TOKENS {
            written += batch.tokens.len() as u64;
            app.store
                .import(std::mem::take(&mut batch))
                .await
                .map_err(|e| e.to_string())?;
            progress(written);
        }
    }
    written += batch.tokens.len() as u64;
    app.store.import(batch).await.map_err(|e| e.to_string())?;
    progress(written);
    Ok(samples)
}

/// The whole state as JSON: organizations with their configuration, users and token metadata, every field with its
/// id, so that `seed` restores the same state from it ([`crate::import::dump`]). Never a secret, a password hash
/// or a token digest. Nor the import records (`Store::import_records`): they are this store's bookkeeping of what
/// it imported from its source, not state the API shows; a store restored from a dump records what its restore
/// wrote, and a later import into it compares with that.
pub async fn dump(app: &AppState) -> Result<serde_json::Value, String> {
    let err = |e: crate::store::StoreError| e.to_string();
    let mut out = Vec::new();
    for partition in app.store.list_partitions().await.map_err(err)? {
        let mut after = None;
        loop {
            let orgs = app
                .store
                .list_organizations(&partition, after.clone(), 1000)
                .await
                .map_err(err)?;
            let Some(last) = orgs.last() else { break };
            after = Some(last.cursor());
            for org in &orgs {
                out.push(dump_org(app, org).await?);
            }
        }
    }
    Ok(serde_json::json!({ "Organizations": out }))
}

async fn dump_org(app: &AppState, org: &Organization) -> Result<serde_json::Value, String> {
    let err = |e: crate::store::StoreError| e.to_string();
    let config = app
        .store
        .get_identity_provider_configuration(&org.id)
        .await
        .map_err(err)?
        .map(|c| {
            serde_json::json!({
                "AuthenticationMode": c.authentication_mode,
                "InstanceArn": c.instance_arn,
                "ApplicationArn": c.application_arn,
                "PersonalAccessTokenStatus": c.pat_status.as_str(),
                "LifetimeInDays": c.pat_lifetime_days,
            })
        });
    let mut users = Vec::new();
    let mut after = None;
    loop {
        let page = app
            .store
            .list_users(&org.id, &UserFilter::None, after.clone(), 1000)
            .await
            .map_err(err)?;
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        for u in page {
            let aliases = dump_aliases(app, &u).await?;
            let p = &u.profile;
            users.push(serde_json::json!({
                "UserId": u.id,
                "Name": u.name,
                "Email": u.email,
                "Aliases": aliases,
                "DisplayName": p.display_name,
                "State": u.state.as_str(),
                "UserRole": u.role,
                "Created": EpochSeconds(u.created_ms),
                "FirstName": p.first_name,
                "LastName": p.last_name,
                "Initials": p.initials,
                "Telephone": p.telephone,
                "Street": p.street,
                "JobTitle": p.job_title,
                "City": p.city,
                "Company": p.company,
                "ZipCode": p.zip_code,
                "Department": p.department,
                "Country": p.country,
                "Office": p.office,
                "HiddenFromGlobalAddressList": p.hidden_from_global_address_list,
                "IdentityProviderUserId": u.identity_provider_user_id,
                "EnabledDate": u.enabled_ms.map(EpochSeconds),
                "DisabledDate": u.disabled_ms.map(EpochSeconds),
                "MailboxProvisionedDate": u.mailbox_provisioned_ms.map(EpochSeconds),
                "MailboxDeprovisionedDate": u.mailbox_deprovisioned_ms.map(EpochSeconds),
            }));
        }
    }
    let mut tokens = Vec::new();
    let mut after = None;
    loop {
        let page = app
            .store
            .list_personal_access_tokens(&org.id, None, after.clone(), 1000)
            .await
            .map_err(err)?;
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        for t in &page {
            tokens.push(
                serde_json::to_value(crate::model::PatSummary::from(t))
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    Ok(serde_json::json!({
        "OrganizationId": org.id,
        "Account": org.account,
        "Region": org.region,
        "Alias": org.alias,
        "State": org.state,
        "DefaultMailDomain": org.default_mail_domain,
        "Domains": org.domains,
        "MailDomains": dump_mail_domains(app, org).await?,
        "Created": EpochSeconds(org.created_ms),
        "CompletedDate": org.completed_ms.map(EpochSeconds),
        "DirectoryId": org.directory_id,
        "DirectoryType": org.directory_type,
        "KmsKeyArn": org.kms_key_arn,
        "InteroperabilityEnabled": org.interoperability_enabled,
        "IdentityProviderConfiguration": config,
        "Users": users,
        "PersonalAccessTokens": tokens,
    }))
}

/// The organization's registered mail domains (issue 15), with the DNS records GetMailDomain shows (so that a
/// restore keeps the values already published) and when each was registered (list order).
async fn dump_mail_domains(
    app: &AppState,
    org: &Organization,
) -> Result<Vec<serde_json::Value>, String> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = app
            .store
            .list_mail_domains(&org.id, after.clone(), 1000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        for d in page {
            let records: Vec<_> = d
                .records()
                .into_iter()
                .map(|r| serde_json::json!({"Type": r.kind, "Hostname": r.hostname, "Value": r.value}))
                .collect();
            out.push(serde_json::json!({
                "DomainName": d.domain,
                "IsTestDomain": d.is_test_domain,
                "DefaultDomain": org.default_mail_domain.eq_ignore_ascii_case(&d.domain),
                "OwnershipVerificationStatus": d.ownership.as_str(),
                "DkimVerificationStatus": d.dkim.as_str(),
                "Records": records,
                "Created": EpochSeconds(d.created_ms),
            }));
        }
    }
    Ok(out)
}

/// A registered user's aliases (only ENABLED users hold addresses).
async fn dump_aliases(app: &AppState, user: &crate::domain::User) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    if user.state != crate::domain::UserState::Enabled {
        return Ok(out);
    }
    let mut after = None;
    loop {
        let page = app
            .store
            .list_aliases(&user.id, after.clone(), 1000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        out.extend(page.into_iter().map(|a| a.address));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let file = parse(
            r#"
organizations:
  - alias: acme
    pat_configuration: {status: ACTIVE, lifetime_in_days: 365}
    users:
      - name: alice
        password: "Correct-Horse-7"
        email: alice@acme.awsapps.com
        tokens:
          - {name: laptop, scopes: [IMAP]}
"#,
        )
        .unwrap();
        assert_eq!(
            file.organizations[0].users[0].tokens[0].scopes.as_deref(),
            Some(&["IMAP".to_string()][..])
        );
        assert!(parse("organizations: [{alias: a, typo: 1}]").is_err());
        assert!(parse(r#"{"organizations": [{"alias": "json-works"}]}"#).is_ok());
    }
}
