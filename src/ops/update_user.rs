//! UpdateUser: changes only the members given; a DELETED user cannot be updated (spec D7).

use serde::Deserialize;

use super::create_user::check_role;
use super::{Ctx, Reply, active_org, empty, resolve_live_user, store_error, validate};
use crate::domain::UserUpdate;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    organization_id: Option<String>,
    user_id: Option<String>,
    role: Option<String>,
    display_name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    hidden_from_global_address_list: Option<bool>,
    initials: Option<String>,
    telephone: Option<String>,
    street: Option<String>,
    job_title: Option<String>,
    city: Option<String>,
    company: Option<String>,
    zip_code: Option<String>,
    department: Option<String>,
    country: Option<String>,
    office: Option<String>,
    identity_provider_user_id: Option<String>,
}

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Reply {
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
    empty()
}
