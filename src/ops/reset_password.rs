//! ResetPassword: replaces the user's password (stored only as an Argon2id hash) and signs the user out of the
//! web application everywhere.

use serde::Deserialize;

use super::create_user::{check_password_strength, hash_password};
use super::{Ctx, Reply, active_org, empty, resolve_live_user, store_error, validate};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    organization_id: Option<String>,
    user_id: Option<String>,
    password: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::workmail_identifier(&input.user_id, "UserId")?;
    let password = validate::required(&input.password, "Password")?;
    validate::password(password, "Password")?;
    active_org(ctx, org_id).await?;
    let user = resolve_live_user(ctx, org_id, ident).await?;
    check_password_strength(password)?;
    let hash = hash_password(password.clone()).await?;
    ctx.app
        .store
        .set_password(&user.id, &hash)
        .await
        .map_err(store_error)?;
    empty()
}
