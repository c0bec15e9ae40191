//! The model's constraints (required, length, pattern, range, enum, password strength, reserved names), checked
//! server-side because AWS SDKs check only `required` and `min` client-side. This layer knows nothing of the AWS
//! protocol or the web page: every failure is a neutral [`ConstraintError`] naming the member and the rule, never
//! its value (some members are passwords); `ops` maps it to an AWS error, `web` to its own.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

/// Which kind of rule a value broke; each caller layer decides what error that becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A modelled constraint (required, length, pattern, range, enum).
    Invalid,
    /// A NextToken that cannot be one (its content is checked when it is opened).
    NextToken,
    /// A password that is long enough but not strong enough.
    WeakPassword,
    /// A name reserved by the service.
    Reserved,
}

/// A value that breaks a rule of the model: the member (`field`) and the rule it broke, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintError {
    pub kind: Kind,
    pub field: Cow<'static, str>,
    pub rule: Cow<'static, str>,
}

impl ConstraintError {
    fn invalid(field: &str, rule: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: Kind::Invalid,
            field: Cow::Owned(field.to_string()),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Invalid => write!(
                f,
                "Value at '{}' failed to satisfy constraint: {}",
                self.field, self.rule
            ),
            Kind::NextToken | Kind::WeakPassword | Kind::Reserved => f.write_str(&self.rule),
        }
    }
}

impl std::error::Error for ConstraintError {}

fn fail(field: &str, constraint: &str) -> ConstraintError {
    ConstraintError::invalid(field, constraint.to_string())
}

/// A required member.
pub fn required<'a, T>(value: &'a Option<T>, field: &str) -> Result<&'a T, ConstraintError> {
    value
        .as_ref()
        .ok_or_else(|| fail(field, "Member must not be null"))
}

