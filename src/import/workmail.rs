//! The source of an import: any endpoint speaking the WorkMail API (Amazon WorkMail itself by default), read
//! through the official SDK with the standard AWS configuration chain. Every list goes through the SDK's
//! paginators; throttling is retried by the SDK's standard retry; a client-side limiter keeps to
//! `--max-requests-per-second` (one permit per request or page).

use std::collections::HashSet;
use std::num::NonZeroU32;

use aws_sdk_workmail::Client;
use aws_sdk_workmail::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_workmail::primitives::DateTime;

use crate::clock::Millis;
use crate::domain::{
    IdentityProviderConfiguration, Organization, PatStatus, PersonalAccessToken, User, UserProfile,
    UserState, org_state,
};

use crate::mail::{MailDomain, Verification};

use super::engine::{Target, organizations_gone};
use super::report::{OrgReport, Report};

type Limiter = governor::DefaultDirectRateLimiter;

const USERS_PER_PAGE: i32 = 50;

/// Where and how to read.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub max_requests_per_second: u32,
    /// Attempts per request (the SDK's standard retry mode), throttling included.
    pub max_attempts: u32,
}

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub organization_ids: Vec<String>,
    pub all: bool,
}

/// Progress of an import, shown by the command (a bar on a terminal, lines otherwise).
pub trait Progress {
    fn organization(&self, org: &Organization);
    fn users(&self, done: u64);
    fn finished(&self, report: &OrgReport);
}

/// A WorkMail API endpoint.
pub struct Source {
    client: Client,
    limiter: Limiter,
}

fn sdk_error<E, R>(what: &str, e: SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    format!("{what}: {}", DisplayErrorContext(e))
}

/// Epoch milliseconds, rounded (the wire carries milliseconds as fractional seconds).
fn millis(t: &DateTime) -> Millis {
    t.secs() * 1000 + ((i64::from(t.subsec_nanos()) + 500_000) / 1_000_000)
}

/// (account, region) of an organization ARN, `arn:aws:workmail:REGION:ACCOUNT:organization/ID`.
pub fn arn_partition(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "workmail", region, account, resource]
            if resource.starts_with("organization/") && !region.is_empty() =>
        {
            Some((account.to_string(), region.to_string()))
        }
        _ => None,
    }
}

