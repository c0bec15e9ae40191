//! Domain types: what the service stores, in its own terms (no SQL, no HTTP).

use crate::clock::Millis;

/// State is partitioned by (account, region), both taken from the caller's SigV4 identity (spec D11).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Partition {
    pub account: String,
    pub region: String,
}

/// Organization states as AWS spells them (Title case, spec §5).
pub mod org_state {
    pub const ACTIVE: &str = "Active";
    pub const DELETING: &str = "Deleting";
    pub const DELETED: &str = "Deleted";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub account: String,
    pub region: String,
    pub alias: String,
    pub state: String,
    pub directory_id: String,
    pub directory_type: String,
    pub default_mail_domain: String,
    /// Extra verified domains given at creation, lower case.
    pub domains: Vec<String>,
    pub kms_key_arn: Option<String>,
    pub interoperability_enabled: bool,
    pub created_ms: Millis,
    pub completed_ms: Option<Millis>,
}

impl Organization {
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:workmail:{}:{}:organization/{}",
            self.region, self.account, self.id
        )
    }

    pub fn is_active(&self) -> bool {
        self.state == org_state::ACTIVE
    }

    /// Whether `domain` (any case) is one of the organization's mail domains.
    pub fn has_mail_domain(&self, domain: &str) -> bool {
        let domain = domain.to_ascii_lowercase();
        self.default_mail_domain == domain || self.domains.contains(&domain)
    }
}

/// EntityState (upper case, spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Enabled,
    Disabled,
    Deleted,
}

impl UserState {
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Enabled => "ENABLED",
            UserState::Disabled => "DISABLED",
            UserState::Deleted => "DELETED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ENABLED" => Some(UserState::Enabled),
            "DISABLED" => Some(UserState::Disabled),
            "DELETED" => Some(UserState::Deleted),
            _ => None,
        }
    }
}

/// The optional, free-form directory attributes of a user (each at most 256 characters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    pub display_name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub initials: Option<String>,
    pub telephone: Option<String>,
    pub street: Option<String>,
    pub job_title: Option<String>,
    pub city: Option<String>,
    pub company: Option<String>,
    pub zip_code: Option<String>,
    pub department: Option<String>,
    pub country: Option<String>,
    pub office: Option<String>,
    pub hidden_from_global_address_list: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Lowercase GUID (spec D7).
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub email: Option<String>,
    pub state: UserState,
    pub role: String,
    pub profile: UserProfile,
    pub identity_provider_user_id: Option<String>,
    pub enabled_ms: Option<Millis>,
    pub disabled_ms: Option<Millis>,
    pub mailbox_provisioned_ms: Option<Millis>,
    pub mailbox_deprovisioned_ms: Option<Millis>,
    pub created_ms: Millis,
    /// Argon2id PHC string; never the password itself.
    pub password_hash: Option<String>,
}

/// A change to a user's directory attributes; `None` leaves a member unchanged.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub role: Option<String>,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub initials: Option<String>,
    pub telephone: Option<String>,
    pub street: Option<String>,
    pub job_title: Option<String>,
    pub city: Option<String>,
    pub company: Option<String>,
    pub zip_code: Option<String>,
    pub department: Option<String>,
    pub country: Option<String>,
    pub office: Option<String>,
    pub hidden_from_global_address_list: Option<bool>,
    /// `Some(None)` clears it (an empty string in the request).
    pub identity_provider_user_id: Option<Option<String>>,
}

/// ListUsers filters; the API allows at most one per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    None,
    UsernamePrefix(String),
    DisplayNamePrefix(String),
    PrimaryEmailPrefix(String),
    State(UserState),
    IdentityProviderUserIdPrefix(String),
}

impl UserFilter {
    /// A canonical form bound into NextTokens, so a token cannot be replayed with another filter.
    pub fn canonical(&self) -> String {
        match self {
            UserFilter::None => String::new(),
            UserFilter::UsernamePrefix(p) => format!("u:{p}"),
            UserFilter::DisplayNamePrefix(p) => format!("d:{p}"),
            UserFilter::PrimaryEmailPrefix(p) => format!("e:{p}"),
            UserFilter::State(s) => format!("s:{}", s.as_str()),
            UserFilter::IdentityProviderUserIdPrefix(p) => format!("i:{p}"),
        }
    }
}

/// `ACTIVE | INACTIVE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatStatus {
    Active,
    Inactive,
}

impl PatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PatStatus::Active => "ACTIVE",
            PatStatus::Inactive => "INACTIVE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(PatStatus::Active),
            "INACTIVE" => Some(PatStatus::Inactive),
            _ => None,
        }
    }
}

