//! RegisterToWorkMail: gives a user a mailbox and an email address and makes it ENABLED (spec D5).

use serde::Deserialize;

use super::{Ctx, Empty, active_org, resolve_user, user_conflict, user_deleted, validate};
use crate::domain::UserState;
use crate::error::{ErrorCode, ServiceError};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub entity_id: Option<String>,
    pub email: Option<String>,
}

pub type Output = Empty;

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::entity_identifier(&input.entity_id, "EntityId")?;
    let email = validate::email(&input.email, "Email")?;
    active_org(ctx, org_id).await?;
    let user = resolve_user(ctx, org_id, ident).await?;
    if user.state == UserState::Deleted {
        return Err(user_deleted(&user));
    }
    // The address's domain must be registered to the organization and verified (issue 15).
    super::mail_rules::verified_domain_of(ctx, org_id, &email).await?;
    if user.state == UserState::Enabled {
        let same = user
            .email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(&email));
        return if same {
            Ok(Empty {})
        } else {
            Err(ServiceError::new(
                ErrorCode::EntityAlreadyRegisteredException,
                format!("Entity {} is already registered", user.id),
            ))
        };
    }
    ctx.app
        .store
        .register_user(&user.id, &email, ctx.app.clock.now_ms())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(crate::store::Conflict::Reference) => {
                super::mail_rules::address_write_error(e, &email)
            }
            other => user_conflict(other, &user.name),
        })?;
    Ok(Empty {})
}
