//! The WorkMail operations: one file per operation, each with its wire `Input`, its typed `Output` and
//! `handle(ctx, Input) -> Result<Output, ServiceError>` (validate → act). [`dispatch`] decodes a JSON body into the
//! operation's input and serialises its output: the only place operations meet bytes. Operations never touch
//! HTTP; `protocol` turns bodies and errors into responses, and `seed` calls `handle` directly with typed inputs.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::{Organization, Partition, User, UserState};
use crate::error::{ErrorCode, ServiceError};
use crate::model::{ConstraintError, Kind};
use crate::state::AppState;
use crate::store::{Conflict, StoreError};

/// The model's constraints, under the name operations use; their errors become AWS errors through `From`.
pub use crate::model::constraints as validate;

pub mod create_alias;
pub mod create_organization;
pub mod create_user;
pub mod delete_alias;
pub mod delete_identity_provider_configuration;
pub mod delete_organization;
pub mod delete_personal_access_token;
pub mod delete_user;
pub mod deregister_from_work_mail;
pub mod deregister_mail_domain;
pub mod describe_identity_provider_configuration;
pub mod describe_organization;
pub mod describe_user;
pub mod get_mail_domain;
pub mod get_personal_access_token_metadata;
pub mod list_aliases;
pub mod list_mail_domains;
pub mod list_organizations;
pub mod list_personal_access_tokens;
pub mod list_users;
mod mail_rules;
pub mod put_identity_provider_configuration;
pub mod register_mail_domain;
pub mod register_to_work_mail;
pub mod reset_password;
pub mod update_default_mail_domain;
pub mod update_primary_email_address;
pub mod update_user;

pub use mail_rules::mark_domain_verified;

/// What an operation runs with.
pub struct Ctx<'a> {
    pub app: &'a AppState,
    pub partition: Partition,
}

/// A successful response body (JSON).
pub type Reply = Result<Vec<u8>, ServiceError>;

/// The output of an operation without output members: `{}`.
#[derive(Serialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Empty {}

macro_rules! operations {
    ($($name:ident => $module:ident),+ $(,)?) => {
        /// Every supported operation, named exactly as in the `X-Amz-Target` header.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Operation { $($name),+ }

        impl Operation {
            pub const ALL: &'static [Operation] = &[$(Operation::$name),+];

            pub fn name(self) -> &'static str {
                match self { $(Operation::$name => stringify!($name)),+ }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $(stringify!($name) => Some(Operation::$name),)+ _ => None }
            }
        }

        /// Runs one operation on a raw JSON body: decode the input, handle it, encode the output.
        pub async fn dispatch(op: Operation, ctx: &Ctx<'_>, body: &[u8]) -> Reply {
            match op { $(Operation::$name => $module::handle(ctx, decode(body)?).await?.into_body()),+ }
        }
    };
}

operations! {
    CreateOrganization => create_organization,
    DescribeOrganization => describe_organization,
    ListOrganizations => list_organizations,
    DeleteOrganization => delete_organization,
    CreateUser => create_user,
    DescribeUser => describe_user,
    ListUsers => list_users,
    UpdateUser => update_user,
    DeleteUser => delete_user,
    RegisterToWorkMail => register_to_work_mail,
    DeregisterFromWorkMail => deregister_from_work_mail,
    ResetPassword => reset_password,
    PutIdentityProviderConfiguration => put_identity_provider_configuration,
    DescribeIdentityProviderConfiguration => describe_identity_provider_configuration,
    DeleteIdentityProviderConfiguration => delete_identity_provider_configuration,
    ListPersonalAccessTokens => list_personal_access_tokens,
    GetPersonalAccessTokenMetadata => get_personal_access_token_metadata,
    DeletePersonalAccessToken => delete_personal_access_token,
    RegisterMailDomain => register_mail_domain,
    DeregisterMailDomain => deregister_mail_domain,
    GetMailDomain => get_mail_domain,
    ListMailDomains => list_mail_domains,
    UpdateDefaultMailDomain => update_default_mail_domain,
    CreateAlias => create_alias,
    DeleteAlias => delete_alias,
    ListAliases => list_aliases,
    UpdatePrimaryEmailAddress => update_primary_email_address,
}

/// Parses a request body into an operation's input. An empty body counts as `{}` (Smithy: servers must accept it);
/// anything that is not a JSON object of the right member types is a `SerializationException`.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ServiceError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ServiceError::new(
            ErrorCode::SerializationException,
            "The request body must be a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ServiceError::new(
            ErrorCode::SerializationException,
            format!(
                "Could not parse the request body: {}",
                serde_error_summary(&e)
            ),
        )
    })
}

