//! CreateOrganization: the organization is Active at once, with `<alias>.awsapps.com` as its default mail domain
//! (spec D1), and a `ClientToken` makes retries replay the first answer (spec D3).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Ctx, store_error, validate};
use crate::domain::{Organization, org_state};
use crate::error::{ErrorCode, ServiceError};
use crate::store::{Conflict, Idempotency, Idempotent, StoreError};

#[derive(Deserialize, Serialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Domain {
    pub domain_name: Option<String>,
    pub hosted_zone_id: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub alias: Option<String>,
    pub directory_id: Option<String>,
    pub client_token: Option<String>,
    pub domains: Option<Vec<Domain>>,
    pub kms_key_arn: Option<String>,
    pub enable_interoperability: Option<bool>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub organization_id: String,
}

/// The parameters a ClientToken is bound to, in a fixed order.
#[derive(Serialize)]
struct Fingerprint<'a> {
    alias: &'a str,
    directory_id: &'a Option<String>,
    domains: &'a [Domain],
    kms_key_arn: &'a Option<String>,
    enable_interoperability: bool,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let alias = validate::alias(&input.alias)?;
    if let Some(d) = &input.directory_id {
        validate::directory_id(d)?;
    }
    let client_token = validate::client_token(&input.client_token)?;
    let domains = input.domains.as_deref().unwrap_or_default();
    if domains.len() > 5 {
        return Err(ServiceError::invalid_parameter(
            "1 validation error detected: Value at 'Domains' failed to satisfy constraint: Member must have length less than or equal to 5",
        ));
    }
    for d in domains {
        let name = validate::required(&d.domain_name, "Domains.member.DomainName")?;
        validate::domain_name(name)?;
        if let Some(zone) = &d.hosted_zone_id {
            validate::hosted_zone_id(zone)?;
        }
    }
    if let Some(arn) = &input.kms_key_arn {
        validate::kms_key_arn(arn)?;
    }
    let interop = input.enable_interoperability.unwrap_or(false);
    if interop && input.directory_id.is_none() {
        return Err(ServiceError::invalid_parameter(
            "EnableInteroperability requires a DirectoryId",
        ));
    }

    let now = ctx.app.clock.now_ms();
    let default_domain = format!("{}.awsapps.com", alias.to_ascii_lowercase());
    let mut extra_domains: Vec<String> = domains
        .iter()
        .filter_map(|d| d.domain_name.as_ref().map(|n| n.to_ascii_lowercase()))
        .filter(|n| *n != default_domain)
        .collect();
    extra_domains.dedup();
    let org = Organization {
        id: ctx.app.ids.organization_id(),
        account: ctx.partition.account.clone(),
        region: ctx.partition.region.clone(),
        alias: alias.to_string(),
        state: org_state::ACTIVE.to_string(),
        directory_type: if input.directory_id.is_some() {
            "SimpleAD".to_string()
        } else {
            "VpcDirectory".to_string()
        },
        directory_id: input
            .directory_id
            .clone()
            .unwrap_or_else(|| ctx.app.ids.directory_id()),
        default_mail_domain: default_domain,
        domains: extra_domains,
        kms_key_arn: input.kms_key_arn.clone(),
        interoperability_enabled: interop,
        created_ms: now,
        completed_ms: Some(now),
    };
    let idempotency = client_token.map(|token| {
        let fingerprint = serde_json::to_vec(&Fingerprint {
            alias,
            directory_id: &input.directory_id,
            domains,
            kms_key_arn: &input.kms_key_arn,
            enable_interoperability: interop,
        })
        .unwrap_or_default();
        Idempotency {
            operation: "CreateOrganization",
            token: token.to_string(),
            request_hash: Sha256::digest(&fingerprint).into(),
            result: org.id.clone(),
            now_ms: now,
        }
    });
    let mut org = org;
    let mut idempotency = idempotency;
    // Generated ids (organization, directory) can only collide when ids are seeded (test API); draw others
    // rather than fail.
    let mut outcome = ctx
        .app
        .store
        .create_organization(org.clone(), idempotency.clone())
        .await;
    for _ in 0..5 {
        let generated_directory = input.directory_id.is_none();
        let collided = match &outcome {
            Err(StoreError::Conflict(Conflict::Id)) => true,
            Err(StoreError::Conflict(Conflict::Directory)) => generated_directory,
            _ => false,
        };
        if !collided {
            break;
        }
        org.id = ctx.app.ids.organization_id();
        if generated_directory {
            org.directory_id = ctx.app.ids.directory_id();
        }
        if let Some(i) = idempotency.as_mut() {
            i.result = org.id.clone();
        }
        outcome = ctx
            .app
            .store
            .create_organization(org.clone(), idempotency.clone())
            .await;
    }
    let org_id = org.id.clone();
    match outcome {
        Ok(Idempotent::Done) => Ok(Output {
            organization_id: org_id,
        }),
        Ok(Idempotent::Replay(previous)) => Ok(Output {
            organization_id: previous,
        }),
        Ok(Idempotent::Mismatch) => Err(ServiceError::invalid_parameter(
            "The ClientToken was already used with different parameters",
        )),
        Err(StoreError::Conflict(Conflict::Alias)) => Err(ServiceError::new(
            ErrorCode::NameAvailabilityException,
            format!("Organization alias {alias} is already in use"),
        )),
        Err(StoreError::Conflict(Conflict::Directory)) => Err(ServiceError::new(
            ErrorCode::DirectoryInUseException,
            "The directory is already in use by another organization",
        )),
        // A domain of `Domains` is registered to another organization of the account and region (issue 15).
        Err(StoreError::Conflict(Conflict::MailDomain)) => Err(ServiceError::invalid_parameter(
            "A domain in Domains is already registered to another organization",
        )),
        Err(e) => Err(store_error(e)),
    }
}
