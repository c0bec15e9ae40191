//! `workmail-pat report`: an audit list of an organization's tokens that expire soon or have not been used for a
//! long time, read straight from the store (no server needed, no secrets involved).
//!
//! Selection: with neither `--expiring-within` nor `--unused-for` every token is listed (an inventory). Otherwise
//! a token is listed when it matches any given criterion:
//! - `--expiring-within D`: it expires within D days from now, or has already expired (expired tokens keep working
//!   for nobody but still exist until deleted, which is exactly what an audit wants to see);
//! - `--unused-for D`: it was last used more than D days ago, or was never used and is older than D days (a token
//!   created an hour ago is not "unused for 90 days").
//!
//! Each row carries its reasons (`EXPIRED`, `EXPIRING`, `UNUSED`) so one report can serve both questions.
//!
//! `--format html` ([`html`]) is the report people look at: charts of the whole organization (by expiry week, by
//! time since last use, per user) drawn as inline SVG, and the table of tokens that need attention.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use clap::{Args, ValueEnum};

use crate::clock::{Clock, Millis};
use crate::domain::{Cursor, PersonalAccessToken};
use crate::store::Store;
use crate::web::views::iso;

mod html;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    /// One self-contained HTML file: inline SVG charts and the table, no scripts, nothing fetched.
    Html,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Database URL; the database must already exist.
    #[arg(long, env = "WORKMAIL_PAT_DATABASE", hide_env_values = true)]
    pub database: String,
    /// PostgreSQL only: a file holding the database password, used when the URL has none (as for `serve`).
    #[arg(long, env = "WORKMAIL_PAT_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<std::path::PathBuf>,
    /// The organization to report on (`m-…`).
    #[arg(long)]
    pub organization_id: String,
    /// List tokens that expire within this many days (already expired ones included).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub expiring_within: Option<u32>,
    /// List tokens not used for this many days (never-used tokens count from their creation).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub unused_for: Option<u32>,
    /// Output format. `html` without criteria uses `--expiring-within 30 --unused-for 90` for its table.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The table criteria of an HTML report when none are given (an audit page, not an inventory).
const HTML_DEFAULT_EXPIRING_WITHIN: u32 = 30;
const HTML_DEFAULT_UNUSED_FOR: u32 = 90;

const DAY_MS: Millis = 86_400_000;
/// Rows fetched per store call while walking the organization's tokens.
const PAGE: usize = 500;

/// One reported token.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Row {
    pub personal_access_token_id: String,
    pub user_id: String,
    /// The owner's username (`None` if the user no longer resolves).
    pub username: Option<String>,
    pub name: String,
    pub scopes: Vec<String>,
    pub date_created: String,
    pub date_last_used: Option<String>,
    pub expires_time: String,
    /// Whole days until expiry, rounded down; negative once expired.
    pub expires_in_days: i64,
    pub reasons: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy)]
pub struct Criteria {
    pub expiring_within_days: Option<u32>,
    pub unused_for_days: Option<u32>,
}

/// The reasons a token is reported, or `None` when the criteria leave it out.
pub fn reasons(t: &PersonalAccessToken, c: Criteria, now: Millis) -> Option<Vec<&'static str>> {
    let mut out = Vec::new();
    let expired = t.expires_ms <= now;
    if expired {
        out.push("EXPIRED");
    }
    let expiring = c
        .expiring_within_days
        .is_some_and(|d| !expired && t.expires_ms <= now + i64::from(d) * DAY_MS);
    if expiring {
        out.push("EXPIRING");
    }
    let unused = c.unused_for_days.is_some_and(|d| {
        let limit = now - i64::from(d) * DAY_MS;
        t.last_used_ms.unwrap_or(t.created_ms) < limit
    });
    if unused {
        out.push("UNUSED");
    }
    let selected = match (c.expiring_within_days, c.unused_for_days) {
        (None, None) => true,
        (e, _) => (e.is_some() && (expired || expiring)) || unused,
    };
    selected.then_some(out)
}

/// Builds the report rows for an organization.
pub async fn build(
    store: &dyn Store,
    org_id: &str,
    criteria: Criteria,
    now: Millis,
) -> Result<Vec<Row>, String> {
    let selected = select(store, org_id, criteria, now, |_| {}).await?;
    let mut names = UserNames::default();
    to_rows(store, org_id, selected, &mut names, now).await
}

/// Walks every token of an organization (each one shown to `each`) and keeps the ones the criteria select, with
/// their reasons.
async fn select(
    store: &dyn Store,
    org_id: &str,
    criteria: Criteria,
    now: Millis,
    mut each: impl FnMut(&PersonalAccessToken),
) -> Result<Vec<(PersonalAccessToken, Vec<&'static str>)>, String> {
    let mut selected = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = store
            .list_personal_access_tokens(org_id, None, after.clone(), PAGE)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some(Cursor {
            created_ms: last.created_ms,
            id: last.id.clone(),
        });
        let full = page.len() == PAGE;
        for t in page {
            each(&t);
            if let Some(why) = reasons(&t, criteria, now) {
                selected.push((t, why));
            }
        }
        if !full {
            break;
        }
    }
    Ok(selected)
}

