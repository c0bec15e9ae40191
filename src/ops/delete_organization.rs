//! DeleteOrganization: answers `Deleting`, and the organization is Deleted right after; its users' PATs stop
//! working at once. Refused while users are ENABLED unless `ForceDelete` (spec D1, D2). Deleting a Deleted
//! organization answers its current state.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Ctx, store_error, validate, visible_org};
use crate::domain::org_state;
use crate::error::{ErrorCode, ServiceError};
use crate::store::Idempotency;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub client_token: Option<String>,
    pub organization_id: Option<String>,
    pub delete_directory: Option<bool>,
    pub force_delete: Option<bool>,
    pub delete_identity_center_application: Option<bool>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub organization_id: String,
    pub state: String,
}

const OPERATION: &str = "DeleteOrganization";

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let client_token = validate::client_token(&input.client_token)?;
    let org_id = validate::organization_id(&input.organization_id)?;
    let delete_directory = *validate::required(&input.delete_directory, "DeleteDirectory")?;
    let force = input.force_delete.unwrap_or(false);
    let request_hash: [u8; 32] = Sha256::digest(format!(
        "{org_id}\0{delete_directory}\0{force}\0{}",
        input.delete_identity_center_application.unwrap_or(false)
    ))
    .into();
    let now = ctx.app.clock.now_ms();
    if let Some(token) = client_token
        && let Some(previous) = ctx
            .app
            .store
            .get_client_token(&ctx.partition, OPERATION, token, now)
            .await
            .map_err(store_error)?
    {
        if previous.request_hash != request_hash {
            return Err(ServiceError::invalid_parameter(
                "The ClientToken was already used with different parameters",
            ));
        }
        return Ok(Output {
            organization_id: org_id.to_string(),
            state: previous.result,
        });
    }

    let org = visible_org(ctx, org_id).await?;
    let answered = if org.state == org_state::DELETED || org.state == org_state::DELETING {
        org.state.clone()
    } else {
        if !force {
            let enabled = ctx
                .app
                .store
                .count_enabled_users(org_id)
                .await
                .map_err(store_error)?;
            if enabled > 0 {
                return Err(ServiceError::new(
                    ErrorCode::OrganizationStateException,
                    format!(
                        "Organization {org_id} has {enabled} enabled users; deregister them or set ForceDelete"
                    ),
                ));
            }
        }
        ctx.app
            .store
            .delete_organization(org_id)
            .await
            .map_err(store_error)?;
        org_state::DELETING.to_string()
    };
    if let Some(token) = client_token {
        ctx.app
            .store
            .put_client_token(
                &ctx.partition,
                Idempotency {
                    operation: OPERATION,
                    token: token.to_string(),
                    request_hash,
                    result: answered.clone(),
                    now_ms: now,
                },
            )
            .await
            .map_err(store_error)?;
    }
    Ok(Output {
        organization_id: org_id.to_string(),
        state: answered,
    })
}
