//! DeleteAlias: removes one of a user's aliases (never the primary address: UpdatePrimaryEmailAddress replaces
//! that). An address that is not the user's alias is no error.

use serde::{Deserialize, Serialize};

use super::mail_rules::require_enabled;
use super::{Ctx, active_org, resolve_user, store_error, validate};
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub entity_id: Option<String>,
    pub alias: Option<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct Output {}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::workmail_identifier(&input.entity_id, "EntityId")?;
    let alias = validate::email(&input.alias, "Alias")?;
    active_org(ctx, org_id).await?;
    let user = resolve_user(ctx, org_id, ident).await?;
    require_enabled(&user)?;
    if user
        .email
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(&alias))
    {
        return Err(ServiceError::invalid_parameter(
            "The primary email address cannot be deleted as an alias",
        ));
    }
    ctx.app
        .store
        .delete_alias(org_id, &user.id, &alias)
        .await
        .map_err(store_error)?;
    Ok(Output {})
}