/// Usernames by user id, each looked up once (`None` if the user no longer resolves).
#[derive(Default)]
struct UserNames(HashMap<String, Option<String>>);

impl UserNames {
    async fn get(
        &mut self,
        store: &dyn Store,
        org_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, String> {
        if !self.0.contains_key(user_id) {
            let user = store
                .find_user(org_id, user_id)
                .await
                .map_err(|e| e.to_string())?;
            self.0.insert(user_id.to_string(), user.map(|u| u.name));
        }
        Ok(self.0.get(user_id).cloned().flatten())
    }
}

async fn to_rows(
    store: &dyn Store,
    org_id: &str,
    selected: Vec<(PersonalAccessToken, Vec<&'static str>)>,
    names: &mut UserNames,
    now: Millis,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::with_capacity(selected.len());
    for (t, why) in selected {
        rows.push(Row {
            username: names.get(store, org_id, &t.user_id).await?,
            personal_access_token_id: t.id,
            user_id: t.user_id,
            name: t.name,
            scopes: t.scopes,
            date_created: iso(t.created_ms),
            date_last_used: t.last_used_ms.map(iso),
            expires_time: iso(t.expires_ms),
            expires_in_days: (t.expires_ms - now).div_euclid(DAY_MS),
            reasons: why,
        });
    }
    Ok(rows)
}

const HEADERS: [&str; 10] = [
    "TOKEN ID",
    "USER ID",
    "USERNAME",
    "NAME",
    "SCOPES",
    "CREATED",
    "LAST USED",
    "EXPIRES",
    "EXPIRES IN DAYS",
    "REASONS",
];

fn fields(r: &Row) -> [String; 10] {
    [
        r.personal_access_token_id.clone(),
        r.user_id.clone(),
        r.username.clone().unwrap_or_default(),
        r.name.clone(),
        r.scopes.join(" "),
        r.date_created.clone(),
        r.date_last_used.clone().unwrap_or_else(|| "never".into()),
        r.expires_time.clone(),
        r.expires_in_days.to_string(),
        r.reasons.join(" "),
    ]
}

/// Aligned columns for a terminal.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 10]> = rows.iter().map(fields).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&HEADERS.map(String::from));
    for row in &cells {
        out.push_str(&line(row));
    }
    out.push_str(&format!("{} token(s)\n", rows.len()));
    out
}

/// RFC 4180 CSV. Text cells that a spreadsheet would run as a formula (token names are user-chosen) get a leading
/// `'`; plain integers (the day counts) stay numbers.
pub fn csv(rows: &[Row]) -> String {
    fn cell(text: &str) -> String {
        let formula =
            text.starts_with(['=', '+', '-', '@', '\t', '\r']) && text.parse::<i64>().is_err();
        let text = if formula {
            format!("'{text}")
        } else {
            text.to_string()
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    }
    let mut out = String::new();
    let header: Vec<String> = HEADERS
        .iter()
        .map(|h| h.to_ascii_lowercase().replace(' ', "_"))
        .collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for r in rows {
        let line: Vec<String> = fields(r).iter().map(|c| cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct JsonReport<'a> {
    organization_id: &'a str,
    generated_time: String,
    expiring_within_days: Option<u32>,
    unused_for_days: Option<u32>,
    personal_access_tokens: &'a [Row],
}

pub async fn run(args: ReportArgs) -> Result<(), String> {
    // An audit must never create an empty database by mistake (opening a SQLite path creates the file).
    if let Some(path) = crate::store::key_file_base(&args.database)
        && !path.exists()
    {
        return Err(format!("database file {} does not exist", path.display()));
    }
    let store = crate::store::open_with(
        &args.database,
        &crate::store::postgres::PostgresOptions {
            password_file: args.database_password_file.clone(),
            ..Default::default()
        },
    )?;
    let result = report(&*store, &args).await;
    let closed = store.close().await.map_err(|e| e.to_string());
    let text = result?;
    closed?;
    use std::io::Write;
    match &args.output {
        Some(path) => std::fs::write(path, text.as_bytes())
            .map_err(|e| format!("cannot write the report to {}: {e}", path.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write the report: {e}"))
        }
    }
}

async fn report(store: &dyn Store, args: &ReportArgs) -> Result<String, String> {
    let org = store
        .find_organization(&args.organization_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("organization {} does not exist", args.organization_id))?;
    let criteria = Criteria {
        expiring_within_days: args.expiring_within,
        unused_for_days: args.unused_for,
    };
    let now = Clock::real_now_ms();
    if args.format == ReportFormat::Html {
        let criteria =
            if criteria.expiring_within_days.is_none() && criteria.unused_for_days.is_none() {
                Criteria {
                    expiring_within_days: Some(HTML_DEFAULT_EXPIRING_WITHIN),
                    unused_for_days: Some(HTML_DEFAULT_UNUSED_FOR),
                }
            } else {
                criteria
            };
        return html_report(store, &org, criteria, now).await;
    }
    let rows = build(store, &args.organization_id, criteria, now).await?;
    Ok(match args.format {
        ReportFormat::Table => table(&rows),
        ReportFormat::Csv => csv(&rows),
        ReportFormat::Json | ReportFormat::Html => {
            let report = JsonReport {
                organization_id: &args.organization_id,
                generated_time: iso(now),
                expiring_within_days: args.expiring_within,
                unused_for_days: args.unused_for,
                personal_access_tokens: &rows,
            };
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n"
        }
    })
}

/// The HTML report: statistics over every token of the organization, rows for the selected ones.
async fn html_report(
    store: &dyn Store,
    org: &crate::domain::Organization,
    criteria: Criteria,
    now: Millis,
) -> Result<String, String> {
    let mut stats = html::Stats::default();
    let selected = select(store, &org.id, criteria, now, |t| stats.add(t, now)).await?;
    let mut names = UserNames::default();
    let mut rows = to_rows(store, &org.id, selected, &mut names, now).await?;
    // Most urgent first: expired, then soonest to expire.
    rows.sort_by(|a, b| {
        (a.expires_in_days, &a.personal_access_token_id)
            .cmp(&(b.expires_in_days, &b.personal_access_token_id))
    });
    let mut top_users = Vec::new();
    for (user_id, count) in stats.top_users(html::TOP_USERS) {
        let name = names.get(store, &org.id, &user_id).await?;
        top_users.push((name.unwrap_or(user_id), count));
    }
    Ok(html::render(&html::Report {
        organization_id: &org.id,
        alias: &org.alias,
        generated: iso(now),
        now,
        criteria,
        stats: &stats,
        top_users: &top_users,
        rows: &rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(created: Millis, last_used: Option<Millis>, expires: Millis) -> PersonalAccessToken {
        PersonalAccessToken {
            id: "id".into(),
            org_id: "m-1".into(),
            user_id: "u".into(),
            name: "n".into(),
            scopes: vec!["IMAP".into()],
            created_ms: created,
            last_used_ms: last_used,
            expires_ms: expires,
        }
    }

    const NOW: Millis = 1_000 * DAY_MS;

    #[test]
    fn without_criteria_everything_is_listed() {
        let c = Criteria {
            expiring_within_days: None,
            unused_for_days: None,
        };
        assert_eq!(
            reasons(&token(NOW, None, NOW + 100 * DAY_MS), c, NOW),
            Some(vec![])
        );
        assert_eq!(
            reasons(&token(0, None, NOW - 1), c, NOW),
            Some(vec!["EXPIRED"])
        );
    }

    #[test]
    fn expiring_within_selects_soon_and_expired_only() {
        let c = Criteria {
            expiring_within_days: Some(30),
            unused_for_days: None,
        };
        assert_eq!(
            reasons(&token(0, None, NOW + 30 * DAY_MS), c, NOW),
            Some(vec!["EXPIRING"])
        );
        assert_eq!(
            reasons(&token(0, None, NOW + 30 * DAY_MS + 1), c, NOW),
            None
        );
        assert_eq!(reasons(&token(0, None, NOW), c, NOW), Some(vec!["EXPIRED"]));
    }

    #[test]
    fn unused_for_counts_never_used_tokens_from_creation() {
        let c = Criteria {
            expiring_within_days: None,
            unused_for_days: Some(90),
        };
        let far = NOW + 365 * DAY_MS;
        assert_eq!(reasons(&token(NOW - DAY_MS, None, far), c, NOW), None);
        assert_eq!(
            reasons(&token(NOW - 91 * DAY_MS, None, far), c, NOW),
            Some(vec!["UNUSED"])
        );
        assert_eq!(
            reasons(&token(0, Some(NOW - 10 * DAY_MS), far), c, NOW),
            None
        );
        assert_eq!(
            reasons(&token(0, Some(NOW - 91 * DAY_MS), far), c, NOW),
            Some(vec!["UNUSED"])
        );
        // An expired token that is not unused is not listed by --unused-for alone.
        assert_eq!(
            reasons(&token(0, Some(NOW - DAY_MS), NOW - 1), c, NOW),
            None
        );
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let row = Row {
            personal_access_token_id: "t".into(),
            user_id: "u".into(),
            username: Some("alice".into()),
            name: "=HYPERLINK(\"x\",1)".into(),
            scopes: vec!["IMAP".into(), "SMTP".into()],
            date_created: "c".into(),
            date_last_used: None,
            expires_time: "e".into(),
            expires_in_days: -3,
            reasons: vec!["EXPIRED"],
        };
        let text = csv(&[row]);
        let line = text.lines().nth(1).unwrap();
        assert!(line.contains(r#""'=HYPERLINK(""x"",1)""#), "{line}");
        assert!(line.contains(",never,"));
        assert!(line.contains(",-3,"), "day counts stay numbers: {line}");
        assert!(text.starts_with("token_id,user_id,username,name,"));
    }
}
