//! The page's HTML, written with maud: markup is checked at compile time and every interpolated value is
//! HTML-escaped, so names typed by users cannot inject markup. No inline scripts or styles (the CSP forbids them).

use maud::{DOCTYPE, Markup, html};
use time::UtcDateTime;

use crate::clock::Millis;
use crate::domain::PersonalAccessToken;

use super::session::CSRF_FIELD;

const DAY_MS: Millis = 86_400_000;
/// Tokens expiring within this many days are marked "Expires soon".
pub const SOON_DAYS: i64 = 7;

/// Who is signed in, for the header's "Sign out" control.
pub struct Viewer<'a> {
    pub display: &'a str,
    pub csrf: &'a str,
}

fn layout(title: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · WorkMail personal access tokens" }
                link rel="icon" href="/webapp/static/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/webapp/static/app.css";
                script src="/webapp/static/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.wrap.top-inner {
                        span.brand { "WorkMail · Personal access tokens" }
                        @if let Some(v) = viewer {
                            div.who {
                                span.who-name { "Signed in as " strong { (v.display) } }
                                form method="post" action="/webapp/sign-out" {
                                    input type="hidden" name=(CSRF_FIELD) value=(v.csrf);
                                    button.secondary type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main.wrap id="main" tabindex="-1" { (body) }
            }
        }
    }
}

fn alert(kind: &str, text: &str) -> Markup {
    // role=alert is announced at once by screen readers; plain notices use the politer role=status.
    let role = if kind == "error" { "alert" } else { "status" };
    html! { div class={ "msg msg-" (kind) } role=(role) { (text) } }
}

