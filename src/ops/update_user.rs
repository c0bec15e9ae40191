//! UpdateUser: changes only the members given; a DELETED user cannot be updated (spec D7).

use serde::Deserialize;

use super::create_user::check_role;
use super::{Ctx, Empty, active_org, resolve_live_user, store_error, validate};
use crate::domain::UserUpdate;
use crate::error::ServiceError;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    pub role: Option<String>,
    pub display_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub hidden_from_global_address_list: Option<bool>,
    pub initials: Option<String>,
    pub telephone: Option<String>,
    pub street: Option<String>,
    pub job_title: Option<String>,
    pub city: Option<String>,
    pub company: Option<String>,
    pub zip_code: Option<String>,
    pub department: Option<String>,
    pub country: Option<String>,
    pub office: Option<String>,
    pub identity_provider_user_id: Option<String>,
}

pub type Output = Empty;

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let ident = validate::entity_identifier(&input.user_id, "UserId")?;
    check_role(&input.role)?;
    for (value, field) in [
        (&input.display_name, "DisplayName"),
        (&input.first_name, "FirstName"),
        (&input.last_name, "LastName"),
        (&input.initials, "Initials"),
        (&input.telephone, "Telephone"),
        (&input.street, "Street"),
        (&input.job_title, "JobTitle"),
        (&input.city, "City"),
        (&input.company, "Company"),
        (&input.zip_code, "ZipCode"),
        (&input.department, "Department"),
        (&input.country, "Country"),
        (&input.office, "Office"),
    ] {
        validate::text_256(value, field)?;
    }
    if let Some(idp) = &input.identity_provider_user_id {
        validate::identity_provider_user_id(idp, 0)?;
    }
    active_org(ctx, org_id).await?;
    let user = resolve_live_user(ctx, org_id, ident).await?;
    let update = UserUpdate {
        role: input.role,
        display_name: input.display_name,
        first_name: input.first_name,
        last_name: input.last_name,
        initials: input.initials,
        telephone: input.telephone,
        street: input.street,
        job_title: input.job_title,
        city: input.city,
        company: input.company,
        zip_code: input.zip_code,
        department: input.department,
        country: input.country,
        office: input.office,
        hidden_from_global_address_list: input.hidden_from_global_address_list,
        // An empty string clears the link (spec §7.8).
        identity_provider_user_id: input
            .identity_provider_user_id
            .map(|v| if v.is_empty() { None } else { Some(v) }),
    };
    ctx.app
        .store
        .update_user(&user.id, update)
        .await
        .map_err(store_error)?;
    Ok(Empty {})
}
