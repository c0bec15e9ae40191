//! How a personal access token is shown: the seven members of `PersonalAccessTokenSummary` (also the output of
//! GetPersonalAccessTokenMetadata and of the web page's list), and the one-time answer to a token creation.

use serde::{Serialize, Serializer};

use crate::domain::{EpochSeconds, PersonalAccessToken};

/// `PersonalAccessTokenSummary`, borrowing the token it shows. It is defined beside the stored type
/// (`domain::PersonalAccessToken::summary_json` is its one encoder) because the store keeps every token's summary
/// in this wire form.
pub use crate::domain::PatSummary;

/// A token in an output: serialises as its [`PatSummary`] and owns the token, so an operation can return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSummary(pub PersonalAccessToken);

impl Serialize for TokenSummary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PatSummary::from(&self.0).serialize(serializer)
    }
}

/// The one-time answer to a token creation (the web page's API and `workmail-pat token create`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreatedTokenOutput<'a> {
    pub personal_access_token_id: &'a str,
    pub token: &'a str,
    pub name: &'a str,
    pub date_created: EpochSeconds,
    pub expires_time: EpochSeconds,
    pub scopes: &'a [String],
}

impl<'a> CreatedTokenOutput<'a> {
    /// The token and its secret, which is shown exactly once.
    pub fn new(token: &'a PersonalAccessToken, secret: &'a str) -> Self {
        CreatedTokenOutput {
            personal_access_token_id: &token.id,
            token: secret,
            name: &token.name,
            date_created: EpochSeconds(token.created_ms),
            expires_time: EpochSeconds(token.expires_ms),
            scopes: &token.scopes,
        }
    }
}