/// The sign-in form. `org_id` and `username` are refilled after a failure; the password never is.
pub fn sign_in(error: Option<&str>, notice: Option<&str>, org_id: &str, username: &str) -> Markup {
    let body = html! {
        section.card.narrow aria-labelledby="signin-title" {
            h1 id="signin-title" { "Sign in" }
            p.lead { "Sign in with your email address and WorkMail directory password to manage your personal access tokens." }
            @if let Some(e) = error { (alert("error", e)) }
            @if let Some(n) = notice { (alert("notice", n)) }
            form method="post" action="/webapp/sign-in" {
                div.field {
                    label for="username" { "Email address" }
                    input id="username" name="username" type="text" required autocomplete="username"
                        spellcheck="false" autocapitalize="none" maxlength="256" value=(username)
                        autofocus[username.is_empty()];
                }
                div.field {
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" required
                        autocomplete="current-password" maxlength="1024"
                        autofocus[!username.is_empty()];
                }
                // Only a username without a domain needs the organization: an address's domain names it.
                details.field open[!org_id.is_empty()] {
                    summary { "Signing in with a username instead?" }
                    label for="organization_id" { "Organization ID" }
                    input id="organization_id" name="organization_id" type="text"
                        autocomplete="organization" spellcheck="false" autocapitalize="none"
                        maxlength="64" value=(org_id) placeholder="m-…";
                }
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    layout("Sign in", None, body)
}

/// A token created just now, whose secret this one response shows.
pub struct Created<'a> {
    pub name: &'a str,
    pub secret: &'a str,
}

/// Everything the signed-in page shows.
pub struct Dashboard<'a> {
    pub viewer: Viewer<'a>,
    /// `Err(reason)` when the organization does not allow self-service tokens (INACTIVE, not configured…).
    pub availability: Result<(), &'a str>,
    pub tokens: &'a [PersonalAccessToken],
    pub now_ms: Millis,
    /// Scopes offered as checkboxes, and which of them start checked.
    pub offered_scopes: &'a [String],
    pub checked_scopes: &'a [String],
    pub created: Option<Created<'a>>,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    /// The Name field's value after a refused create.
    pub name_value: &'a str,
    /// The session's password entry is old: creating a token asks for the password again.
    pub reauthenticate: bool,
}

pub fn dashboard(d: &Dashboard<'_>) -> Markup {
    let csrf = d.viewer.csrf;
    let body = html! {
        h1 { "Personal access tokens" }
        p.lead { "Mail apps that cannot use your password (IMAP, SMTP) sign in with a personal access token instead. "
                 "Revoke a token as soon as you stop using it." }
        @if let Some(e) = d.error { (alert("error", e)) }
        @if let Some(n) = d.notice { (alert("notice", n)) }
        @if let Some(c) = &d.created {
            section.card.created aria-labelledby="created-title" {
                h2 id="created-title" { "Your new token “" (c.name) "”" }
                p.warning role="alert" {
                    strong { "Copy this token now. " }
                    "It will not be shown again: once you leave or reload this page it cannot be recovered."
                }
                div.secret-row {
                    label.visually-hidden for="new-token-secret" { "New token secret" }
                    input id="new-token-secret" type="text" readonly value=(c.secret)
                        spellcheck="false" autocomplete="off" autofocus;
                    button.primary id="copy-secret" type="button" data-copy-target="new-token-secret" hidden {
                        "Copy"
                    }
                }
                p.copy-status id="copy-status" role="status" aria-live="polite" {}
            }
        }
        @match d.availability {
            Err(reason) => {
                section.card.blocked aria-labelledby="blocked-title" {
                    h2 id="blocked-title" { "Personal access tokens are unavailable" }
                    p { (reason) "." }
                    p { "You cannot create, see or revoke tokens until your administrator turns personal access "
                        "tokens on (status ACTIVE) for your organization." }
                }
            }
            Ok(()) => {
                section.card aria-labelledby="create-title" {
                    h2 id="create-title" { "Create a token" }
                    form.create method="post" action="/webapp/tokens" {
                        input type="hidden" name=(CSRF_FIELD) value=(csrf);
                        div.field {
                            label for="token-name" { "Name" }
                            input id="token-name" name="name" type="text" required maxlength="64"
                                value=(d.name_value) aria-describedby="token-name-help" autocomplete="off";
                            p.help id="token-name-help" { "What the token is for, e.g. “Thunderbird on laptop”." }
                        }
                        fieldset.field {
                            legend { "Scopes" }
                            div.scopes {
                                @for s in d.offered_scopes {
                                    label.check {
                                        input type="checkbox" name="scope" value=(s)
                                            checked[d.checked_scopes.contains(s)];
                                        " " (s)
                                    }
                                }
                            }
                        }
                        @if d.reauthenticate {
                            div.field {
                                label for="current-password" { "Your password" }
                                input id="current-password" name="password" type="password" required
                                    autocomplete="current-password" maxlength="1024"
                                    aria-describedby="current-password-help";
                                p.help id="current-password-help" {
                                    "You signed in a while ago: confirm it is you before creating a token." }
                            }
                        }
                        button.primary type="submit" { "Create" }
                    }
                }
                section.card aria-labelledby="list-title" {
                    h2 id="list-title" { "Your tokens" }
                    @if d.tokens.is_empty() {
                        p.empty { "You have no personal access tokens." }
                    } @else {
                        (token_table(d.tokens, d.now_ms, csrf))
                    }
                }
            }
        }
    };
    layout("Your tokens", Some(&d.viewer), body)
}

fn token_table(tokens: &[PersonalAccessToken], now_ms: Millis, csrf: &str) -> Markup {
    html! {
        table.tokens {
            caption.visually-hidden { "Your personal access tokens" }
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Scopes" } th scope="col" { "Created" }
                th scope="col" { "Last used" } th scope="col" { "Expires" }
                th scope="col" { span.visually-hidden { "Actions" } }
            } }
            tbody {
                @for t in tokens {
                    tr data-token-id=(t.id) {
                        th scope="row" data-label="Name" { (t.name) }
                        td data-label="Scopes" { (t.scopes.join(", ")) }
                        td data-label="Created" { (time(t.created_ms)) }
                        td.last-used data-label="Last used" {
                            @match t.last_used_ms { Some(ms) => (time(ms)), None => span.muted { "never" } }
                        }
                        td data-label="Expires" { (expiry(t.expires_ms, now_ms)) }
                        td.actions {
                            form.revoke method="post" action={ "/webapp/tokens/" (t.id) "/revoke" }
                                data-token-name=(t.name) {
                                input type="hidden" name=(CSRF_FIELD) value=(csrf);
                                input type="hidden" name="confirmed" value="";
                                button.danger type="submit" aria-label={ "Revoke " (t.name) } { "Revoke" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The expiry cell: the date, how far away it is, and a mark for expired or soon-expiring tokens.
fn expiry(expires_ms: Millis, now_ms: Millis) -> Markup {
    let left = expires_ms - now_ms;
    html! {
        (time(expires_ms))
        br;
        @if left <= 0 {
            span.badge.badge-expired { "Expired" }
            " " span.muted { (days_phrase(-left, true)) }
        } @else {
            span.muted { (days_phrase(left, false)) }
            @if left <= SOON_DAYS * DAY_MS { " " span.badge.badge-soon { "Expires soon" } }
        }
    }
}

/// "expires in 12 days" / "expired 3 days ago", rounded so that a token never shows "in 0 days" while valid.
pub fn days_phrase(ms: Millis, past: bool) -> String {
    if past {
        match ms / DAY_MS {
            0 => "expired today".into(),
            1 => "expired 1 day ago".into(),
            n => format!("expired {n} days ago"),
        }
    } else {
        match (ms + DAY_MS - 1) / DAY_MS {
            1 if ms < DAY_MS => "expires in less than a day".into(),
            1 => "expires in 1 day".into(),
            n => format!("expires in {n} days"),
        }
    }
}

fn time(ms: Millis) -> Markup {
    html! { time datetime=(iso(ms)) { (human(ms)) } }
}

/// Confirmation page for revoking without JavaScript (with it, the browser's confirm dialog asks instead).
pub fn confirm_revoke(viewer: &Viewer<'_>, token: &PersonalAccessToken) -> Markup {
    let body = html! {
        section.card.narrow aria-labelledby="confirm-title" {
            h1 id="confirm-title" { "Revoke “" (token.name) "”?" }
            p { "Apps that use this token stop working at once. This cannot be undone." }
            form method="post" action={ "/webapp/tokens/" (token.id) "/revoke" } {
                input type="hidden" name=(CSRF_FIELD) value=(viewer.csrf);
                input type="hidden" name="confirmed" value="yes";
                div.buttons {
                    button.danger type="submit" { "Revoke" }
                    // Focus starts on the harmless choice, so a stray Enter does not revoke.
                    a.button.secondary href="/webapp/" autofocus { "Cancel" }
                }
            }
        }
    };
    layout("Revoke token", Some(viewer), body)
}

/// A refusal page (CSRF failure, cross-site form, bad input) with a way back.
pub fn message(title: &str, text: &str) -> Markup {
    let body = html! {
        section.card.narrow aria-labelledby="msg-title" {
            h1 id="msg-title" { (title) }
            (alert("error", text))
            p { a href="/webapp/" { "Back to your tokens" } }
        }
    };
    layout(title, None, body)
}

/// `2026-12-02T02:22:00Z`
pub fn iso(ms: Millis) -> String {
    let t = utc(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2026-12-02 02:22 UTC`
pub fn human(ms: Millis) -> String {
    let t = utc(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// The UTC calendar time of an epoch-milliseconds time, to the second. Times outside the years -9999..=9999 (only an
/// absurd stored date gets there) show as the nearest end of that range rather than fail.
fn utc(ms: Millis) -> UtcDateTime {
    let secs = ms.div_euclid(1000);
    UtcDateTime::from_unix_timestamp(secs).unwrap_or(if secs < 0 {
        UtcDateTime::MIN
    } else {
        UtcDateTime::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        // 2024-02-29 12:34:56 UTC (a leap day).
        assert_eq!(iso(1_709_210_096_000), "2024-02-29T12:34:56Z");
        assert_eq!(human(1_709_210_096_999), "2024-02-29 12:34 UTC");
        assert_eq!(iso(-1000), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn day_phrases_round_sensibly() {
        assert_eq!(days_phrase(1, false), "expires in less than a day");
        assert_eq!(days_phrase(DAY_MS, false), "expires in 1 day");
        assert_eq!(days_phrase(DAY_MS + 1, false), "expires in 2 days");
        assert_eq!(days_phrase(90 * DAY_MS, false), "expires in 90 days");
        assert_eq!(days_phrase(5, true), "expired today");
        assert_eq!(days_phrase(3 * DAY_MS + 5, true), "expired 3 days ago");
    }

    #[test]
    fn user_text_is_escaped() {
        let page = sign_in(Some("<b>x</b>"), None, "\"><script>", "u");
        let html = page.into_string();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"));
    }
}
