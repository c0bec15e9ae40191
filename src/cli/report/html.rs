//! `report --format html`: one self-contained page for an audit. Everything is in the file: the style sheet, the
//! charts (inline SVG drawn here) and the table; no script, no font, no image is fetched, and a
//! Content-Security-Policy says so to the browser. Charts read without colour: every bar carries its count as
//! text, and the bars that stand apart (expired, never used) are hatched or dotted as well as coloured.

use std::collections::HashMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{Criteria, DAY_MS, Row};
use crate::clock::Millis;
use crate::domain::PersonalAccessToken;
use crate::web::views::iso;

/// Users shown in the per-user chart.
pub const TOP_USERS: usize = 20;
/// Weeks of the expiry chart; tokens expiring later share one "later" bar.
const EXPIRY_WEEKS: usize = 53;
/// The most rows the table shows; the CSV format has them all.
const MAX_TABLE_ROWS: usize = 1000;

/// Upper bounds (days, inclusive) of the "time since last use" buckets; the last bucket is open.
const LAST_USE_BOUNDS: [i64; 5] = [7, 30, 90, 180, 365];
const LAST_USE_LABELS: [&str; 6] = [
    "0–7 days",
    "8–30 days",
    "31–90 days",
    "91–180 days",
    "181–365 days",
    "over 365 days",
];

/// Counts over every token of the organization.
#[derive(Debug, Default)]
pub struct Stats {
    pub total: u64,
    pub expired: u64,
    /// Live tokens by week of expiry from now (index 0: within 7 days).
    pub expiry_weeks: Vec<u64>,
    pub expiring_later: u64,
    pub last_use: [u64; 6],
    pub never_used: u64,
    pub per_user: HashMap<String, u64>,
}

impl Stats {
    pub fn add(&mut self, t: &PersonalAccessToken, now: Millis) {
        self.total += 1;
        if t.expires_ms <= now {
            self.expired += 1;
        } else {
            let week = usize::try_from((t.expires_ms - now) / (7 * DAY_MS)).unwrap_or(usize::MAX);
            if week < EXPIRY_WEEKS {
                if self.expiry_weeks.len() <= week {
                    self.expiry_weeks.resize(week + 1, 0);
                }
                self.expiry_weeks[week] += 1;
            } else {
                self.expiring_later += 1;
            }
        }
        match t.last_used_ms {
            None => self.never_used += 1,
            Some(used) => {
                let days = (now - used).max(0) / DAY_MS;
                let bucket = LAST_USE_BOUNDS
                    .iter()
                    .position(|&b| days <= b)
                    .unwrap_or(LAST_USE_BOUNDS.len());
                self.last_use[bucket] += 1;
            }
        }
        *self.per_user.entry(t.user_id.clone()).or_default() += 1;
    }

    /// The `n` users with the most tokens (ties by user id, so the order is stable).
    pub fn top_users(&self, n: usize) -> Vec<(String, u64)> {
        let mut users: Vec<(String, u64)> =
            self.per_user.iter().map(|(u, c)| (u.clone(), *c)).collect();
        users.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        users.truncate(n);
        users
    }
}

/// Everything the page shows.
pub struct Report<'a> {
    pub organization_id: &'a str,
    pub alias: &'a str,
    pub generated: String,
    pub now: Millis,
    pub criteria: Criteria,
    pub stats: &'a Stats,
    /// (username or user id, tokens), most first.
    pub top_users: &'a [(String, u64)],
    /// The selected tokens, most urgent first.
    pub rows: &'a [Row],
}

/// How a bar is filled; the fill pattern carries the meaning when colour does not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fill {
    Solid,
    Hatched,
    Dotted,
}

struct Bar {
    label: String,
    value: u64,
    fill: Fill,
    /// Extra space and a rule before this bar: it is shown apart from the ones above.
    apart: bool,
}

impl Bar {
    fn new(label: impl Into<String>, value: u64) -> Self {
        Self {
            label: label.into(),
            value,
            fill: Fill::Solid,
            apart: false,
        }
    }

