//! Mail domains and email addresses (issue 15): what an organization's registered domains and its entities'
//! addresses are, the DNS records a domain's owner publishes, and how a typed address is normalised.

use crate::clock::Millis;
use crate::domain::Organization;

/// `DnsRecordVerificationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Pending,
    Verified,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Pending => "PENDING",
            Verification::Verified => "VERIFIED",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "VERIFIED" {
            Verification::Verified
        } else {
            Verification::Pending
        }
    }
}

/// How a newly registered domain becomes VERIFIED (`--domain-verification`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerificationMode {
    /// At once, as an emulator should (the default).
    #[default]
    Auto,
    /// When the operator marks it (`workmail-pat domain verify`, `POST /_workmail-pat/domains/verify`).
    Manual,
}

/// A domain registered to an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailDomain {
    pub org_id: String,
    pub account: String,
    pub region: String,
    /// Lower-case ASCII (IDNA A-labels).
    pub domain: String,
    pub is_test_domain: bool,
    pub ownership: Verification,
    pub dkim: Verification,
    /// The value of the `_amazonses.<domain>` TXT record.
    pub ownership_token: String,
    /// The three DKIM selectors.
    pub dkim_tokens: Vec<String>,
    pub created_ms: Millis,
}

impl MailDomain {
    /// A domain of `org`, with fresh random verification values.
    pub fn new(
        org: &Organization,
        domain: &str,
        is_test: bool,
        verified: bool,
        now: Millis,
    ) -> Self {
        let state = if verified {
            Verification::Verified
        } else {
            Verification::Pending
        };
        MailDomain {
            org_id: org.id.clone(),
            account: org.account.clone(),
            region: org.region.clone(),
            domain: domain.to_ascii_lowercase(),
            is_test_domain: is_test,
            ownership: state,
            dkim: state,
            ownership_token: random_token(32, BASE64),
            dkim_tokens: (0..3).map(|_| random_token(32, BASE32)).collect(),
            created_ms: now,
        }
    }

    /// The rows of a new organization: its test domain and the domains given at creation, all verified.
    pub fn of_new_organization(org: &Organization) -> Vec<MailDomain> {
        let now = org.created_ms;
        let mut rows = vec![MailDomain::new(
            org,
            &org.default_mail_domain,
            true,
            true,
            now,
        )];
        for d in &org.domains {
            if rows.iter().all(|r| r.domain != *d) {
                rows.push(MailDomain::new(org, d, false, true, now));
            }
        }
        rows
    }

    /// Takes the ownership token and DKIM selectors from the records GetMailDomain shows (an import keeps the
    /// values the domain's owner has published); values the records do not carry stay as they are.
    pub fn keep_records<'a>(
        &mut self,
        records: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) {
        let d = self.domain.trim_end_matches('.');
        let ownership = format!("_amazonses.{d}");
        let dkim_suffix = format!("._domainkey.{d}");
        let mut dkim = Vec::new();
        for (kind, hostname, value) in records {
            let host = hostname.trim_end_matches('.').to_ascii_lowercase();
            if kind == "TXT" && host == ownership && !value.is_empty() {
                self.ownership_token = value.trim_matches('"').to_string();
            } else if kind == "CNAME"
                && let Some(selector) = host.strip_suffix(&dkim_suffix)
                && !selector.is_empty()
            {
                dkim.push(selector.to_string());
            }
        }
        if !dkim.is_empty() {
            self.dkim_tokens = dkim;
        }
    }

    pub fn is_verified(&self) -> bool {
        self.ownership == Verification::Verified
    }

    /// The records a WorkMail administrator publishes for this domain (none for the test domain, whose DNS AWS
    /// runs): ownership TXT, three DKIM CNAMEs, MX and the autodiscover CNAME.
    pub fn records(&self) -> Vec<DnsRecord> {
        if self.is_test_domain {
            return Vec::new();
        }
        let d = &self.domain;
        let region = &self.region;
        let mut out = vec![DnsRecord {
            kind: "TXT",
            hostname: format!("_amazonses.{d}."),
            value: self.ownership_token.clone(),
        }];
        for t in &self.dkim_tokens {
            out.push(DnsRecord {
                kind: "CNAME",
                hostname: format!("{t}._domainkey.{d}."),
                value: format!("{t}.dkim.amazonses.com."),
            });
        }
        out.push(DnsRecord {
            kind: "MX",
            hostname: format!("{d}."),
            value: format!("10 inbound-smtp.{region}.amazonaws.com."),
        });
        out.push(DnsRecord {
            kind: "CNAME",
            hostname: format!("autodiscover.{d}."),
            value: format!("autodiscover.mail.{region}.awsapps.com."),
        });
        out
    }
}

