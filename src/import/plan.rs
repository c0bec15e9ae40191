//! The plan half of an import: pure decisions, from what the source holds and what the target already holds, of
//! what to do with one entity. Nothing here reads or writes a store.
//!
//! The rule is the same for every kind of entity: absent from the target, it is created with the source's id; present
//! with the same content, it is left alone; present with other content, it is updated when the target still holds
//! what an import last wrote of it (its fingerprint matches the import record: the change was made at the source),
//! and otherwise (edited in the target since, or never imported) it is a conflict, reported and skipped, never
//! overwritten. Another entity holding its alias, name or email is a conflict too.

use crate::clock::Millis;
use crate::domain::{
    IdentityProviderConfiguration, Organization, PersonalAccessToken, User, UserState,
};
use crate::mail::{EmailAddress, MailDomain};

/// What to do with one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Absent from the target: create it, keeping its id.
    Create,
    /// Already in the target with the same content.
    Unchanged,
    /// Changed at the source since it was imported, while the target still holds what was imported: these fields
    /// take the source's values.
    Update(Vec<&'static str>),
    /// In the way of something else, or present with other content: skipped, with the reason.
    Conflict(String),
}

/// A fingerprint of an entity's compared content (the values of one of the `*_content` functions below): what an
/// import record keeps, so that a later run sees whether the target still holds what was imported.
pub fn fingerprint(content: &serde_json::Value) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(content.to_string().as_bytes()))
}

/// What [`organization_differences`] compares.
pub fn organization_content(o: &Organization) -> serde_json::Value {
    serde_json::json!([
        o.account,
        o.region,
        o.alias,
        o.state,
        o.directory_id,
        o.directory_type,
        o.domains,
        o.completed_ms,
        o.interoperability_enabled,
        o.kms_key_arn,
    ])
}

/// What [`user_differences`] compares.
pub fn user_content(u: &User) -> serde_json::Value {
    let p = &u.profile;
    serde_json::json!([
        u.org_id,
        u.name,
        u.email,
        u.state.as_str(),
        u.role,
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
        u.identity_provider_user_id,
        u.enabled_ms,
        u.disabled_ms,
        u.mailbox_provisioned_ms,
        u.mailbox_deprovisioned_ms,
    ])
}

/// A PAT configuration, every field.
pub fn configuration_content(c: &IdentityProviderConfiguration) -> serde_json::Value {
    serde_json::json!([
        c.authentication_mode,
        c.instance_arn,
        c.application_arn,
        c.pat_status.as_str(),
        c.pat_lifetime_days,
    ])
}

/// A mail domain as the target holds it (its DNS values included).
pub fn mail_domain_content(d: &MailDomain) -> serde_json::Value {
    serde_json::json!([
        d.is_test_domain,
        d.ownership.as_str(),
        d.dkim.as_str(),
        d.ownership_token,
        d.dkim_tokens,
    ])
}

