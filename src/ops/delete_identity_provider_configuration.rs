//! DeleteIdentityProviderConfiguration: 200 even when nothing is configured (spec D6). Without a PAT
//! configuration no token can be created or used, but existing tokens stay listed.

use serde::Deserialize;

use super::{Ctx, Empty, active_org, store_error, validate};
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
}

pub type Output = Empty;

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    active_org(ctx, org_id).await?;
    ctx.app
        .store
        .delete_identity_provider_configuration(org_id)
        .await
        .map_err(store_error)?;
    Ok(Empty {})
}
