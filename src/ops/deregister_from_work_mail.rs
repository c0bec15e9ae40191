//! DeregisterFromWorkMail: the user becomes DISABLED and its email address is released; already DISABLED is a
//! no-op, DELETED is an EntityStateException.

use serde::Deserialize;

use super::{Ctx, Empty, active_org, resolve_user, store_error, user_deleted, validate};
use crate::domain::UserState;
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub entity_id: Option<String>,
}

pub type Output = Empty;

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::entity_identifier(&input.entity_id, "EntityId")?;
    active_org(ctx, org_id).await?;
    let user = resolve_user(ctx, org_id, ident).await?;
    match user.state {
        UserState::Deleted => Err(user_deleted(&user)),
        UserState::Disabled => Ok(Empty {}),
        UserState::Enabled => {
            ctx.app
                .store
                .deregister_user(&user.id, ctx.app.clock.now_ms())
                .await
                .map_err(store_error)?;
            Ok(Empty {})
        }
    }
}
