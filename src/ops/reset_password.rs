//! ResetPassword: replaces the user's password (stored only as an Argon2id hash) and signs the user out of the
//! web application everywhere.

use serde::Deserialize;

use super::create_user::hash_password;
use super::{Ctx, Empty, active_org, resolve_live_user, store_error, validate};
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<String>,
}

pub type Output = Empty;

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::workmail_identifier(&input.user_id, "UserId")?;
    let password = validate::required(&input.password, "Password")?;
    validate::password(password, "Password")?;
    active_org(ctx, org_id).await?;
    let user = resolve_live_user(ctx, org_id, ident).await?;
    validate::strong_password(password)?;
    let hash = hash_password(password.clone()).await?;
    ctx.app
        .store
        .set_password(&user.id, &hash)
        .await
        .map_err(store_error)?;
    Ok(Empty {})
}