/// serde's message without echoing values (they may be passwords): the kind of problem and where.
fn serde_error_summary(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Syntax | Category::Eof => "malformed JSON",
        Category::Data => "a member has the wrong type or shape",
        Category::Io => "read error",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// Serialises an output structure straight to bytes (no intermediate tree).
pub fn encode<T: Serialize>(output: &T) -> Reply {
    serde_json::to_vec(output).map_err(ServiceError::internal)
}

/// A value that breaks the model's rules, as AWS reports it: `InvalidParameterException` naming the member (never
/// its value), `InvalidPasswordException` for a weak password, `ReservedNameException` for a reserved name.
impl From<ConstraintError> for ServiceError {
    fn from(e: ConstraintError) -> Self {
        match e.kind {
            Kind::Invalid => {
                ServiceError::invalid_parameter(format!("1 validation error detected: {e}"))
            }
            Kind::NextToken => ServiceError::invalid_parameter(e.rule),
            Kind::WeakPassword => ServiceError::new(ErrorCode::InvalidPasswordException, e.rule),
            Kind::Reserved => ServiceError::new(ErrorCode::ReservedNameException, e.rule),
        }
    }
}

/// Maps a store failure: conflicts the caller must name explicitly are handled before this; anything else is an
/// internal error, logged and hidden.
#[track_caller]
pub fn store_error(e: StoreError) -> ServiceError {
    match e {
        // The database is unreachable right now: a retryable 503, logged but never detailed to the caller.
        StoreError::Unavailable(detail) => {
            tracing::warn!(%detail, "store unavailable");
            ServiceError::new(
                ErrorCode::ServiceUnavailable,
                "The service is temporarily unavailable. Please retry.",
            )
        }
        other => ServiceError::internal(other),
    }
}

/// The organization if it exists in the caller's (account, region); any state.
pub async fn visible_org(ctx: &Ctx<'_>, org_id: &str) -> Result<Organization, ServiceError> {
    ctx.app
        .store
        .get_organization(&ctx.partition, org_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ServiceError::organization_not_found(org_id))
}

/// The organization, which must be Active (spec D1).
pub async fn active_org(ctx: &Ctx<'_>, org_id: &str) -> Result<Organization, ServiceError> {
    let org = visible_org(ctx, org_id).await?;
    if !org.is_active() {
        return Err(org_not_active(&org));
    }
    Ok(org)
}

/// The same check as [`active_org`], reading only the organization's state (the read paths that need nothing else).
pub async fn check_active_org(ctx: &Ctx<'_>, org_id: &str) -> Result<(), ServiceError> {
    let state = ctx
        .app
        .store
        .get_organization_state(&ctx.partition, org_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ServiceError::organization_not_found(org_id))?;
    if state != crate::domain::org_state::ACTIVE {
        return Err(ServiceError::new(
            ErrorCode::OrganizationStateException,
            format!("Organization {org_id} is not Active, state: {state}"),
        ));
    }
    Ok(())
}

/// An operation's answer already encoded as JSON by the store (pages of stored summaries): dispatch sends its bytes
/// as they are.
#[derive(Debug)]
pub struct RawJson(pub Vec<u8>);

/// How an operation's output becomes the response body: serialised, or sent as the store encoded it.
pub trait IntoBody {
    fn into_body(self) -> Reply;
}

impl<T: Serialize> IntoBody for T {
    fn into_body(self) -> Reply {
        encode(&self)
    }
}

impl IntoBody for RawJson {
    fn into_body(self) -> Reply {
        Ok(self.0)
    }
}

/// `OrganizationStateException` in the form real AWS uses.
pub fn org_not_active(org: &Organization) -> ServiceError {
    ServiceError::new(
        ErrorCode::OrganizationStateException,
        format!(
            "Organization {} is not Active, state: {}",
            org.id, org.state
        ),
    )
}

/// Resolves a user id, username or email (spec D7).
pub async fn resolve_user(ctx: &Ctx<'_>, org_id: &str, ident: &str) -> Result<User, ServiceError> {
    ctx.app
        .store
        .find_user(org_id, ident)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ServiceError::entity_not_found(ident))
}

/// Resolves a user who must not be DELETED (spec D7).
pub async fn resolve_live_user(
    ctx: &Ctx<'_>,
    org_id: &str,
    ident: &str,
) -> Result<User, ServiceError> {
    let user = resolve_user(ctx, org_id, ident).await?;
    if user.state == UserState::Deleted {
        return Err(user_deleted(&user));
    }
    Ok(user)
}

pub fn user_deleted(user: &User) -> ServiceError {
    deleted_entity(&user.id)
}

fn deleted_entity(id: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::EntityStateException,
        format!("Entity {id} is in state DELETED"),
    )
}

/// [`resolve_live_user`] reading only the user's id and state (filters that need nothing else).
pub async fn resolve_live_user_id(
    ctx: &Ctx<'_>,
    org_id: &str,
    ident: &str,
) -> Result<String, ServiceError> {
    let (id, state) = ctx
        .app
        .store
        .find_user_key(org_id, ident)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ServiceError::entity_not_found(ident))?;
    if state == UserState::Deleted {
        return Err(deleted_entity(&id));
    }
    Ok(id)
}

/// Maps a uniqueness conflict on a user write.
pub fn user_conflict(e: StoreError, name: &str) -> ServiceError {
    match e {
        StoreError::Conflict(Conflict::UserName) => ServiceError::new(
            ErrorCode::NameAvailabilityException,
            format!("User name {name} is already in use"),
        ),
        StoreError::Conflict(Conflict::Email) => ServiceError::new(
            ErrorCode::EmailAddressInUseException,
            "The email address is already in use",
        ),
        other => store_error(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_round_trips_its_name() {
        assert_eq!(Operation::ALL.len(), 27);
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(*op));
        }
        assert_eq!(Operation::from_name("CreateGroup"), None);
        assert_eq!(Operation::from_name("listPersonalAccessTokens"), None);
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[allow(dead_code)]
        max_results: Option<i64>,
    }

    #[test]
    fn decode_rejects_non_objects_and_wrong_types() {
        for body in [
            &b"[]"[..],
            b"\"x\"",
            b"3",
            b"{",
            b"{\"MaxResults\":\"10\"}",
            b"null",
        ] {
            let e = decode::<In>(body).unwrap_err();
            assert_eq!(e.code, ErrorCode::SerializationException, "{body:?}");
        }
        assert!(decode::<In>(b"").is_ok());
        assert!(decode::<In>(b"  {\"MaxResults\": 5} ").is_ok());
        let e = decode::<In>(b"{\"MaxResults\":\"hunter2\"}").unwrap_err();
        assert!(!e.message.contains("hunter2"));
    }
}
