//! `workmail-pat domain verify`: marks a registered mail domain VERIFIED (with `--domain-verification manual`, a
//! domain stays PENDING until the operator does this).

use clap::{Args, Subcommand};

use super::{LogFormat, StoreArgs, init_tracing};

#[derive(Subcommand, Debug)]
pub enum DomainCommand {
    /// Mark a registered domain VERIFIED (ownership and DKIM), as if its DNS records had been found.
    Verify(DomainVerifyArgs),
}

#[derive(Args, Debug)]
pub struct DomainVerifyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The organization the domain is registered to.
    #[arg(long)]
    pub organization_id: String,
    /// The domain name (any case; an IDNA domain in either form).
    pub domain: String,
}

pub async fn verify(args: DomainVerifyArgs) -> Result<(), String> {
    let _log = init_tracing(LogFormat::Text);
    let store = args.store.open()?;
    let outcome =
        crate::ops::mark_domain_verified(&*store, &args.organization_id, &args.domain).await;
    store.close().await.map_err(|e| e.to_string())?;
    let domain = outcome?;
    println!(
        "{}",
        serde_json::json!({
            "OrganizationId": args.organization_id,
            "DomainName": domain,
            "OwnershipVerificationStatus": "VERIFIED",
            "DkimVerificationStatus": "VERIFIED",
        })
    );
    Ok(())
}