/// Length in Unicode characters (not bytes), inclusive bounds.
pub fn length(value: &str, field: &str, min: usize, max: usize) -> Result<(), ConstraintError> {
    let n = value.chars().count();
    if n < min {
        return Err(fail(
            field,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(fail(
            field,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

fn pattern_check(field: &str, ok: bool, pattern: &str) -> Result<(), ConstraintError> {
    if ok {
        Ok(())
    } else {
        Err(fail(
            field,
            &format!("Member must satisfy regular expression pattern: {pattern}"),
        ))
    }
}

/// Matches `value` in full against `re`.
fn full_match(re: &Regex, value: &str) -> bool {
    re.find(value)
        .is_some_and(|m| m.start() == 0 && m.end() == value.len())
}

macro_rules! regex {
    ($re:literal) => {{
        static RE: OnceLock<Regex> = OnceLock::new();
        RE.get_or_init(|| Regex::new($re).expect("static regex compiles"))
    }};
}

/// An integer in `min..=max`.
pub fn range(value: i64, field: &str, min: i64, max: i64) -> Result<(), ConstraintError> {
    if value < min {
        return Err(fail(
            field,
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > max {
        return Err(fail(
            field,
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// One of the listed enum values.
pub fn one_of(value: &str, field: &str, allowed: &[&str]) -> Result<(), ConstraintError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(fail(
            field,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ))
    }
}

/// `^m-[0-9a-f]{32}$`
pub fn organization_id(value: &Option<String>) -> Result<&str, ConstraintError> {
    let v = required(value, "OrganizationId")?;
    length(v, "OrganizationId", 34, 34)?;
    let ok = v.starts_with("m-")
        && v[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    pattern_check("OrganizationId", ok, "^m-[0-9a-f]{32}$")?;
    Ok(v)
}

/// EntityIdentifier: 1..256, `[a-zA-Z0-9._%+@-]+` (a user id, username or email).
pub fn entity_identifier<'a>(
    value: &'a Option<String>,
    field: &str,
) -> Result<&'a str, ConstraintError> {
    let v = required(value, field)?;
    length(v, field, 1, 256)?;
    let ok = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._%+@-".contains(&b));
    pattern_check(field, ok, "[a-zA-Z0-9._%+@-]+")?;
    Ok(v)
}

/// WorkMailIdentifier: 12..256, no pattern.
pub fn workmail_identifier<'a>(
    value: &'a Option<String>,
    field: &str,
) -> Result<&'a str, ConstraintError> {
    let v = required(value, field)?;
    length(v, field, 12, 256)?;
    Ok(v)
}

/// UserName: 1..64, `[\w\-.]+(@[a-zA-Z0-9.\-]+\.[a-zA-Z0-9-]{2,})?` (matched in full, ASCII `\w`).
pub fn user_name(value: &Option<String>) -> Result<&str, ConstraintError> {
    let v = required(value, "Name")?;
    length(v, "Name", 1, 64)?;
    let re = regex!(r"[A-Za-z0-9_\-.]+(@[a-zA-Z0-9.\-]+\.[a-zA-Z0-9-]{2,})?");
    pattern_check(
        "Name",
        full_match(re, v),
        r"[\w\-.]+(@[a-zA-Z0-9.\-]+\.[a-zA-Z0-9-]{2,})?",
    )?;
    Ok(v)
}

/// EmailAddress: 1..254, `[a-zA-Z0-9._%+-]{1,64}@[a-zA-Z0-9.-]+\.[a-zA-Z-]{2,}`.
pub fn email(value: &Option<String>, field: &str) -> Result<String, ConstraintError> {
    let v = required(value, field)?;
    length(v, field, 1, 254)?;
    let re = regex!(r"[a-zA-Z0-9._%+-]{1,64}@[a-zA-Z0-9.-]+\.[a-zA-Z-]{2,}");
    pattern_check(
        field,
        full_match(re, v),
        r"[a-zA-Z0-9._%+-]{1,64}@[a-zA-Z0-9.-]+\.[a-zA-Z-]{2,}",
    )?;
    Ok(v.clone())
}

/// Organization alias: 1..62, `^(?!d-)([\da-zA-Z]+)([-][\da-zA-Z]+)*` (alphanumeric runs joined by single hyphens,
/// not starting with `d-`), matched in full.
pub fn alias(value: &Option<String>) -> Result<&str, ConstraintError> {
    let v = required(value, "Alias")?;
    length(v, "Alias", 1, 62)?;
    let ok = !v.starts_with("d-")
        && v.split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    pattern_check("Alias", ok, r"^(?!d-)([\da-zA-Z]+)([-][\da-zA-Z]+)*")?;
    Ok(v)
}

/// `^d-[0-9a-f]{10}$`
pub fn directory_id(v: &str) -> Result<(), ConstraintError> {
    length(v, "DirectoryId", 12, 12)?;
    let ok = v.starts_with("d-")
        && v[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    pattern_check("DirectoryId", ok, "^d-[0-9a-f]{10}$")
}

/// DomainName: 3..255, `[a-zA-Z0-9.-]+`.
pub fn domain_name(v: &str) -> Result<(), ConstraintError> {
    length(v, "Domains.member.DomainName", 3, 255)?;
    let ok = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    pattern_check("Domains.member.DomainName", ok, "[a-zA-Z0-9.-]+")
}

/// HostedZoneId: 1..32, `[^/\\]*`.
pub fn hosted_zone_id(v: &str) -> Result<(), ConstraintError> {
    length(v, "Domains.member.HostedZoneId", 1, 32)?;
    pattern_check(
        "Domains.member.HostedZoneId",
        !v.contains('/') && !v.contains('\\'),
        r"[^/\\]*",
    )
}

/// KmsKeyArn: 20..2048, a KMS key ARN.
pub fn kms_key_arn(v: &str) -> Result<(), ConstraintError> {
    length(v, "KmsKeyArn", 20, 2048)?;
    let re = regex!(
        r"arn:aws[a-zA-Z-]*:kms:[a-z0-9-]*:[a-z0-9-]+:[A-Za-z0-9][A-Za-z0-9:_/+=,@.-]{0,2048}"
    );
    pattern_check(
        "KmsKeyArn",
        full_match(re, v),
        "arn:aws[a-zA-Z-]*:kms:[a-z0-9-]*:[a-z0-9-]+:[A-Za-z0-9][A-Za-z0-9:_/+=,@.-]{0,2048}",
    )
}

/// IdempotencyClientToken: 1..128, `[\x21-\x7e]+`.
pub fn client_token(value: &Option<String>) -> Result<Option<&str>, ConstraintError> {
    let Some(v) = value else { return Ok(None) };
    length(v, "ClientToken", 1, 128)?;
    let ok = v.bytes().all(|b| (0x21..=0x7e).contains(&b));
    pattern_check("ClientToken", ok, r"[\x21-\x7e]+")?;
    Ok(Some(v))
}

/// NextToken: 1..1024 (content is checked when the token is opened).
pub fn next_token(value: &Option<String>) -> Result<Option<&str>, ConstraintError> {
    let Some(v) = value else { return Ok(None) };
    // Out-of-range lengths get the same message as every other bad token (spec D4): no oracle.
    if v.is_empty() || v.chars().count() > 1024 {
        return Err(ConstraintError {
            kind: Kind::NextToken,
            field: Cow::Borrowed("NextToken"),
            rule: Cow::Borrowed(crate::pagination::INVALID_TOKEN_MESSAGE),
        });
    }
    Ok(Some(v))
}

/// MaxResults: 1..100, default 100.
pub fn max_results(value: Option<i64>) -> Result<usize, ConstraintError> {
    let v = value.unwrap_or(crate::pagination::DEFAULT_PAGE_SIZE);
    range(v, "MaxResults", 1, crate::pagination::MAX_PAGE_SIZE)?;
    Ok(v as usize)
}

/// PersonalAccessTokenId: 1..64, `[a-zA-Z0-9_-]+`.
pub fn personal_access_token_id(value: &Option<String>) -> Result<&str, ConstraintError> {
    let v = required(value, "PersonalAccessTokenId")?;
    length(v, "PersonalAccessTokenId", 1, 64)?;
    let ok = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    pattern_check("PersonalAccessTokenId", ok, "[a-zA-Z0-9_-]+")?;
    Ok(v)
}

/// Password: 0..256, `[\u0020-\u00FF]+`.
pub fn password(v: &str, field: &str) -> Result<(), ConstraintError> {
    length(v, field, 0, 256)?;
    let ok = v.chars().all(|c| ('\u{20}'..='\u{ff}').contains(&c));
    pattern_check(field, ok, r"[\u0020-\u00FF]+")
}

/// A free-text user attribute: 0..256 characters.
pub fn text_256(value: &Option<String>, field: &str) -> Result<(), ConstraintError> {
    if let Some(v) = value {
        user_attribute(v, field)?;
    }
    Ok(())
}

/// UserAttribute: 0..256 characters, and no U+0000. The model gives no pattern, but a NUL cannot be stored by the
/// PostgreSQL backend (`text` refuses it) and is junk to every consumer of a directory attribute (C strings, LDAP,
/// mail headers): both backends refuse it here alike, instead of one storing it and the other failing.
pub fn user_attribute(v: &str, field: &str) -> Result<(), ConstraintError> {
    length(v, field, 0, 256)?;
    no_nul(v, field)
}

/// Refuses the NUL character in a member whose model pattern allows it (see [`user_attribute`]).
pub fn no_nul(v: &str, field: &str) -> Result<(), ConstraintError> {
    pattern_check(field, !v.contains('\0'), r"[^\x00]*")
}

/// IdentityProviderUserId: `^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$`.
pub fn identity_provider_user_id(v: &str, min: usize) -> Result<(), ConstraintError> {
    length(v, "IdentityProviderUserId", min, 47)?;
    if v.is_empty() {
        return Ok(());
    }
    let re = regex!(
        r"^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$"
    );
    pattern_check(
        "IdentityProviderUserId",
        re.is_match(v),
        r"^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$",
    )
}

/// The model's character class for PAT names and scopes: no control character, DEL, `<`, `>` or `\`.
pub fn safe_text(v: &str, field: &str, min: usize, max: usize) -> Result<(), ConstraintError> {
    length(v, field, min, max)?;
    let ok = !v
        .chars()
        .any(|c| c.is_control() || matches!(c, '<' | '>' | '\\'));
    pattern_check(field, ok, r"[^\x00-\x1F\x7F\x3C\x3E\x5C]+")
}

/// PAT scopes: 1..10 items, each 1..256 of the safe class.
pub fn scopes(v: &[String], field: &str) -> Result<(), ConstraintError> {
    if v.is_empty() || v.len() > 10 {
        return Err(fail(
            field,
            "Member must have length less than or equal to 10 and greater than or equal to 1",
        ));
    }
    for s in v {
        safe_text(s, &format!("{field}.member"), 1, 256)?;
    }
    Ok(())
}

/// Sso instance ARN (10..1124).
pub fn instance_arn(v: &str) -> Result<(), ConstraintError> {
    let f = "IdentityCenterConfiguration.InstanceArn";
    length(v, f, 10, 1124)?;
    let re = regex!(
        r"^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):sso:::instance/(sso)?ins-[a-zA-Z0-9-.]{16}$"
    );
    pattern_check(
        f,
        re.is_match(v),
        r"^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):sso:::instance/(sso)?ins-[a-zA-Z0-9-.]{16}$",
    )
}

/// Sso application ARN (10..1224).
pub fn application_arn(v: &str) -> Result<(), ConstraintError> {
    let f = "IdentityCenterConfiguration.ApplicationArn";
    length(v, f, 10, 1224)?;
    let re = regex!(
        r"^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):sso::\d{12}:application/(sso)?ins-[a-zA-Z0-9-.]{16}/apl-[a-zA-Z0-9]{16}$"
    );
    pattern_check(
        f,
        re.is_match(v),
        r"^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):sso::\d{12}:application/(sso)?ins-[a-zA-Z0-9-.]{16}/apl-[a-zA-Z0-9]{16}$",
    )
}

/// Password strength (spec D8): at least 8 characters and 3 of upper case, lower case, digits, symbols.
pub fn strong_password(password: &str) -> Result<(), ConstraintError> {
    if crate::domain::password_is_strong(password) {
        return Ok(());
    }
    Err(ConstraintError {
        kind: Kind::WeakPassword,
        field: Cow::Borrowed("Password"),
        rule: Cow::Borrowed(
            "The password must be at least 8 characters long and contain 3 of: upper case, lower case, digits, symbols",
        ),
    })
}

/// A user name the service keeps for itself.
pub fn unreserved_user_name(name: &str) -> Result<(), ConstraintError> {
    if !crate::domain::is_reserved_user_name(name) {
        return Ok(());
    }
    Err(ConstraintError {
        kind: Kind::Reserved,
        field: Cow::Borrowed("Name"),
        rule: Cow::Owned(format!("User name {name} is reserved")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn organization_ids() {
        assert!(organization_id(&s("m-d281d0a2fd824be5b6cd3d3ce909fd27")).is_ok());
        assert!(organization_id(&s("m-D281D0A2FD824BE5B6CD3D3CE909FD27")).is_err());
        assert!(organization_id(&s("m-d281d0a2fd824be5b6cd3d3ce909fd2")).is_err());
        let e = organization_id(&None).unwrap_err();
        assert!(e.to_string().contains("OrganizationId"));
    }

    #[test]
    fn aliases() {
        for ok in ["acme", "a", "my-org-2", "A1-b2"] {
            assert!(alias(&s(ok)).is_ok(), "{ok}");
        }
        for bad in ["d-abc", "-a", "a-", "a--b", "a_b", "a b", ""] {
            assert!(alias(&s(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_emails() {
        assert!(user_name(&s("alice")).is_ok());
        assert!(user_name(&s("alice.smith-2@corp.example.com")).is_ok());
        assert!(user_name(&s("alice smith")).is_err());
        assert!(user_name(&s("ålice")).is_err());
        assert!(email(&s("alice@acme.awsapps.com"), "Email").is_ok());
        assert!(email(&s("alice@acme"), "Email").is_err());
    }

    #[test]
    fn lengths_count_characters() {
        let name: String = "é".repeat(64);
        assert!(safe_text(&name, "Name", 1, 64).is_ok());
        assert!(safe_text(&(name + "é"), "Name", 1, 64).is_err());
    }

    #[test]
    fn safe_text_rejects_the_model_character_class() {
        for bad in ["a<b", "a>b", "a\\b", "a\u{7f}", "a\u{1}", "a\nb", "a\u{85}"] {
            assert!(safe_text(bad, "Name", 1, 64).is_err(), "{bad:?}");
        }
        assert!(safe_text("laptop (work) ✓", "Name", 1, 64).is_ok());
    }

    #[test]
    fn user_attributes_refuse_only_nul() {
        assert!(user_attribute("Zürich\t\u{1}", "City").is_ok());
        let e = user_attribute("Zu\0rich", "City").unwrap_err();
        assert!(e.to_string().contains("'City'"));
        assert!(!e.to_string().contains("Zu"));
        assert!(text_256(&s("a\0"), "Office").is_err());
        assert!(user_attribute(&"x".repeat(257), "City").is_err());
    }

    #[test]
    fn ranges_and_enums() {
        assert!(max_results(Some(0)).is_err());
        assert!(max_results(Some(101)).is_err());
        assert_eq!(max_results(None).unwrap(), 100);
        assert!(one_of("X", "Role", &["USER"]).is_err());
    }

    #[test]
    fn arns() {
        assert!(instance_arn("arn:aws:sso:::instance/ssoins-1111111111111111").is_ok());
        assert!(
            application_arn(
                "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111"
            )
            .is_ok()
        );
        assert!(instance_arn("arn:aws:sso:::instance/x").is_err());
    }
}
