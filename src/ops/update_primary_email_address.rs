//! UpdatePrimaryEmailAddress: gives a registered user a new primary address in a verified domain of the
//! organization. As in WorkMail, the previous primary address stays with the user as an alias (DeleteAlias removes
//! it); an alias of the user may be promoted.

use serde::{Deserialize, Serialize};

use super::mail_rules::{address_in_use, address_write_error, require_enabled, verified_domain_of};
use super::{Ctx, active_org, resolve_user, store_error, validate};
use crate::error::ServiceError;
use crate::mail::EmailAddress;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub entity_id: Option<String>,
    pub email: Option<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct Output {}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::entity_identifier(&input.entity_id, "EntityId")?;
    let email = validate::email(&input.email, "Email")?;
    active_org(ctx, org_id).await?;
    let user = resolve_user(ctx, org_id, ident).await?;
    require_enabled(&user)?;
    verified_domain_of(ctx, org_id, &email).await?;
    if user.email.as_deref() == Some(email.as_str()) {
        return Ok(Output {});
    }
    let store = &ctx.app.store;
    if let Some(held) = store
        .find_address(org_id, &email)
        .await
        .map_err(store_error)?
        && held.entity_id != user.id
    {
        return Err(address_in_use());
    }
    let address = EmailAddress {
        org_id: org_id.to_string(),
        entity_id: user.id.clone(),
        address: email.clone(),
        is_primary: true,
        created_ms: ctx.app.clock.now_ms(),
    };
    store
        .set_primary_address(address)
        .await
        .map_err(|e| address_write_error(e, &email))?;
    Ok(Output {})
}
