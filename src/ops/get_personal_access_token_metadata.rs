//! GetPersonalAccessTokenMetadata: the seven summary members of one token; ResourceNotFoundException when the id
//! is unknown in this organization (spec D6).

use serde::Deserialize;

use super::{Ctx, PatSummary, Reply, active_org, encode, store_error, validate};
use crate::error::{ErrorCode, ServiceError};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    organization_id: Option<String>,
    personal_access_token_id: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
    let org_id = validate::organization_id(&input.organization_id)?;
    let id = validate::personal_access_token_id(&input.personal_access_token_id)?;
    active_org(ctx, org_id).await?;
    let token = ctx
        .app
        .store
        .get_personal_access_token(org_id, id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::ResourceNotFoundException,
                format!("Personal access token {id} does not exist"),
            )
        })?;
    encode(&PatSummary::from(&token))
}
