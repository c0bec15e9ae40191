//! DeletePersonalAccessToken: revokes at once (the next verification fails); an unknown id is a 200, since no
//! not-found error is modelled (spec D6).

use serde::Deserialize;

use super::{Ctx, Empty, active_org, store_error, validate};
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub personal_access_token_id: Option<String>,
}

pub type Output = Empty;

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let id = validate::personal_access_token_id(&input.personal_access_token_id)?;
    active_org(ctx, org_id).await?;
    let deleted = ctx
        .app
        .store
        .delete_personal_access_token(org_id, id)
        .await
        .map_err(store_error)?;
    if deleted {
        tracing::info!(
            event = "token_deleted",
            organization_id = org_id,
            token_id = id
        );
    }
    Ok(Empty {})
}