/// An entity present in the target with the fields `diff` differing from the source: unchanged without any; an
/// update when the target's fingerprint is the one the last import recorded; a conflict otherwise.
fn present(
    diff: Vec<&'static str>,
    target_fingerprint: impl FnOnce() -> String,
    recorded: Option<&str>,
    what: impl FnOnce() -> String,
) -> Action {
    if diff.is_empty() {
        return Action::Unchanged;
    }
    let why = match recorded {
        Some(r) if r == target_fingerprint() => return Action::Update(diff),
        Some(_) => "changed in the target since it was imported",
        None => "not written by an import",
    };
    Action::Conflict(format!(
        "{} exists in the target with another {} ({why})",
        what(),
        diff.join(", ")
    ))
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

const ARN: &str = "ARN (account, region)";

/// Names of the fields in which two organizations differ (the creation time is not compared: it is not part of
/// the API and an import chooses it; nor the default mail domain, a step of its own, [`default_domain`]).
pub fn organization_differences(source: &Organization, target: &Organization) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |same: bool, name: &'static str| {
        if !same {
            out.push(name);
        }
    };
    check(
        source.account == target.account && source.region == target.region,
        ARN,
    );
    check(source.alias == target.alias, "Alias");
    check(source.state == target.state, "State");
    check(source.directory_id == target.directory_id, "DirectoryId");
    check(
        source.directory_type == target.directory_type,
        "DirectoryType",
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

/// The organization: by id (`recorded`: the fingerprint its last import recorded); a new one must not take a live
/// alias or directory of its partition. Its partition is never updated: its ARN would change.
pub fn organization(
    source: &Organization,
    by_id: Option<&Organization>,
    alias_holder: Option<&Organization>,
    recorded: Option<&str>,
) -> Action {
    if let Some(target) = by_id {
        let diff = organization_differences(source, target);
        let recorded = recorded.filter(|_| !diff.contains(&ARN));
        return present(
            diff,
            || fingerprint(&organization_content(target)),
            recorded,
            || format!("organization {}", source.id),
        );
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

/// A user: by id (`recorded`: the fingerprint her last import recorded); a new live user must not take the name or
/// email of another live user of the organization.
pub fn user(
    source: &User,
    by_id: Option<&User>,
    name_holder: Option<&User>,
    email_holder: Option<&User>,
    recorded: Option<&str>,
) -> Action {
    if let Some(target) = by_id {
        return present(
            user_differences(source, target),
            || fingerprint(&user_content(target)),
            recorded,
            || format!("user {}", source.id),
        );
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

/// The identity-provider (PAT) configuration of an organization (`recorded`: as for [`user`]).
pub fn configuration(
    source: &IdentityProviderConfiguration,
    target: Option<&IdentityProviderConfiguration>,
    recorded: Option<&str>,
) -> Action {
    let Some(t) = target else {
        return Action::Create;
    };
    let mut diff = Vec::new();
    if t.authentication_mode != source.authentication_mode
        || t.instance_arn != source.instance_arn
        || t.application_arn != source.application_arn
    {
        diff.push("AuthenticationMode");
    }
    if t.pat_status != source.pat_status {
        diff.push("PersonalAccessTokenConfiguration.Status");
    }
    if t.pat_lifetime_days != source.pat_lifetime_days {
        diff.push("PersonalAccessTokenConfiguration.LifetimeInDays");
    }
    present(
        diff,
        || fingerprint(&configuration_content(t)),
        recorded,
        || {
            format!(
                "the PAT configuration (target: {} for {} days; source: {} for {} days)",
                t.pat_status.as_str(),
                t.pat_lifetime_days,
                source.pat_status.as_str(),
                source.pat_lifetime_days
            )
        },
    )
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

/// A mail domain of the organization: by name (`recorded`: as for [`user`]); a new one must not be registered to
/// another organization of the partition. Its DNS values are compared when the source shows them (a test domain has
/// none).
pub fn mail_domain(
    source: &MailDomain,
    target: Option<&MailDomain>,
    holder: Option<&MailDomain>,
    recorded: Option<&str>,
) -> Action {
    if let Some(t) = target {
        let mut diff = Vec::new();
        if source.is_test_domain != t.is_test_domain {
            diff.push("IsTestDomain");
        }
        if source.ownership != t.ownership {
            diff.push("OwnershipVerificationStatus");
        }
        if source.dkim != t.dkim {
            diff.push("DkimVerificationStatus");
        }
        let records_known = !source.ownership_token.is_empty() || !source.dkim_tokens.is_empty();
        if records_known
            && (source.ownership_token != t.ownership_token || source.dkim_tokens != t.dkim_tokens)
        {
            diff.push("Records");
        }
        return present(
            diff,
            || fingerprint(&mail_domain_content(t)),
            recorded,
            || format!("mail domain {}", source.domain),
        );
    }
    match holder {
        Some(other) => Action::Conflict(format!(
            "mail domain {} is registered in the target to organization {}",
            source.domain, other.org_id
        )),
        None => Action::Create,
    }
}

/// The organization's default mail domain: the target's must be the source's (never changed by an import).
pub fn default_domain(source: &str, target: &str) -> Action {
    if source.eq_ignore_ascii_case(target) {
        Action::Unchanged
    } else {
        Action::Conflict(format!(
            "the default mail domain is {target} in the target, {source} at the source"
        ))
    }
}

/// An alias of a user: absent from the organization, it is created; held by the same user as an alias, unchanged;
/// held by anyone else (or as the user's primary address), a conflict.
pub fn alias(user_id: &str, address: &str, holder: Option<&EmailAddress>) -> Action {
    match holder {
        None => Action::Create,
        Some(h) if h.entity_id == user_id && !h.is_primary => Action::Unchanged,
        Some(h) if h.entity_id == user_id => Action::Conflict(format!(
            "{address} is the primary address of user {user_id} in the target"
        )),
        Some(h) => Action::Conflict(format!(
            "{address} is held in the target by entity {}",
            h.entity_id
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
        assert_eq!(
            organization(&org(), Some(&target), None, None),
            Action::Unchanged
        );
        target.state = org_state::DELETED.into();
        let Action::Conflict(why) = organization(&org(), Some(&target), None, None) else {
            panic!("a different state must conflict");
        };
        assert!(why.contains("State"), "{why}");
    }

    #[test]
    fn a_live_alias_held_by_another_organization_conflicts() {
        let mut other = org();
        other.id = "m-00000000000000000000000000000002".into();
        assert!(matches!(
            organization(&org(), None, Some(&other), None),
            Action::Conflict(_)
        ));
        assert_eq!(organization(&org(), None, None, None), Action::Create);
    }

    #[test]
    fn users_compare_every_field_but_creation_and_password() {
        let source = user_named("u1", "alice");
        let mut target = source.clone();
        target.created_ms = 1234;
        target.password_hash = Some("$argon2id$".into());
        assert_eq!(
            user(&source, Some(&target), None, None, None),
            Action::Unchanged
        );
        target.profile.job_title = Some("CTO".into());
        let Action::Conflict(why) = user(&source, Some(&target), None, None, None) else {
            panic!("a different job title must conflict");
        };
        assert!(why.contains("JobTitle"), "{why}");
        let holder = user_named("u2", "alice");
        assert!(matches!(
            user(&source, None, Some(&holder), None, None),
            Action::Conflict(_)
        ));
        let mut deleted = source.clone();
        deleted.state = UserState::Deleted;
        assert_eq!(
            user(&deleted, None, Some(&holder), None, None),
            Action::Create
        );
    }

    #[test]
    fn domains_aliases_and_the_default_domain() {
        let o = org();
        let mut source = MailDomain::new(&o, "example.com", false, false, 1);
        let target = source.clone();
        assert_eq!(
            mail_domain(&source, Some(&target), None, None),
            Action::Unchanged
        );
        assert_eq!(mail_domain(&source, None, None, None), Action::Create);
        let mut other = target.clone();
        other.org_id = "m-2".into();
        assert!(matches!(
            mail_domain(&source, None, Some(&other), None),
            Action::Conflict(_)
        ));
        source.ownership = crate::mail::Verification::Verified;
        let Action::Conflict(why) = mail_domain(&source, Some(&target), None, None) else {
            panic!("another verification state must conflict");
        };
        assert!(why.contains("OwnershipVerificationStatus"), "{why}");
        let mut unknown_records = target.clone();
        unknown_records.ownership_token.clear();
        unknown_records.dkim_tokens.clear();
        assert_eq!(
            mail_domain(&unknown_records, Some(&target), None, None),
            Action::Unchanged
        );
        assert_eq!(
            default_domain("Example.com", "example.com"),
            Action::Unchanged
        );
        assert!(matches!(
            default_domain("a.com", "b.com"),
            Action::Conflict(_)
        ));
        let held = EmailAddress {
            org_id: o.id.clone(),
            entity_id: "u1".into(),
            address: "a@example.com".into(),
            is_primary: false,
            created_ms: 1,
        };
        assert_eq!(alias("u1", "a@example.com", None), Action::Create);
        assert_eq!(alias("u1", "a@example.com", Some(&held)), Action::Unchanged);
        assert!(matches!(
            alias("u2", "a@example.com", Some(&held)),
            Action::Conflict(_)
        ));
        let primary = EmailAddress {
            is_primary: true,
            ..held
        };
        assert!(matches!(
            alias("u1", "a@example.com", Some(&primary)),
            Action::Conflict(_)
        ));
    }

    #[test]
    fn a_difference_is_an_update_only_while_the_target_holds_what_was_imported() {
        let imported = user_named("u1", "alice");
        let record = fingerprint(&user_content(&imported));
        let mut source = imported.clone();
        source.profile.display_name = "Alice A.".into();
        source.state = UserState::Disabled;
        assert_eq!(
            user(&source, Some(&imported), None, None, Some(&record)),
            Action::Update(vec!["State", "DisplayName"])
        );
        // Edited in the target since: a conflict, whatever the source did.
        let mut edited = imported.clone();
        edited.profile.job_title = Some("CTO".into());
        let Action::Conflict(why) = user(&source, Some(&edited), None, None, Some(&record)) else {
            panic!("a local edit must conflict");
        };
        assert!(why.contains("changed in the target"), "{why}");
        // Never imported (no record): a conflict.
        let Action::Conflict(why) = user(&source, Some(&imported), None, None, None) else {
            panic!("an entity not written by an import must conflict");
        };
        assert!(why.contains("not written by an import"), "{why}");
        // The same content as the source: unchanged, whatever the record says.
        assert_eq!(
            user(&source, Some(&source), None, None, Some("stale")),
            Action::Unchanged
        );
        // An organization's partition is never updated.
        let o = org();
        let mut moved = o.clone();
        moved.region = "eu-west-1".into();
        let rec = fingerprint(&organization_content(&o));
        assert!(matches!(
            organization(&moved, Some(&o), None, Some(&rec)),
            Action::Conflict(_)
        ));
        let mut renamed = o.clone();
        renamed.alias = "acme2".into();
        assert_eq!(
            organization(&renamed, Some(&o), None, Some(&rec)),
            Action::Update(vec!["Alias"])
        );
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
        assert_eq!(configuration(&c, None, None), Action::Create);
        assert_eq!(configuration(&c, Some(&c), None), Action::Unchanged);
        let mut other = c.clone();
        other.pat_lifetime_days = 31;
        assert!(matches!(
            configuration(&c, Some(&other), None),
            Action::Conflict(_)
        ));
        assert_eq!(creation_time(100, "b", None), 100);
        assert_eq!(creation_time(100, "b", Some((50, "z"))), 100);
        assert_eq!(creation_time(100, "b", Some((100, "a"))), 100);
        assert_eq!(creation_time(100, "b", Some((100, "c"))), 101);
        assert_eq!(creation_time(100, "b", Some((300, "a"))), 301);
    }
}
