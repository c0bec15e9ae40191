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
    let org = active_org(ctx, org_id).await?;
    let user = resolve_user(ctx, org_id, ident).await?;
    if user.state == UserState::Deleted {
        return Err(user_deleted(&user));
    }
    let domain = email.rsplit('@').next().unwrap_or_default();
    if !org.has_mail_domain(domain) {
        return Err(ServiceError::new(
            ErrorCode::MailDomainNotFoundException,
            format!("Mail domain {domain} is not part of organization {org_id}"),
        ));
    }
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
        .map_err(|e| user_conflict(e, &user.name))?;
    Ok(Empty {})
}