/// One `DnsRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub kind: &'static str,
    pub hostname: String,
    pub value: String,
}

/// An address an entity answers to: its primary address or an alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    pub org_id: String,
    pub entity_id: String,
    /// As given.
    pub address: String,
    pub is_primary: bool,
    pub created_ms: Millis,
}

impl EmailAddress {
    /// The lower-cased address (uniqueness and lookups ignore case).
    pub fn key(&self) -> String {
        self.address.to_ascii_lowercase()
    }

    /// The lower-cased domain part.
    pub fn domain_key(&self) -> String {
        domain_of(&self.address).to_ascii_lowercase()
    }
}

/// Aliases one user may have.
pub const MAX_ALIASES_PER_USER: i64 = 100;

/// The part after the last `@` (empty when there is none).
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

/// A typed domain in the form domains are stored: IDNA A-labels, lower case. `None` when it cannot be one.
pub fn normalise_domain(domain: &str) -> Option<String> {
    if domain.is_empty() || domain.len() > 255 {
        return None;
    }
    let ascii = if domain.is_ascii() {
        domain.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(domain).ok()?
    };
    let ok = !ascii.is_empty()
        && ascii
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok.then_some(ascii)
}

/// A typed sign-in address split into (lower-cased local part + `@` + normalised domain, normalised domain).
/// `None` when it is not `local@domain`.
pub fn normalise_address(address: &str) -> Option<(String, String)> {
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() {
        return None;
    }
    let domain = normalise_domain(domain)?;
    Some((format!("{}@{domain}", local.to_ascii_lowercase()), domain))
}

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

fn random_token(len: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_normalise_to_ascii_lower_case() {
        assert_eq!(
            normalise_address("Alice@Example.COM"),
            Some(("alice@example.com".into(), "example.com".into()))
        );
        assert_eq!(
            normalise_address("bob@Bücher.example"),
            Some((
                "bob@xn--bcher-kva.example".into(),
                "xn--bcher-kva.example".into()
            ))
        );
        assert_eq!(normalise_address("alice"), None);
        assert_eq!(normalise_address("@example.com"), None);
        assert_eq!(normalise_address("a@exa mple.com"), None);
    }

    #[test]
    fn records_cover_ownership_dkim_mx_and_autodiscover() {
        let org = Organization {
            id: "m-0".into(),
            account: "1".into(),
            region: "eu-west-1".into(),
            alias: "a".into(),
            state: "Active".into(),
            directory_id: "d".into(),
            directory_type: "x".into(),
            default_mail_domain: "a.awsapps.com".into(),
            domains: vec![],
            kms_key_arn: None,
            interoperability_enabled: false,
            created_ms: 0,
            completed_ms: None,
        };
        let d = MailDomain::new(&org, "Example.com", false, false, 1);
        let records = d.records();
        assert_eq!(records.len(), 6);
        assert_eq!(records[0].hostname, "_amazonses.example.com.");
        assert_eq!(records[0].value.len(), 32);
        assert!(records[4].value.contains("eu-west-1"));
        let mut copy = MailDomain::new(&org, "example.com", false, false, 1);
        copy.keep_records(
            records
                .iter()
                .map(|r| (r.kind, r.hostname.as_str(), r.value.as_str())),
        );
        assert_eq!(copy, d);
        assert!(
            MailDomain::of_new_organization(&org)[0]
                .records()
                .is_empty()
        );
    }
}
