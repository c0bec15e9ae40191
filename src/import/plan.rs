//! The plan half of an import: pure decisions, from what the source holds and what the target already holds, of
//! what to do with one entity. Nothing here reads or writes a store.
//!
//! The rule is the same for every kind of entity: absent from the target, it is created with the source's id; present
//! with the same content, it is left alone; present with other content (or another entity holding its alias, name or
//! email), it is a conflict, reported and skipped, never overwritten.

use crate::clock::Millis;
use crate::domain::{
    IdentityProviderConfiguration, Organization, PersonalAccessToken, User, UserState,
};

/// What to do with one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Absent from the target: create it, keeping its id.
    Create,
    /// Already in the target with the same content.
    Unchanged,
    /// In the way of something else, or present with other content: skipped, with the reason.
    Conflict(String),
}

/// The creation time given to an entity created by an import. Lists are ordered by (creation time, id) and the
/// source's creation times are not all part of the WorkMail API, so an imported entity gets `preferred` (the
/// source's time when it is known) unless that would sort it before `last`, the (creation time, id) of an entity
/// already imported ahead of it: then the next millisecond. Entities are imported in the source's list order, so
/// the target lists them in the same order.
pub fn creation_time(preferred: Millis, id: &str, last: Option<(Millis, &str)>) -> Millis {
    match last {
        Some((ms, last_id)) if (preferred, id) <= (ms, last_id) => ms + 1,
        _ => preferred,
    }
}

/// Names of the fields in which two organizations differ (the creation time is not compared: it is not part of
/// the API and an import chooses it).
pub fn organization_differences(source: &Organization, target: &Organization) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |same: bool, name: &'static str| {
        if !same {
            out.push(name);
        }
    };
    check(
        source.account == target.account && source.region == target.region,
        "ARN (account, region)",
    );
    check(source.alias == target.alias, "Alias");
    check(source.state == target.state, "State");
    check(source.directory_id == target.directory_id, "DirectoryId");
    check(
        source.directory_type == target.directory_type,
        "DirectoryType",
    );
    check(
        source.default_mail_domain == target.default_mail_domain,
        "DefaultMailDomain",
    );
    check(source.domains == target.domains, "mail domains");
    check(source.completed_ms == target.completed_ms, "CompletedDate");
    check(
        source.interoperability_enabled == target.interoperability_enabled,
        "InteroperabilityEnabled",
    );
    check(source.kms_key_arn == target.kms_key_arn, "KmsKeyArn");
    out
}

/// The organization: by id; a new one must not take a live alias or directory of its partition.
pub fn organization(
    source: &Organization,
    by_id: Option<&Organization>,
    alias_holder: Option<&Organization>,
) -> Action {
    if let Some(target) = by_id {
        let diff = organization_differences(source, target);
        return if diff.is_empty() {
            Action::Unchanged
        } else {
            Action::Conflict(format!(
                "organization {} exists in the target with another {}",
                source.id,
                diff.join(", ")
            ))
        };
    }
    match alias_holder {
        Some(other) if source.state != crate::domain::org_state::DELETED => {
            Action::Conflict(format!(
                "alias {:?} is held in the target by organization {}",
                source.alias, other.id
            ))
        }
        _ => Action::Create,
    }
}

/// Names of the fields in which two users differ (not the creation time, which the API does not show, nor the
/// password, which never leaves the source).
pub fn user_differences(source: &User, target: &User) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |same: bool, name: &'static str| {
        if !same {
            out.push(name);
        }
    };
    let (s, t) = (&source.profile, &target.profile);
    check(source.org_id == target.org_id, "organization");
    check(source.name == target.name, "Name");
    check(source.email == target.email, "Email");
    check(source.state == target.state, "State");
    check(source.role == target.role, "UserRole");
    check(s.display_name == t.display_name, "DisplayName");
    check(s.first_name == t.first_name, "FirstName");
    check(s.last_name == t.last_name, "LastName");
    check(s.initials == t.initials, "Initials");
    check(s.telephone == t.telephone, "Telephone");
    check(s.street == t.street, "Street");
    check(s.job_title == t.job_title, "JobTitle");
    check(s.city == t.city, "City");
    check(s.company == t.company, "Company");
    check(s.zip_code == t.zip_code, "ZipCode");
    check(s.department == t.department, "Department");
    check(s.country == t.country, "Country");
    check(s.office == t.office, "Office");
    check(
        s.hidden_from_global_address_list == t.hidden_from_global_address_list,
        "HiddenFromGlobalAddressList",
    );
    check(
        source.identity_provider_user_id == target.identity_provider_user_id,
        "IdentityProviderUserId",
    );
    check(source.enabled_ms == target.enabled_ms, "EnabledDate");
    check(source.disabled_ms == target.disabled_ms, "DisabledDate");
    check(
        source.mailbox_provisioned_ms == target.mailbox_provisioned_ms,
        "MailboxProvisionedDate",
    );
    check(
        source.mailbox_deprovisioned_ms == target.mailbox_deprovisioned_ms,
        "MailboxDeprovisionedDate",
    );
    out
}

