//! GetPersonalAccessTokenMetadata: the seven summary members of one token; ResourceNotFoundException when the id
//! is unknown in this organization (spec D6). The answer is the token's stored summary, sent as stored.

use serde::Deserialize;

use super::{Ctx, RawJson, check_active_org, store_error, validate};
use crate::error::{ErrorCode, ServiceError};
/// The token's seven summary members at the top level of the answer: the summary the store keeps, as it is.
pub type Output = RawJson;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub personal_access_token_id: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let id = validate::personal_access_token_id(&input.personal_access_token_id)?;
    // One read when the token exists: the store gives the summary only while the organization is Active. Without
    // it, the organization is checked (its errors come first), and then the token does not exist.
    let summary = ctx
        .app
        .store
        .get_personal_access_token_summary(&ctx.partition, org_id, id)
        .await
        .map_err(store_error)?;
    if let Some(summary) = summary {
        return Ok(RawJson(summary.into_bytes()));
    }
    check_active_org(ctx, org_id).await?;
    Err(ServiceError::new(
        ErrorCode::ResourceNotFoundException,
        format!("Personal access token {id} does not exist"),
    ))
}
