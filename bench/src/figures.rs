//! What the requests of the figures are made of, and the requests of the figures that have targets.

use std::path::Path;

use super::{Conn, Req, aws_request, json_request};

/// What the requests are made of: the organizations, the sampled (organization, user, secret) triples and the ids
/// of the first page of the first organization.
pub struct Basics {
    pub orgs: Vec<String>,
    pub samples: Vec<(String, String, String)>,
    pub ids: Vec<String>,
}

impl Basics {
    pub async fn read(addr: &str, probe: &mut Conn, secrets_file: &Path) -> Result<Self, String> {
        let (status, body) = probe
            .call(&aws_request(
                addr,
                "ListOrganizations",
                &serde_json::json!({}),
            ))
            .await?;
        if status != 200 {
            return Err(format!(
                "ListOrganizations answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let orgs: Vec<String> = serde_json::from_slice::<serde_json::Value>(&body)
            .map_err(|e| e.to_string())?["OrganizationSummaries"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["OrganizationId"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if orgs.is_empty() {
            return Err("the store holds no organization".into());
        }
        let samples = std::fs::read_to_string(secrets_file)
            .map_err(|e| e.to_string())?
            .lines()
            .filter_map(|l| {
                let mut p = l.splitn(3, ',');
                Some((
                    p.next()?.to_string(),
                    p.next()?.to_string(),
                    p.next()?.to_string(),
                ))
            })
            .collect();
        let first = serde_json::json!({"OrganizationId": orgs[0], "MaxResults": 10});
        let (_, body) = probe
            .call(&aws_request(addr, "ListPersonalAccessTokens", &first))
            .await?;
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let ids = doc["PersonalAccessTokenSummaries"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["PersonalAccessTokenId"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self { orgs, samples, ids })
    }
}

/// The figures with targets, each measured on SQLite, on PostgreSQL and under callgrind.
pub const CORE: [&str; 4] = [
    "ListPersonalAccessTokens org, 100/page, first page",
    "ListPersonalAccessTokens org, 10/page, first page",
    "GetPersonalAccessTokenMetadata",
    "/auth/v1/verify",
];

/// The requests of [`CORE`] figure `which`, signed for a server at `addr`.
pub fn core_requests(addr: &str, basics: &Basics, which: usize) -> Vec<Req> {
    let list = |size: u32| -> Vec<Req> {
        basics
            .orgs
            .iter()
            .map(|o| {
                let body = serde_json::json!({"OrganizationId": o, "MaxResults": size});
                aws_request(addr, "ListPersonalAccessTokens", &body)
            })
            .collect()
    };
    match which {
        0 => list(100),
        1 => list(10),
        2 => basics
            .ids
            .iter()
            .map(|id| {
                let body = serde_json::json!({"OrganizationId": basics.orgs[0], "PersonalAccessTokenId": id});
                aws_request(addr, "GetPersonalAccessTokenMetadata", &body)
            })
            .collect(),
        _ => basics
            .samples
            .iter()
            .map(|(org, user, secret)| {
                let body = serde_json::json!({"OrganizationId": org, "Username": user, "Token": secret, "Scope": "IMAP"});
                json_request(addr, "/auth/v1/verify", &body)
            })
            .collect(),
    }
}