/// A user: by id; a new live user must not take the name or email of another live user of the organization.
pub fn user(
    source: &User,
    by_id: Option<&User>,
    name_holder: Option<&User>,
    email_holder: Option<&User>,
) -> Action {
    if let Some(target) = by_id {
        let diff = user_differences(source, target);
        return if diff.is_empty() {
            Action::Unchanged
        } else {
            Action::Conflict(format!(
                "user {} exists in the target with another {}",
                source.id,
                diff.join(", ")
            ))
        };
    }
    if source.state == UserState::Deleted {
        return Action::Create;
    }
    if let Some(other) = name_holder {
        return Action::Conflict(format!(
            "name {:?} is held in the target by user {}",
            source.name, other.id
        ));
    }
    if let Some(other) = email_holder {
        return Action::Conflict(format!(
            "email {:?} is held in the target by user {}",
            source.email.as_deref().unwrap_or_default(),
            other.id
        ));
    }
    Action::Create
}

/// The identity-provider (PAT) configuration of an organization.
pub fn configuration(
    source: &IdentityProviderConfiguration,
    target: Option<&IdentityProviderConfiguration>,
) -> Action {
    match target {
        None => Action::Create,
        Some(t) if t == source => Action::Unchanged,
        Some(t) => Action::Conflict(format!(
            "the target's PAT configuration differs (target: {} for {} days; source: {} for {} days)",
            t.pat_status.as_str(),
            t.pat_lifetime_days,
            source.pat_status.as_str(),
            source.pat_lifetime_days
        )),
    }
}

/// A token's metadata (restoring a dump; an import from WorkMail never writes tokens).
pub fn token(source: &PersonalAccessToken, target: Option<&PersonalAccessToken>) -> Action {
    match target {
        None => Action::Create,
        Some(t) if t == source => Action::Unchanged,
        Some(_) => Action::Conflict(format!(
            "token {} exists in the target with other metadata",
            source.id
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PatStatus, UserProfile, org_state};

    fn org() -> Organization {
        Organization {
            id: "m-00000000000000000000000000000001".into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            alias: "acme".into(),
            state: org_state::ACTIVE.into(),
            directory_id: "d-0000000001".into(),
            directory_type: "VpcDirectory".into(),
            default_mail_domain: "acme.awsapps.com".into(),
            domains: vec![],
            kms_key_arn: None,
            interoperability_enabled: false,
            created_ms: 10,
            completed_ms: Some(10),
        }
    }

    fn user_named(id: &str, name: &str) -> User {
        User {
            id: id.into(),
            org_id: org().id,
            name: name.into(),
            email: Some(format!("{name}@acme.awsapps.com")),
            state: UserState::Enabled,
            role: "USER".into(),
            profile: UserProfile::default(),
            identity_provider_user_id: None,
            enabled_ms: Some(1),
            disabled_ms: None,
            mailbox_provisioned_ms: Some(1),
            mailbox_deprovisioned_ms: None,
            created_ms: 5,
            password_hash: None,
        }
    }

    #[test]
    fn an_identical_organization_is_unchanged_whatever_its_creation_time() {
        let mut target = org();
        target.created_ms = 99;
        assert_eq!(organization(&org(), Some(&target), None), Action::Unchanged);
        target.state = org_state::DELETED.into();
        let Action::Conflict(why) = organization(&org(), Some(&target), None) else {
            panic!("a different state must conflict");
        };
        assert!(why.contains("State"), "{why}");
    }

    #[test]
    fn a_live_alias_held_by_another_organization_conflicts() {
        let mut other = org();
        other.id = "m-00000000000000000000000000000002".into();
        assert!(matches!(
            organization(&org(), None, Some(&other)),
            Action::Conflict(_)
        ));
        assert_eq!(organization(&org(), None, None), Action::Create);
    }

    #[test]
    fn users_compare_every_field_but_creation_and_password() {
        let source = user_named("u1", "alice");
        let mut target = source.clone();
        target.created_ms = 1234;
        target.password_hash = Some("$argon2id$".into());
        assert_eq!(user(&source, Some(&target), None, None), Action::Unchanged);
        target.profile.job_title = Some("CTO".into());
        let Action::Conflict(why) = user(&source, Some(&target), None, None) else {
            panic!("a different job title must conflict");
        };
        assert!(why.contains("JobTitle"), "{why}");
        let holder = user_named("u2", "alice");
        assert!(matches!(
            user(&source, None, Some(&holder), None),
            Action::Conflict(_)
        ));
        let mut deleted = source.clone();
        deleted.state = UserState::Deleted;
        assert_eq!(user(&deleted, None, Some(&holder), None), Action::Create);
    }

    #[test]
    fn configurations_and_creation_times() {
        let c = IdentityProviderConfiguration {
            authentication_mode: "IDENTITY_PROVIDER_AND_DIRECTORY".into(),
            instance_arn: "i".into(),
            application_arn: "a".into(),
            pat_status: PatStatus::Active,
            pat_lifetime_days: 30,
        };
        assert_eq!(configuration(&c, None), Action::Create);
        assert_eq!(configuration(&c, Some(&c)), Action::Unchanged);
        let mut other = c.clone();
        other.pat_lifetime_days = 31;
        assert!(matches!(
            configuration(&c, Some(&other)),
            Action::Conflict(_)
        ));
        assert_eq!(creation_time(100, "b", None), 100);
        assert_eq!(creation_time(100, "b", Some((50, "z"))), 100);
        assert_eq!(creation_time(100, "b", Some((100, "a"))), 100);
        assert_eq!(creation_time(100, "b", Some((100, "c"))), 101);
        assert_eq!(creation_time(100, "b", Some((300, "a"))), 301);
    }
}
