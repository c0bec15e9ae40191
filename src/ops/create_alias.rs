//! CreateAlias: another address for a registered user, in one of the organization's verified domains; unique in the
//! organization (against every primary address and alias), at most 100 per user.

use serde::{Deserialize, Serialize};

use super::mail_rules::{address_in_use, address_write_error, require_enabled, verified_domain_of};
use super::{Ctx, active_org, resolve_user, store_error, validate};
use crate::error::{ErrorCode, ServiceError};
use crate::mail::{EmailAddress, MAX_ALIASES_PER_USER};

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
    verified_domain_of(ctx, org_id, &alias).await?;
    let store = &ctx.app.store;
    if let Some(held) = store
        .find_address(org_id, &alias)
        .await
        .map_err(store_error)?
    {
        // Already this user's alias: nothing to do (the call is idempotent).
        return if held.entity_id == user.id && !held.is_primary {
            Ok(Output {})
        } else {
            Err(address_in_use())
        };
    }
    let address = EmailAddress {
        org_id: org_id.to_string(),
        entity_id: user.id.clone(),
        address: alias.clone(),
        is_primary: false,
        created_ms: ctx.app.clock.now_ms(),
    };
    let added = store
        .create_alias(address, MAX_ALIASES_PER_USER)
        .await
        .map_err(|e| address_write_error(e, &alias))?;
    if !added {
        // The user stopped being ENABLED meanwhile, or holds the most aliases there may be.
        let now = resolve_user(ctx, org_id, &user.id).await?;
        require_enabled(&now)?;
        return Err(ServiceError::new(
            ErrorCode::LimitExceededException,
            format!("A user may have at most {MAX_ALIASES_PER_USER} aliases"),
        ));
    }
    Ok(Output {})
}
