//! What an import did (or, in a dry run, would do): the JSON report (`--report FILE`) and its human summary.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::{EpochSeconds, PersonalAccessToken};

/// Counts of one kind of entity.
#[derive(Serialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Counts {
    /// Created in the target (in a dry run: would be).
    pub created: u64,
    /// Changed at the source since the last import and updated in the target (in a dry run: would be).
    pub updated: u64,
    /// Already in the target with the same content.
    pub unchanged: u64,
    /// Not imported (see `Skipped` for why).
    pub skipped: u64,
}

/// An entity not imported, and why.
#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Skip {
    pub entity: &'static str,
    pub id: String,
    pub reason: String,
}

/// An entity updated from the source (in a dry run: that would be), with the fields that changed there.
#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Update {
    pub entity: &'static str,
    pub id: String,
    pub fields: Vec<&'static str>,
}

/// An entity of the target that the source no longer lists (reported, never deleted).
#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Gone {
    pub entity: &'static str,
    pub id: String,
    pub name: String,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct UserRef {
    pub user_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub state: &'static str,
}

/// A token of the source, as GetPersonalAccessTokenMetadata describes it (its secret never leaves the source).
#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct TokenMetadata {
    pub personal_access_token_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub date_created: EpochSeconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_last_used: Option<EpochSeconds>,
    pub expires_time: EpochSeconds,
}

impl From<&PersonalAccessToken> for TokenMetadata {
    fn from(t: &PersonalAccessToken) -> Self {
        Self {
            personal_access_token_id: t.id.clone(),
            name: t.name.clone(),
            scopes: t.scopes.clone(),
            date_created: EpochSeconds(t.created_ms),
            date_last_used: t.last_used_ms.map(EpochSeconds),
            expires_time: EpochSeconds(t.expires_ms),
        }
    }
}

/// A user whose tokens stay behind and must be created anew.
#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct UserTokens {
    pub user_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub tokens: Vec<TokenMetadata>,
}

/// One organization of the source.
#[derive(Serialize, Debug, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct OrgReport {
    pub organization_id: String,
    pub alias: String,
    pub account: String,
    pub region: String,
    pub state: String,
    /// Per kind of entity: `Organization`, `MailDomain`, `DefaultMailDomain` (only ever skipped: it comes with the
    /// organization), `Configuration`, `User`, `Alias`, `Password`, `Token` (tokens only when a dump is restored; an
    /// import from WorkMail reports them in `TokensToRecreate`).
    pub counts: BTreeMap<&'static str, Counts>,
    pub updated: Vec<Update>,
    pub skipped: Vec<Skip>,
    pub deleted_at_source: Vec<Gone>,
    /// Users (not DELETED) who have no password in the target: the admin calls ResetPassword, or imports again
    /// with `--passwords-from`.
    pub users_without_password: Vec<UserRef>,
    pub tokens_to_recreate: Vec<UserTokens>,
    pub notes: Vec<String>,
}

impl OrgReport {
    pub fn count(&mut self, entity: &'static str) -> &mut Counts {
        self.counts.entry(entity).or_default()
    }

    pub fn skip(&mut self, entity: &'static str, id: &str, reason: impl Into<String>) {
        self.count(entity).skipped += 1;
        self.skipped.push(Skip {
            entity,
            id: id.to_string(),
            reason: reason.into(),
        });
    }

    pub fn update(&mut self, entity: &'static str, id: &str, fields: Vec<&'static str>) {
        self.count(entity).updated += 1;
        self.updated.push(Update {
            entity,
            id: id.to_string(),
            fields,
        });
    }

    pub fn token_count(&self) -> usize {
        self.tokens_to_recreate.iter().map(|u| u.tokens.len()).sum()
    }
}

#[derive(Serialize, Debug, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Report {
    pub dry_run: bool,
    /// Whether anything was (in a dry run: would be) written.
    pub changed: bool,
    pub organizations: Vec<OrgReport>,
    /// Organizations of the target, in the partitions imported into, that the source does not list (`--all` only).
    pub organizations_deleted_at_source: Vec<Gone>,
}

impl Report {
    pub fn skipped(&self) -> u64 {
        self.organizations
            .iter()
            .flat_map(|o| o.counts.values())
            .map(|c| c.skipped)
            .sum()
    }

    pub fn finish(&mut self) {
        self.changed = self
            .organizations
            .iter()
            .flat_map(|o| o.counts.values())
            .any(|c| c.created > 0 || c.updated > 0);
    }

    /// The human summary printed on stdout.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let verb = if self.dry_run { "would be " } else { "" };
        for o in &self.organizations {
            out.push_str(&format!(
                "organization {} ({}) in {}/{}, {}:\n",
                o.organization_id, o.alias, o.account, o.region, o.state
            ));
            for (entity, c) in &o.counts {
                out.push_str(&format!(
                    "  {entity}: {} {verb}created, {} {verb}updated, {} unchanged, {} skipped\n",
                    c.created, c.updated, c.unchanged, c.skipped
                ));
            }
            for u in &o.updated {
                out.push_str(&format!(
                    "  {}updated {} {}: {}\n",
                    if self.dry_run { "would be " } else { "" },
                    u.entity,
                    u.id,
                    u.fields.join(", ")
                ));
            }
            for s in &o.skipped {
                out.push_str(&format!("  skipped {} {}: {}\n", s.entity, s.id, s.reason));
            }
            for g in &o.deleted_at_source {
                out.push_str(&format!(
                    "  {} {} ({}) is no longer at the source (kept in the target)\n",
                    g.entity, g.id, g.name
                ));
            }
            if !o.users_without_password.is_empty() {
                out.push_str(&format!(
                    "  {} users have no password: ResetPassword, or import again with --passwords-from\n",
                    o.users_without_password.len()
                ));
            }
            if !o.tokens_to_recreate.is_empty() {
                out.push_str(&format!(
                    "  {} users must create {} tokens anew (the report lists them)\n",
                    o.tokens_to_recreate.len(),
                    o.token_count()
                ));
            }
            for n in &o.notes {
                out.push_str(&format!("  note: {n}\n"));
            }
        }
        for g in &self.organizations_deleted_at_source {
            out.push_str(&format!(
                "organization {} ({}) is no longer at the source (kept in the target)\n",
                g.id, g.name
            ));
        }
        let skipped = self.skipped();
        out.push_str(&match (self.dry_run, self.changed, skipped) {
            (true, _, _) => {
                format!("dry run: nothing was written; {skipped} entities would be skipped\n")
            }
            (false, false, 0) => {
                "nothing changed: the target already holds everything\n".to_string()
            }
            (false, false, n) => format!("nothing changed; {n} entities skipped\n"),
            (false, true, 0) => "imported everything\n".to_string(),
            (false, true, n) => format!("imported, but {n} entities were skipped\n"),
        });
        out
    }
}
