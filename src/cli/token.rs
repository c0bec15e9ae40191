//! `workmail-pat token create`: a PAT without the web flow, printed once as JSON; `token secret`: a valid secret
//! for fixtures.

use super::{LogFormat, TokenCreateArgs, init_tracing, load_keys};
use crate::state::{AppState, Settings};

pub async fn create(args: TokenCreateArgs) -> Result<(), String> {
    let _log = init_tracing(LogFormat::Text);
    let store = args.store.open()?;
    let (token_key, pepper) = load_keys(&args.store)?;
    let app = AppState::new(store.clone(), &token_key, pepper, Settings::default());
    let org = store
        .find_organization(&args.organization_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("organization {} does not exist", args.organization_id))?;
    let user = store
        .find_user(&org.id, &args.user)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("user {} does not exist in {}", args.user, org.id))?;
    let scopes = (!args.scopes.is_empty()).then_some(args.scopes);
    let requester = crate::tokens::Requester::Operator;
    let created = crate::tokens::create_token(&app, &org, &user, requester, &args.name, scopes)
        .await
        .map_err(|e| match e {
            crate::tokens::SelfServiceError::Invalid(m)
            | crate::tokens::SelfServiceError::Forbidden(m)
            | crate::tokens::SelfServiceError::NotFound(m) => m,
            crate::tokens::SelfServiceError::Internal(e) => e.to_string(),
            other => format!("{other:?}"),
        })?;
    let json = serde_json::to_string(&crate::model::CreatedTokenOutput::new(
        &created.token,
        created.secret.expose(),
    ))
    .map_err(|e| e.to_string())?;
    println!("{json}");
    store.close().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Prints a fresh secret with a valid checksum, so seed files and fixtures can hold fixed secrets that `seed` and
/// the server accept.
pub fn secret() -> Result<(), String> {
    println!("{}", crate::secrets::PatSecret::generate().expose());
    Ok(())
}
