//! CreateUser: a new directory user, DISABLED until RegisterToWorkMail (spec §6). The password is stored only as
//! an Argon2id hash (spec D8).

use serde::{Deserialize, Serialize};

use super::{Ctx, active_org, user_conflict, validate};
use crate::domain::{User, UserProfile, UserState};
use crate::error::{ErrorCode, ServiceError};

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub password: Option<String>,
    pub role: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub hidden_from_global_address_list: Option<bool>,
    pub identity_provider_user_id: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub user_id: String,
}

/// Roles a caller may set (SYSTEM_USER and RESOURCE are in the enum but may not be passed).
pub const SETTABLE_ROLES: &[&str] = &["USER", "REMOTE_USER"];
pub const ALL_ROLES: &[&str] = &["USER", "RESOURCE", "SYSTEM_USER", "REMOTE_USER"];

pub fn check_role(role: &Option<String>) -> Result<(), ServiceError> {
    if let Some(r) = role {
        validate::one_of(r, "Role", ALL_ROLES)?;
        if !SETTABLE_ROLES.contains(&r.as_str()) {
            return Err(ServiceError::invalid_parameter(format!(
                "Role {r} cannot be assigned"
            )));
        }
    }
    Ok(())
}

/// Hashes a password in the administration lane (Argon2id is deliberately slow); a full lane is a retryable
/// 503 `ServiceUnavailable`.
pub async fn hash_password(password: String) -> Result<String, ServiceError> {
    use crate::hashing::{HashingError, Lane, on_password_thread};
    on_password_thread(Lane::Admin, move || {
        crate::secrets::hash_password(&password)
    })
    .await
    .map_err(|e| match e {
        HashingError::Busy => ServiceError::new(
            ErrorCode::ServiceUnavailable,
            "Too many password operations are in progress. Please retry.",
        ),
        HashingError::Gone => ServiceError::internal(e),
    })?
    .map_err(ServiceError::internal)
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let name = validate::user_name(&input.name)?;
    let display_name = validate::required(&input.display_name, "DisplayName")?;
    validate::user_attribute(display_name, "DisplayName")?;
    if let Some(p) = &input.password {
        validate::password(p, "Password")?;
    }
    check_role(&input.role)?;
    validate::text_256(&input.first_name, "FirstName")?;
    validate::text_256(&input.last_name, "LastName")?;
    if let Some(idp) = &input.identity_provider_user_id {
        validate::identity_provider_user_id(idp, 1)?;
    }

    active_org(ctx, org_id).await?;
    validate::unreserved_user_name(name)?;
    let password_hash = match &input.password {
        Some(p) => {
            validate::strong_password(p)?;
            Some(hash_password(p.clone()).await?)
        }
        None => None,
    };
    let user = User {
        id: ctx.app.ids.guid(),
        org_id: org_id.to_string(),
        name: name.to_string(),
        email: None,
        state: UserState::Disabled,
        role: input.role.clone().unwrap_or_else(|| "USER".to_string()),
        profile: UserProfile {
            display_name: display_name.clone(),
            first_name: input.first_name.clone(),
            last_name: input.last_name.clone(),
            hidden_from_global_address_list: input.hidden_from_global_address_list.unwrap_or(false),
            ..UserProfile::default()
        },
        identity_provider_user_id: input.identity_provider_user_id.clone(),
        enabled_ms: None,
        disabled_ms: None,
        mailbox_provisioned_ms: None,
        mailbox_deprovisioned_ms: None,
        created_ms: ctx.app.clock.now_ms(),
        password_hash,
    };
    let mut user = user;
    let mut outcome = ctx.app.store.create_user(user.clone()).await;
    // A generated id can only collide when ids are seeded (test API); draw another rather than fail.
    for _ in 0..5 {
        if !matches!(
            outcome,
            Err(crate::store::StoreError::Conflict(
                crate::store::Conflict::Id
            ))
        ) {
            break;
        }
        user.id = ctx.app.ids.guid();
        outcome = ctx.app.store.create_user(user.clone()).await;
    }
    outcome.map_err(|e| user_conflict(e, name))?;
    Ok(Output { user_id: user.id })
}
