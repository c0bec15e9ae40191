//! A `workmail-pat dump` file as the source of an import: `seed` given a dump restores the same organizations,
//! mail domains (verification state, DNS values, default), configurations, users, aliases and token metadata
//! with the same ids (secrets aside: every token gets a fresh secret,
//! shown once in the output, and users get no password).

use serde::Deserialize;

use crate::clock::Millis;
use crate::domain::{
    IdentityProviderConfiguration, Organization, PatStatus, PersonalAccessToken, User, UserProfile,
    UserState,
};
use crate::mail::{MailDomain, Verification};
use crate::secrets::PatSecret;

use super::engine::Target;
use super::report::{OrgReport, Report};

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Dump {
    pub organizations: Vec<DumpOrganization>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DumpOrganization {
    organization_id: String,
    account: String,
    region: String,
    alias: String,
    state: String,
    default_mail_domain: String,
    #[serde(default)]
    domains: Vec<String>,
    /// Absent from dumps older than mail domains: then as CreateOrganization registers them.
    #[serde(default)]
    mail_domains: Option<Vec<DumpMailDomain>>,
    created: f64,
    completed_date: Option<f64>,
    #[serde(default)]
    directory_id: Option<String>,
    #[serde(default)]
    directory_type: Option<String>,
    #[serde(default)]
    kms_key_arn: Option<String>,
    #[serde(default)]
    interoperability_enabled: bool,
    identity_provider_configuration: Option<DumpConfiguration>,
    #[serde(default)]
    users: Vec<DumpUser>,
    #[serde(default)]
    personal_access_tokens: Vec<DumpToken>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct DumpMailDomain {
    domain_name: String,
    #[serde(default)]
    is_test_domain: bool,
    ownership_verification_status: String,
    dkim_verification_status: String,
    #[serde(default)]
    records: Vec<DumpRecord>,
    created: Option<f64>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct DumpRecord {
    #[serde(rename = "Type")]
    kind: String,
    hostname: String,
    value: String,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct DumpConfiguration {
    authentication_mode: String,
    instance_arn: String,
    application_arn: String,
    personal_access_token_status: String,
    lifetime_in_days: i64,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct DumpUser {
    user_id: String,
    name: String,
    email: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    display_name: String,
    state: String,
    user_role: String,
    created: f64,
    first_name: Option<String>,
    last_name: Option<String>,
    initials: Option<String>,
    telephone: Option<String>,
    street: Option<String>,
    job_title: Option<String>,
    city: Option<String>,
    company: Option<String>,
    zip_code: Option<String>,
    department: Option<String>,
    country: Option<String>,
    office: Option<String>,
    #[serde(default)]
    hidden_from_global_address_list: bool,
    identity_provider_user_id: Option<String>,
    enabled_date: Option<f64>,
    disabled_date: Option<f64>,
    mailbox_provisioned_date: Option<f64>,
    mailbox_deprovisioned_date: Option<f64>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct DumpToken {
    personal_access_token_id: String,
    user_id: String,
    name: String,
    date_created: f64,
    date_last_used: Option<f64>,
    expires_time: f64,
    scopes: Vec<String>,
}

fn ms(seconds: f64) -> Millis {
    (seconds * 1000.0).round() as Millis
}

/// A dump, if `text` is one (its top-level key is `Organizations`; seed files use `organizations`).
pub fn parse(text: &str) -> Result<Option<Dump>, String> {
    let value: serde_json::Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(_) => return Ok(None),
    };
    if value.get("Organizations").is_none() {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| format!("invalid dump file: {e}"))
}

impl DumpOrganization {
    fn organization(&self) -> Organization {
        Organization {
            id: self.organization_id.clone(),
            account: self.account.clone(),
            region: self.region.clone(),
            alias: self.alias.clone(),
            state: self.state.clone(),
            directory_id: self
                .directory_id
                .clone()
                .unwrap_or_else(crate::domain::new_directory_id),
            directory_type: self
                .directory_type
                .clone()
                .unwrap_or_else(|| "VpcDirectory".into()),
            default_mail_domain: self.default_mail_domain.clone(),
            domains: self.domains.clone(),
            kms_key_arn: self.kms_key_arn.clone(),
            interoperability_enabled: self.interoperability_enabled,
            created_ms: ms(self.created),
            completed_ms: self.completed_date.map(ms),
        }
    }

    /// The registered domains, in list order (without DNS values when the dump has no records: fresh ones then).
    fn mail_domains(&self) -> Option<Vec<MailDomain>> {
        let domains = self.mail_domains.as_ref()?;
        Some(
            domains
                .iter()
                .map(|d| {
                    let mut row = MailDomain {
                        org_id: self.organization_id.clone(),
                        account: self.account.clone(),
                        region: self.region.clone(),
                        domain: d.domain_name.to_ascii_lowercase(),
                        is_test_domain: d.is_test_domain,
                        ownership: Verification::parse(&d.ownership_verification_status),
                        dkim: Verification::parse(&d.dkim_verification_status),
                        ownership_token: String::new(),
                        dkim_tokens: Vec::new(),
                        created_ms: d.created.map_or(ms(self.created), ms),
                    };
                    row.keep_records(
                        d.records
                            .iter()
                            .map(|r| (r.kind.as_str(), r.hostname.as_str(), r.value.as_str())),
                    );
                    row
                })
                .collect(),
        )
    }

    /// Each user's aliases, in list order.
    fn aliases(&self) -> Vec<(String, Vec<String>)> {
        self.users
            .iter()
            .filter(|u| !u.aliases.is_empty())
            .map(|u| (u.user_id.clone(), u.aliases.clone()))
            .collect()
    }

    fn configuration(&self) -> Result<Option<IdentityProviderConfiguration>, String> {
        let Some(c) = &self.identity_provider_configuration else {
            return Ok(None);
        };
        Ok(Some(IdentityProviderConfiguration {
            authentication_mode: c.authentication_mode.clone(),
            instance_arn: c.instance_arn.clone(),
            application_arn: c.application_arn.clone(),
            pat_status: PatStatus::parse(&c.personal_access_token_status)
                .ok_or_else(|| format!("unknown status {:?}", c.personal_access_token_status))?,
            pat_lifetime_days: c.lifetime_in_days,
        }))
    }

    fn users(&self) -> Result<Vec<User>, String> {
        self.users
            .iter()
            .map(|u| {
                Ok(User {
                    id: u.user_id.clone(),
                    org_id: self.organization_id.clone(),
                    name: u.name.clone(),
                    email: u.email.clone(),
                    state: UserState::parse(&u.state).ok_or_else(|| {
                        format!("user {}: unknown state {:?}", u.user_id, u.state)
                    })?,
                    role: u.user_role.clone(),
                    profile: UserProfile {
                        display_name: u.display_name.clone(),
                        first_name: u.first_name.clone(),
                        last_name: u.last_name.clone(),
                        initials: u.initials.clone(),
                        telephone: u.telephone.clone(),
                        street: u.street.clone(),
                        job_title: u.job_title.clone(),
                        city: u.city.clone(),
                        company: u.company.clone(),
                        zip_code: u.zip_code.clone(),
                        department: u.department.clone(),
                        country: u.country.clone(),
                        office: u.office.clone(),
                        hidden_from_global_address_list: u.hidden_from_global_address_list,
                    },
                    identity_provider_user_id: u.identity_provider_user_id.clone(),
                    enabled_ms: u.enabled_date.map(ms),
                    disabled_ms: u.disabled_date.map(ms),
                    mailbox_provisioned_ms: u.mailbox_provisioned_date.map(ms),
                    mailbox_deprovisioned_ms: u.mailbox_deprovisioned_date.map(ms),
                    created_ms: ms(u.created),
                    password_hash: None,
                })
            })
            .collect()
    }

    fn tokens(&self) -> Vec<PersonalAccessToken> {
        self.personal_access_tokens
            .iter()
            .map(|t| PersonalAccessToken {
                id: t.personal_access_token_id.clone(),
                org_id: self.organization_id.clone(),
                user_id: t.user_id.clone(),
                name: t.name.clone(),
                scopes: t.scopes.clone(),
                created_ms: ms(t.date_created),
                last_used_ms: t.date_last_used.map(ms),
                expires_ms: ms(t.expires_time),
            })
            .collect()
    }
}

/// A restored token's fresh secret (shown once).
#[derive(serde::Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct NewSecret {
    pub organization_id: String,
    pub personal_access_token_id: String,
    pub token: String,
}

/// Restores a dump into `target`.
pub async fn restore(dump: &Dump, target: &Target<'_>) -> Result<(Report, Vec<NewSecret>), String> {
    let mut report = Report {
        dry_run: target.dry_run,
        ..Report::default()
    };
    let mut secrets = Vec::new();
    for o in &dump.organizations {
        let mut org_report = OrgReport::default();
        let org = o.organization();
        let configuration = o.configuration()?;
        let users = o.users()?;
        let domains = o.mail_domains();
        if let Some(mut import) = target.organization(org, domains, &mut org_report).await? {
            if let Some(c) = &configuration {
                import.configuration(c, &mut org_report).await?;
            }
            import.users(users, &mut org_report).await?;
            import.aliases(o.aliases(), &mut org_report).await?;
            let pepper = &target.app.pepper;
            import
                .restore_tokens(o.tokens(), &mut org_report, |t| {
                    let secret = PatSecret::generate();
                    secrets.push(NewSecret {
                        organization_id: t.org_id.clone(),
                        personal_access_token_id: t.id.clone(),
                        token: secret.expose().to_string(),
                    });
                    secret.digest(pepper)
                })
                .await?;
            import.finish(&mut org_report).await?;
        }
        report.organizations.push(org_report);
    }
    report.finish();
    Ok((report, secrets))
}