/// An organization's identity-provider configuration, including its PAT settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProviderConfiguration {
    pub authentication_mode: String,
    pub instance_arn: String,
    pub application_arn: String,
    pub pat_status: PatStatus,
    pub pat_lifetime_days: i64,
}

/// A personal access token's metadata. The secret is never part of it: only its keyed hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalAccessToken {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_ms: Millis,
    pub last_used_ms: Option<Millis>,
    pub expires_ms: Millis,
}

impl PersonalAccessToken {
    /// The token's `PersonalAccessTokenSummary` exactly as the API sends it (also the whole
    /// GetPersonalAccessTokenMetadata answer). Stores keep it beside the row, written with every change of the row, so a
    /// page of tokens is answered by copying stored bytes.
    pub fn summary_json(&self) -> String {
        // Serialising plain strings, numbers and arrays into memory cannot fail.
        serde_json::to_string(&PatSummary::from(self)).unwrap_or_default()
    }
}

/// `PersonalAccessTokenSummary` / GetPersonalAccessTokenMetadata output: the same seven members.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PatSummary<'a> {
    pub personal_access_token_id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub date_created: EpochSeconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_last_used: Option<EpochSeconds>,
    pub expires_time: EpochSeconds,
    pub scopes: &'a [String],
}

impl<'a> From<&'a PersonalAccessToken> for PatSummary<'a> {
    fn from(t: &'a PersonalAccessToken) -> Self {
        PatSummary {
            personal_access_token_id: &t.id,
            user_id: &t.user_id,
            name: &t.name,
            date_created: EpochSeconds(t.created_ms),
            date_last_used: t.last_used_ms.map(EpochSeconds),
            expires_time: EpochSeconds(t.expires_ms),
            scopes: &t.scopes,
        }
    }
}

/// A signed-in web-application user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub org_id: String,
    pub user_id: String,
    pub expires_ms: Millis,
    /// When the password was last entered for this session (sign-in or re-authentication).
    pub authenticated_ms: Millis,
}

/// A keyset position: the sort key of the last row returned. Every list is ordered by (creation time, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_ms: Millis,
    pub id: String,
}

/// One millisecond-precision timestamp, written as epoch seconds (a JSON number) on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochSeconds(pub Millis);

impl serde::Serialize for EpochSeconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Dividing by 1000.0 and letting serde print the shortest round-trip form gives e.g. 1522693605.468.
        s.serialize_f64(self.0 as f64 / 1000.0)
    }
}

pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn new_org_id() -> String {
    format!("m-{}", uuid::Uuid::new_v4().simple())
}

pub fn new_directory_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("d-{}", &hex[..10])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_documented_shapes() {
        let org = new_org_id();
        assert_eq!(org.len(), 34);
        assert!(org.starts_with("m-"));
        assert!(
            org[2..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let dir = new_directory_id();
        assert_eq!(dir.len(), 12);
        let guid = new_guid();
        assert_eq!(guid, guid.to_lowercase());
        assert_eq!(guid.len(), 36);
    }

    #[test]
    fn epoch_seconds_keep_milliseconds() {
        let json = serde_json::to_string(&EpochSeconds(1_522_693_605_468)).unwrap();
        assert_eq!(json, "1522693605.468");
    }
}

/// Usernames WorkMail reserves (spec D8), compared without case.
pub const RESERVED_USER_NAMES: &[&str] = &[
    "administrator",
    "admin",
    "root",
    "postmaster",
    "abuse",
    "hostmaster",
    "webmaster",
    "mailer-daemon",
];

pub fn is_reserved_user_name(name: &str) -> bool {
    let local = name.split('@').next().unwrap_or(name);
    RESERVED_USER_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(local))
}

/// Password policy (spec D8): at least 8 characters with 3 of the 4 classes upper, lower, digit, symbol.
pub fn password_is_strong(password: &str) -> bool {
    let classes = [
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    password.chars().count() >= 8 && classes.iter().filter(|&&c| c).count() >= 3
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn password_policy() {
        assert!(password_is_strong("Correct-Horse-7"));
        assert!(password_is_strong("abcdEF12"));
        assert!(!password_is_strong("abcdefgh"));
        assert!(!password_is_strong("Ab1-"));
        assert!(!password_is_strong("abcd1234"));
    }

    #[test]
    fn reserved_names() {
        assert!(is_reserved_user_name("Admin"));
        assert!(is_reserved_user_name("postmaster@acme.com"));
        assert!(!is_reserved_user_name("alice"));
    }
}