    fn fill(mut self, fill: Fill) -> Self {
        self.fill = fill;
        self
    }

    fn apart(mut self) -> Self {
        self.apart = true;
        self
    }
}

// Geometry of a horizontal bar chart, in viewBox units. The SVG scales to the width of its column, which is about
// 330 to 380 px from a phone to a desktop's three columns, so 360 units keep the text close to its CSS size.
const WIDTH: u32 = 360;
const LABEL_WIDTH: u32 = 124;
const COUNT_WIDTH: u32 = 40;
const ROW: u32 = 22;
const BAR: u32 = 15;
const GAP_APART: u32 = 16;

/// Labels longer than this are cut (the full text stays in the bar's tooltip and the accessible name).
const MAX_LABEL_CHARS: usize = 17;

fn short(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_string()
    } else {
        let cut: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// A horizontal bar chart: a label, a bar and its count on each row.
fn bar_chart(id: &str, title: &str, description: &str, bars: &[Bar]) -> Markup {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let track = WIDTH - LABEL_WIDTH - COUNT_WIDTH;
    let height = bars
        .iter()
        .map(|b| ROW + if b.apart { GAP_APART } else { 0 })
        .sum::<u32>()
        + 8;
    let total: u64 = bars.iter().map(|b| b.value).sum();
    let mut y = 4;
    html! {
        svg.chart role="img" viewBox=(format!("0 0 {WIDTH} {height}"))
            aria-labelledby=(format!("{id}-title {id}-desc")) data-total=(total) {
            title id=(format!("{id}-title")) { (title) }
            desc id=(format!("{id}-desc")) { (description) }
            defs {
                pattern id=(format!("{id}-hatch")) width="6" height="6" patternUnits="userSpaceOnUse"
                    patternTransform="rotate(45)" {
                    rect width="6" height="6" fill="#fde8e8" {}
                    line x1="0" y1="0" x2="0" y2="6" stroke="#9b1c1c" stroke-width="3" {}
                }
                pattern id=(format!("{id}-dots")) width="6" height="6" patternUnits="userSpaceOnUse" {
                    rect width="6" height="6" fill="#f1f1f1" {}
                    circle cx="3" cy="3" r="1.6" fill="#444" {}
                }
            }
            @for bar in bars {
                @let top = { if bar.apart { y += GAP_APART; } let t = y; y += ROW; t };
                @let length = if bar.value == 0 { 0 } else {
                    ((u64::from(track) * bar.value).div_ceil(max)).max(2) as u32
                };
                @let fill = match bar.fill {
                    Fill::Solid => "#2f5d8a".to_string(),
                    Fill::Hatched => format!("url(#{id}-hatch)"),
                    Fill::Dotted => format!("url(#{id}-dots)"),
                };
                @let kind = match bar.fill { Fill::Solid => "solid", Fill::Hatched => "hatched", Fill::Dotted => "dotted" };
                g.bar data-label=(bar.label) data-value=(bar.value) data-fill=(kind) {
                    title { (bar.label) ": " (bar.value) " token" @if bar.value != 1 { "s" } }
                    @if bar.apart {
                        line x1="0" x2=(WIDTH) y1=(top - GAP_APART / 2) y2=(top - GAP_APART / 2)
                            stroke="#999" stroke-dasharray="4 3" {}
                    }
                    text.label x=(LABEL_WIDTH - 8) y=(top + BAR - 3) text-anchor="end" { (short(&bar.label)) }
                    rect x=(LABEL_WIDTH) y=(top) width=(length) height=(BAR) fill=(fill)
                        stroke=(if bar.fill == Fill::Solid { "none" } else { "#333" }) stroke-width="1" {}
                    text.count x=(LABEL_WIDTH + length + 5) y=(top + BAR - 3) { (bar.value) }
                }
            }
        }
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn expiry_chart(r: &Report) -> Markup {
    let s = r.stats;
    let mut bars = vec![Bar::new("Expired", s.expired).fill(Fill::Hatched)];
    for (week, count) in s.expiry_weeks.iter().enumerate() {
        let start = r.now + week as i64 * 7 * DAY_MS;
        bars.push(Bar::new(iso(start)[..10].to_string(), *count));
    }
    if s.expiring_later > 0 {
        bars.push(Bar::new("Later", s.expiring_later));
    }
    let weeks = s.expiry_weeks.len();
    html! {
        figure.card data-chart="expiry-weeks" {
            h2 { "Tokens by expiry week" }
            (bar_chart("expiry", "Tokens by expiry week",
                &format!("{} already expired (hatched bar); the other bars count live tokens by the week, starting on the date shown, in which they expire.", plural(s.expired, "token has", "tokens have")),
                &bars))
            figcaption {
                "Each bar is a week starting on the date shown (" (weeks) " week" @if weeks != 1 { "s" } " from today). "
                span.key.key-hatched { "Hatched" } ": already expired."
            }
        }
    }
}

fn last_use_chart(r: &Report) -> Markup {
    let s = r.stats;
    let mut bars: Vec<Bar> = LAST_USE_LABELS
        .iter()
        .zip(s.last_use)
        .map(|(label, count)| Bar::new(*label, count))
        .collect();
    bars.push(
        Bar::new("Never used", s.never_used)
            .fill(Fill::Dotted)
            .apart(),
    );
    html! {
        figure.card data-chart="last-use" {
            h2 { "Tokens by time since last use" }
            (bar_chart("lastuse", "Tokens by time since last use",
                &format!("Tokens by days since they were last used; {} never used, shown apart below the dashed line (dotted bar).", plural(s.never_used, "token was", "tokens were")),
                &bars))
            figcaption {
                "Days since a token last signed in. "
                span.key.key-dotted { "Dotted" } ", below the line: never used."
            }
        }
    }
}

fn user_chart(r: &Report) -> Markup {
    let bars: Vec<Bar> = r
        .top_users
        .iter()
        .map(|(name, count)| Bar::new(name.clone(), *count))
        .collect();
    let users = r.stats.per_user.len();
    html! {
        figure.card data-chart="per-user" {
            h2 { "Tokens per user" }
            @if bars.is_empty() {
                p { "No tokens." }
            } @else {
                (bar_chart("users", "Tokens per user",
                    &format!("The {} users with the most tokens, most first.", bars.len()), &bars))
            }
            figcaption {
                @if users > TOP_USERS { "The " (TOP_USERS) " users with the most tokens, of " (users) " holding any." }
                @else { (plural(users as u64, "user holds", "users hold")) " tokens." }
            }
        }
    }
}

fn criteria_text(c: Criteria) -> String {
    let mut parts = vec!["already expired".to_string()];
    if let Some(d) = c.expiring_within_days {
        parts.push(format!(
            "expiring within {}",
            plural(u64::from(d), "day", "days")
        ));
    }
    if let Some(d) = c.unused_for_days {
        parts.push(format!(
            "not used for more than {}",
            plural(u64::from(d), "day", "days")
        ));
    }
    if c.expiring_within_days.is_none() {
        parts.remove(0);
    }
    parts.join(", or ")
}

fn table(r: &Report) -> Markup {
    let shown = &r.rows[..r.rows.len().min(MAX_TABLE_ROWS)];
    html! {
        section.card #attention {
            h2 { "Tokens that need attention" }
            p { "Tokens " (criteria_text(r.criteria)) ": " strong { (r.rows.len()) } ", most urgent first." }
            @if shown.len() < r.rows.len() {
                p.note { "The first " (shown.len()) " are shown; "
                    code { "workmail-pat report --format csv" } " lists them all." }
            }
            @if r.rows.is_empty() {
                p { "None." }
            } @else {
                table #tokens data-rows=(r.rows.len()) {
                    thead { tr {
                        th scope="col" { "User" } th scope="col" { "Token" } th scope="col" { "Scopes" }
                        th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Expires" }
                        th scope="col" { "Why" }
                    } }
                    tbody {
                        @for row in shown {
                            tr {
                                td data-label="User" { div {
                                    (row.username.as_deref().unwrap_or("(deleted user)"))
                                    br; span.id { (row.user_id) }
                                } }
                                td data-label="Token" { div { (row.name) br; span.id { (row.personal_access_token_id) } } }
                                td data-label="Scopes" { div { (row.scopes.join(" ")) } }
                                td data-label="Created" { div { (&row.date_created[..10]) } }
                                td data-label="Last used" { div {
                                    @match &row.date_last_used { Some(d) => (d[..10]), None => em { "never" } }
                                } }
                                td data-label="Expires" { div {
                                    (&row.expires_time[..10]) br;
                                    span.days {
                                        @if row.expires_in_days < 0 { (-row.expires_in_days) " days ago" }
                                        @else { "in " (row.expires_in_days) " days" }
                                    }
                                } }
                                td data-label="Why" { div {
                                    @for reason in &row.reasons {
                                        span class=(format!("badge badge-{}", reason.to_ascii_lowercase())) { (reason) } " "
                                    }
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn summary(r: &Report) -> Markup {
    let s = r.stats;
    let count = |reason: &str| {
        r.rows
            .iter()
            .filter(|row| row.reasons.contains(&reason))
            .count()
    };
    html! {
        ul.summary {
            li data-stat="total" { strong { (s.total) } " tokens" }
            li data-stat="expired" { strong { (s.expired) } " expired" }
            @if let Some(d) = r.criteria.expiring_within_days {
                li data-stat="expiring" { strong { (count("EXPIRING")) } " expiring within " (d) " days" }
            }
            @if let Some(d) = r.criteria.unused_for_days {
                li data-stat="unused" { strong { (count("UNUSED")) } " unused for " (d) "+ days" }
            }
            li data-stat="never-used" { strong { (s.never_used) } " never used" }
        }
    }
}

const CSS: &str = r#"
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1b1f24;background:#f4f5f7}
main{max-width:1200px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:1.6rem;margin:0 0 4px}
h2{font-size:1.1rem;margin:0 0 10px}
.meta{margin:0 0 16px;color:#4a5260}
.meta dt{display:inline;font-weight:600}
.meta dd{display:inline;margin:0 14px 0 4px;overflow-wrap:anywhere}
.summary{list-style:none;padding:0;margin:0 0 20px;display:flex;flex-wrap:wrap;gap:10px}
.summary li{background:#fff;border:1px solid #d5d9e0;border-radius:8px;padding:8px 14px}
.summary strong{font-size:1.3rem;margin-right:4px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,320px),1fr));gap:16px;margin-bottom:16px}
.card{background:#fff;border:1px solid #d5d9e0;border-radius:8px;padding:16px;margin:0;min-width:0}
.chart{display:block;width:100%;height:auto}
.chart text{font-size:12.5px;fill:#1b1f24}
.chart .count{font-weight:600}
figcaption{font-size:.85rem;color:#4a5260;margin-top:8px}
.key{font-weight:600;padding:0 4px;border:1px solid #333}
.key-hatched{background:repeating-linear-gradient(45deg,#fff 0 4px,#f0caca 4px 6px)}
.key-dotted{background:radial-gradient(circle,#aaa .8px,#fff 1.2px) 0 0/6px 6px}
.note{color:#4a5260}
table{width:100%;border-collapse:collapse;font-size:.9rem}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid #e2e5ea}
th{background:#eef0f3;font-weight:600}
.id{font:12px/1.3 ui-monospace,"DejaVu Sans Mono",monospace;color:#4a5260;overflow-wrap:anywhere}
.days{color:#4a5260;font-size:.85em}
.badge{display:inline-block;border:1px solid;border-radius:4px;padding:0 5px;font-size:.75rem;font-weight:700;letter-spacing:.03em}
.badge-expired{color:#9b1c1c;background:#fde8e8}
.badge-expiring{color:#8a5300;background:#fff4d6;border-style:dashed}
.badge-unused{color:#364152;background:#eef0f3;border-style:dotted}
td{overflow-wrap:anywhere}
@media (max-width:760px){
 main{padding:16px 12px 32px}
 h1{font-size:1.35rem}
 table,thead,tbody,tr,td{display:block}
 thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
 tr{border:1px solid #d5d9e0;border-radius:6px;margin-bottom:10px;padding:4px 0}
 td{border:0;padding:3px 10px;display:grid;grid-template-columns:6em minmax(0,1fr);gap:8px}
 td::before{content:attr(data-label);font-weight:600;color:#4a5260}
}
@media print{body{background:#fff}.card{border-color:#999;break-inside:avoid}}
"#;

/// The whole page.
pub fn render(r: &Report) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // The file is opened from disk: forbid every fetch, so nothing it shows can leak or go missing.
                meta http-equiv="Content-Security-Policy"
                    content="default-src 'none'; style-src 'unsafe-inline'; img-src data:";
                title { "Token audit: " (r.alias) }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    h1 { "Personal access token audit: " (r.alias) }
                    dl.meta {
                        dt { "Organization" } dd { code { (r.organization_id) } }
                        dt { "Generated" } dd { (r.generated) }
                    }
                    (summary(r))
                    div.charts {
                        (expiry_chart(r))
                        (last_use_chart(r))
                        (user_chart(r))
                    }
                    (table(r))
                }
            }
        }
    };
    page.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(user: &str, last_used: Option<Millis>, expires: Millis) -> PersonalAccessToken {
        PersonalAccessToken {
            id: "id".into(),
            org_id: "m-1".into(),
            user_id: user.into(),
            name: "n".into(),
            scopes: vec!["IMAP".into()],
            created_ms: 0,
            last_used_ms: last_used,
            expires_ms: expires,
        }
    }

    const NOW: Millis = 1_000 * DAY_MS;

    #[test]
    fn stats_bucket_expiry_last_use_and_users() {
        let mut s = Stats::default();
        s.add(&token("a", None, NOW - 1), NOW);
        s.add(&token("a", Some(NOW - 3 * DAY_MS), NOW + DAY_MS), NOW);
        s.add(&token("b", Some(NOW - 8 * DAY_MS), NOW + 15 * DAY_MS), NOW);
        s.add(
            &token("b", Some(NOW - 400 * DAY_MS), NOW + 400 * DAY_MS),
            NOW,
        );
        s.add(&token("c", None, NOW + 7 * DAY_MS), NOW);
        assert_eq!(s.total, 5);
        assert_eq!(s.expired, 1);
        assert_eq!(s.expiry_weeks, vec![1, 1, 1]);
        assert_eq!(s.expiring_later, 1);
        assert_eq!(s.last_use, [1, 1, 0, 0, 0, 1]);
        assert_eq!(s.never_used, 2);
        assert_eq!(
            s.top_users(2),
            vec![("a".to_string(), 2), ("b".to_string(), 2)]
        );
    }

    #[test]
    fn page_is_self_contained_and_escapes_names() {
        let mut s = Stats::default();
        s.add(&token("u", None, NOW - 1), NOW);
        let row = Row {
            personal_access_token_id: "t".into(),
            user_id: "u".into(),
            username: Some("<b>alice</b>".into()),
            name: "<script>alert(1)</script>".into(),
            scopes: vec!["IMAP".into()],
            date_created: iso(0),
            date_last_used: None,
            expires_time: iso(NOW - 1),
            expires_in_days: -1,
            reasons: vec!["EXPIRED"],
        };
        let page = render(&Report {
            organization_id: "m-1",
            alias: "acme",
            generated: iso(NOW),
            now: NOW,
            criteria: Criteria {
                expiring_within_days: Some(30),
                unused_for_days: Some(90),
            },
            stats: &s,
            top_users: &[("<b>alice</b>".into(), 1)],
            rows: &[row],
        });
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<b>alice"));
        // Inline SVG in HTML needs no namespace URL: the page names no URL at all.
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert_eq!(page.matches("role=\"img\"").count(), 3);
    }
}
