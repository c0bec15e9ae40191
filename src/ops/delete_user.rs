//! DeleteUser: only a DISABLED user can be deleted; an ENABLED one gets EntityStateException, an already DELETED
//! one 200, an unknown one EntityNotFoundException (spec D6). The user's PATs are removed with it.

use serde::Deserialize;

use super::{Ctx, Empty, active_org, resolve_user, store_error, validate};
use crate::domain::UserState;
use crate::error::{ErrorCode, ServiceError};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
}

pub type Output = Empty;

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::entity_identifier(&input.user_id, "UserId")?;
    active_org(ctx, org_id).await?;
    let user = resolve_user(ctx, org_id, ident).await?;
    match user.state {
        UserState::Deleted => Ok(Empty {}),
        UserState::Enabled => Err(ServiceError::new(
            ErrorCode::EntityStateException,
            format!(
                "Entity {} is ENABLED; deregister it from WorkMail before deleting it",
                user.id
            ),
        )),
        UserState::Disabled => {
            ctx.app
                .store
                .delete_user(&user.id, ctx.app.clock.now_ms())
                .await
                .map_err(store_error)?;
            Ok(Empty {})
        }
    }
}