impl Source {
    pub async fn connect(options: &SourceOptions) -> Result<Self, String> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(options.max_attempts.max(1)),
        );
        if let Some(r) = &options.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(p) = &options.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &options.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(
                "no AWS region: give --region, or set AWS_REGION or a profile's region".into(),
            );
        }
        let rate = NonZeroU32::new(options.max_requests_per_second)
            .ok_or("--max-requests-per-second must be at least 1")?;
        Ok(Self {
            client: Client::new(&config),
            limiter: governor::RateLimiter::direct(
                governor::Quota::per_second(rate).allow_burst(NonZeroU32::MIN),
            ),
        })
    }

    async fn pace(&self) {
        self.limiter.until_ready().await;
    }

    /// The next page of an SDK paginator (`page`: its `next()`), requested once the rate limit allows: the page's
    /// request goes out only when that future is first polled, after the permit.
    async fn next_page<T>(&self, page: impl std::future::Future<Output = Option<T>>) -> Option<T> {
        self.pace().await;
        page.await
    }

    /// The ids to import: the given ones, or with `all` every organization ListOrganizations shows.
    async fn organization_ids(&self, selection: &Selection) -> Result<Vec<String>, String> {
        let mut ids = selection.organization_ids.clone();
        if selection.all {
            let mut pages = self.client.list_organizations().into_paginator().send();
            while let Some(page) = self.next_page(pages.next()).await {
                let page = page.map_err(|e| sdk_error("ListOrganizations", e))?;
                for o in page.organization_summaries() {
                    if let Some(id) = o.organization_id()
                        && !ids.iter().any(|x| x == id)
                    {
                        ids.push(id.to_string());
                    }
                }
            }
        }
        Ok(ids)
    }

    /// The organization, and its mail domains when it is Active and the source shows them.
    async fn organization(
        &self,
        id: &str,
        notes: &mut Vec<String>,
    ) -> Result<(Organization, Option<Vec<MailDomain>>), String> {
        self.pace().await;
        let o = self
            .client
            .describe_organization()
            .organization_id(id)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("DescribeOrganization {id}"), e))?;
        let (account, region) = match o.arn().and_then(arn_partition) {
            Some(p) => p,
            None => {
                return Err(format!(
                    "DescribeOrganization {id}: no organization ARN to take its account and region from ({:?})",
                    o.arn()
                ));
            }
        };
        let state = o.state().unwrap_or(org_state::ACTIVE).to_string();
        let default_mail_domain = o
            .default_mail_domain()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let completed_ms = o.completed_date().map(millis);
        let org = Organization {
            id: o.organization_id().unwrap_or(id).to_string(),
            account,
            region,
            alias: o.alias().unwrap_or_default().to_string(),
            state,
            directory_id: o.directory_id().unwrap_or_default().to_string(),
            directory_type: o.directory_type().unwrap_or_default().to_string(),
            default_mail_domain,
            // The domains given at creation are not shown: the registered ones are the mail domains below.
            domains: Vec::new(),
            kms_key_arn: None,
            interoperability_enabled: o.interoperability_enabled(),
            // The API does not show when an organization was created: its completion is the closest.
            created_ms: completed_ms.unwrap_or_else(crate::clock::Clock::real_now_ms),
            completed_ms,
        };
        let domains = match org.state.as_str() {
            org_state::ACTIVE => self.mail_domains(&org, notes).await?,
            // A Deleted organization's domains are free again.
            _ => Some(Vec::new()),
        };
        Ok((org, domains))
    }

    /// The registered mail domains in list order (ListMailDomains), each as GetMailDomain describes it: test
    /// domain or not, verification state (FAILED is kept as PENDING, with a note), DNS values. `None`, with a
    /// note, from a source that does not answer ListMailDomains: then the default domain alone is copied.
    async fn mail_domains(
        &self,
        org: &Organization,
        notes: &mut Vec<String>,
    ) -> Result<Option<Vec<MailDomain>>, String> {
        let mut names: Vec<String> = Vec::new();
        let mut pages = self
            .client
            .list_mail_domains()
            .organization_id(&org.id)
            .into_paginator()
            .send();
        while let Some(page) = self.next_page(pages.next()).await {
            let page = match page {
                Ok(p) => p,
                Err(SdkError::ServiceError(e)) if !is_throttling(e.err().code()) => {
                    notes.push(format!(
                        "mail domains not read (ListMailDomains: {}): only the default domain is copied",
                        e.err().code().unwrap_or("error")
                    ));
                    return Ok(None);
                }
                Err(e) => return Err(sdk_error("ListMailDomains", e)),
            };
            for d in page.mail_domains() {
                if let Some(name) = d.domain_name() {
                    let name = name.to_ascii_lowercase();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (index, name) in names.into_iter().enumerate() {
            self.pace().await;
            let d = self
                .client
                .get_mail_domain()
                .organization_id(&org.id)
                .domain_name(&name)
                .send()
                .await
                .map_err(|e| sdk_error(&format!("GetMailDomain {name}"), e))?;
            let status = |s: Option<&aws_sdk_workmail::types::DnsRecordVerificationStatus>| {
                s.map_or("PENDING", |s| s.as_str()).to_string()
            };
            let (ownership, dkim) = (
                status(d.ownership_verification_status()),
                status(d.dkim_verification_status()),
            );
            if ownership == "FAILED" || dkim == "FAILED" {
                notes.push(format!(
                    "mail domain {name} failed verification at the source: imported PENDING (publish its records, \
                     then `workmail-pat domain verify`)"
                ));
            }
            let mut row = MailDomain {
                org_id: org.id.clone(),
                account: org.account.clone(),
                region: org.region.clone(),
                domain: name,
                is_test_domain: d.is_test_domain(),
                ownership: Verification::parse(&ownership),
                dkim: Verification::parse(&dkim),
                ownership_token: String::new(),
                dkim_tokens: Vec::new(),
                // Registration times are not shown: the list order is kept from the organization's time.
                created_ms: org.created_ms + index as Millis,
            };
            row.keep_records(
                d.records()
                    .iter()
                    .filter_map(|r| Some((r.r#type()?, r.hostname()?, r.value()?))),
            );
            out.push(row);
        }
        Ok(Some(out))
    }

    /// A user's aliases in list order (ListAliases).
    async fn aliases(&self, org: &Organization, user_id: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_aliases()
            .organization_id(&org.id)
            .entity_id(user_id)
            .into_paginator()
            .send();
        while let Some(page) = self.next_page(pages.next()).await {
            let page = page.map_err(|e| sdk_error(&format!("ListAliases {user_id}"), e))?;
            out.extend(page.aliases().iter().cloned());
        }
        Ok(out)
    }

    async fn configuration(
        &self,
        id: &str,
    ) -> Result<Option<IdentityProviderConfiguration>, String> {
        self.pace().await;
        let c = match self
            .client
            .describe_identity_provider_configuration()
            .organization_id(id)
            .send()
            .await
        {
            Ok(c) => c,
            Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => {
                return Ok(None);
            }
            Err(e) => return Err(sdk_error("DescribeIdentityProviderConfiguration", e)),
        };
        let Some(pat) = c.personal_access_token_configuration() else {
            return Ok(None);
        };
        let pat_status = PatStatus::parse(pat.status().as_str()).unwrap_or(PatStatus::Inactive);
        Ok(Some(IdentityProviderConfiguration {
            authentication_mode: c
                .authentication_mode()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            instance_arn: c
                .identity_center_configuration()
                .map(|i| i.instance_arn().to_string())
                .unwrap_or_default(),
            application_arn: c
                .identity_center_configuration()
                .map(|i| i.application_arn().to_string())
                .unwrap_or_default(),
            pat_status,
            // WorkMail's default when none is given.
            pat_lifetime_days: pat.lifetime_in_days().map_or(365, i64::from),
        }))
    }

    async fn user(&self, org: &Organization, id: &str, created_ms: Millis) -> Result<User, String> {
        self.pace().await;
        let u = self
            .client
            .describe_user()
            .organization_id(&org.id)
            .user_id(id)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("DescribeUser {id}"), e))?;
        let s = |v: Option<&str>| v.map(str::to_string);
        Ok(User {
            id: u.user_id().unwrap_or(id).to_string(),
            org_id: org.id.clone(),
            name: u.name().unwrap_or_default().to_string(),
            email: s(u.email()),
            state: u
                .state()
                .and_then(|x| UserState::parse(x.as_str()))
                .unwrap_or(UserState::Disabled),
            role: u
                .user_role()
                .map_or("USER".to_string(), |r| r.as_str().to_string()),
            profile: UserProfile {
                display_name: u.display_name().unwrap_or_default().to_string(),
                first_name: s(u.first_name()),
                last_name: s(u.last_name()),
                initials: s(u.initials()),
                telephone: s(u.telephone()),
                street: s(u.street()),
                job_title: s(u.job_title()),
                city: s(u.city()),
                company: s(u.company()),
                zip_code: s(u.zip_code()),
                department: s(u.department()),
                country: s(u.country()),
                office: s(u.office()),
                hidden_from_global_address_list: u.hidden_from_global_address_list(),
            },
            identity_provider_user_id: s(u.identity_provider_user_id()),
            enabled_ms: u.enabled_date().map(millis),
            disabled_ms: u.disabled_date().map(millis),
            mailbox_provisioned_ms: u.mailbox_provisioned_date().map(millis),
            mailbox_deprovisioned_ms: u.mailbox_deprovisioned_date().map(millis),
            created_ms,
            password_hash: None,
        })
    }

    /// Every token of the organization (ListPersonalAccessTokens' summaries carry every member of
    /// GetPersonalAccessTokenMetadata; a summary lacking one is completed by that call).
    async fn tokens(&self, org: &Organization) -> Result<Vec<PersonalAccessToken>, String> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_personal_access_tokens()
            .organization_id(&org.id)
            .into_paginator()
            .send();
        while let Some(page) = self.next_page(pages.next()).await {
            let page = page.map_err(|e| sdk_error("ListPersonalAccessTokens", e))?;
            for t in page.personal_access_token_summaries() {
                let id = t.personal_access_token_id().unwrap_or_default().to_string();
                let (Some(user_id), Some(name), Some(created), Some(expires)) =
                    (t.user_id(), t.name(), t.date_created(), t.expires_time())
                else {
                    out.push(self.token_metadata(org, &id).await?);
                    continue;
                };
                out.push(PersonalAccessToken {
                    id,
                    org_id: org.id.clone(),
                    user_id: user_id.to_string(),
                    name: name.to_string(),
                    scopes: t.scopes().to_vec(),
                    created_ms: millis(created),
                    last_used_ms: t.date_last_used().map(millis),
                    expires_ms: millis(expires),
                });
            }
        }
        Ok(out)
    }

    async fn token_metadata(
        &self,
        org: &Organization,
        id: &str,
    ) -> Result<PersonalAccessToken, String> {
        self.pace().await;
        let t = self
            .client
            .get_personal_access_token_metadata()
            .organization_id(&org.id)
            .personal_access_token_id(id)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("GetPersonalAccessTokenMetadata {id}"), e))?;
        Ok(PersonalAccessToken {
            id: id.to_string(),
            org_id: org.id.clone(),
            user_id: t.user_id().unwrap_or_default().to_string(),
            name: t.name().unwrap_or_default().to_string(),
            scopes: t.scopes().to_vec(),
            created_ms: t.date_created().map_or(0, millis),
            last_used_ms: t.date_last_used().map(millis),
            expires_ms: t.expires_time().map_or(0, millis),
        })
    }

    /// Imports the selected organizations into `target`, one after the other.
    pub async fn import(
        &self,
        selection: &Selection,
        target: &Target<'_>,
        progress: &dyn Progress,
    ) -> Result<Report, String> {
        let mut report = Report {
            dry_run: target.dry_run,
            ..Report::default()
        };
        let ids = self.organization_ids(selection).await?;
        let mut partitions = HashSet::new();
        let mut seen = HashSet::new();
        for id in ids {
            let mut org_report = OrgReport::default();
            let (org, domains) = self.organization(&id, &mut org_report.notes).await?;
            progress.organization(&org);
            partitions.insert(crate::domain::Partition {
                account: org.account.clone(),
                region: org.region.clone(),
            });
            seen.insert(org.id.clone());
            self.import_organization(org, domains, target, &mut org_report, progress)
                .await?;
            progress.finished(&org_report);
            report.organizations.push(org_report);
        }
        if selection.all {
            organizations_gone(target, &partitions, &seen, &mut report).await?;
        }
        report.finish();
        Ok(report)
    }

    async fn import_organization(
        &self,
        org: Organization,
        domains: Option<Vec<MailDomain>>,
        target: &Target<'_>,
        report: &mut OrgReport,
        progress: &dyn Progress,
    ) -> Result<(), String> {
        let active = org.is_active();
        let Some(mut import) = target.organization(org, domains, report).await? else {
            return Ok(());
        };
        if !active {
            // A Deleted (or Deleting) organization answers nothing but DescribeOrganization.
            return Ok(());
        }
        let org = import.org.clone();
        if let Some(c) = self.configuration(&org.id).await? {
            import.configuration(&c, report).await?;
        }
        let mut pages = self
            .client
            .list_users()
            .organization_id(&org.id)
            // Users are written a page at a time: a smaller page loses less to an interruption.
            .max_results(USERS_PER_PAGE)
            .into_paginator()
            .send();
        let mut index: Millis = 0;
        while let Some(page) = self.next_page(pages.next()).await {
            let page = page.map_err(|e| sdk_error("ListUsers", e))?;
            let mut users = Vec::new();
            for summary in page.users() {
                let Some(id) = summary.id() else { continue };
                index += 1;
                users.push(self.user(&org, id, org.created_ms + index).await?);
            }
            let mut aliases = Vec::new();
            for u in users.iter().filter(|u| u.state == UserState::Enabled) {
                let list = self.aliases(&org, &u.id).await?;
                if !list.is_empty() {
                    aliases.push((u.id.clone(), list));
                }
            }
            import.users(users, report).await?;
            import.aliases(aliases, report).await?;
            progress.users(index as u64);
        }
        let tokens = self.tokens(&org).await?;
        import.tokens_to_recreate(&tokens, report);
        import.finish(report).await
    }
}

fn is_throttling(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("ThrottlingException" | "TooManyRequestsException" | "LimitExceededException")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_come_from_organization_arns() {
        assert_eq!(
            arn_partition("arn:aws:workmail:eu-west-1:111122223333:organization/m-abc"),
            Some(("111122223333".into(), "eu-west-1".into()))
        );
        assert_eq!(arn_partition("arn:aws:s3:::bucket"), None);
        assert_eq!(
            millis(&DateTime::from_fractional_secs(1_522_693_605, 0.468)),
            1_522_693_605_468
        );
    }
}
