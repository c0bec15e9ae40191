//! `workmail-pat import`: the command around [`crate::import`]. Exit status: 0 when everything was imported, 2 when
//! some entities were skipped (the report says which and why), 1 on failure.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::{LogFormat, StoreArgs, init_tracing, load_keys};
use crate::domain::Organization;
use crate::import::engine::{Passwords, Target};
use crate::import::report::{OrgReport, Report};
use crate::import::workmail::{Progress, Selection, Source, SourceOptions};
use crate::secrets::Key32;
use crate::state::{AppState, Settings};

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The source's region (default: the AWS configuration chain: AWS_REGION, the profile).
    #[arg(long)]
    pub region: Option<String>,
    /// A named profile of the AWS configuration files.
    #[arg(long)]
    pub profile: Option<String>,
    /// Another endpoint speaking the WorkMail API (default: Amazon WorkMail of the region).
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// An organization to import (repeatable).
    #[arg(long = "organization-id", value_name = "ID")]
    pub organization_ids: Vec<String>,
    /// Import every organization the credentials can list.
    #[arg(long)]
    pub all: bool,
    /// Print the plan (creates, updates, skips and why) without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the JSON report here (counts, skipped entities and why, users without a password, the tokens each
    /// user must create anew).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// A CSV file of `user id or email,password` lines: those users get that password, checked as ResetPassword
    /// checks it. The file holds secrets: keep it private and delete it afterwards.
    #[arg(long, value_name = "FILE")]
    pub passwords_from: Option<PathBuf>,
    /// Most requests per second sent to the source (gentle on a production account).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_requests_per_second: u32,
    /// Attempts per request, throttled ones included (the SDK's standard retry, with backoff).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// A bar per organization on a terminal; plain lines on stderr otherwise.
struct Shown {
    terminal: bool,
    quiet: bool,
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl Shown {
    fn bar(&self) -> Option<indicatif::ProgressBar> {
        self.bar.lock().ok().and_then(|b| b.clone())
    }
}

impl Progress for Shown {
    fn organization(&self, org: &Organization) {
        if self.quiet {
            return;
        }
        if !self.terminal {
            eprintln!("importing organization {} ({})", org.id, org.alias);
            return;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} users ({per_sec})")
        {
            bar.set_style(style);
        }
        bar.set_message(format!("{} ({})", org.id, org.alias));
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn users(&self, done: u64) {
        if let Some(bar) = self.bar() {
            bar.set_position(done);
        } else if !self.quiet {
            eprintln!("  {done} users read");
        }
    }

    fn finished(&self, report: &OrgReport) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!(
                "organization {} done ({} skipped)",
                report.organization_id,
                report.skipped.len()
            );
        }
    }
}

fn open_app(store: &StoreArgs) -> Result<AppState, String> {
    let backend = store.open()?;
    // An import writes no token and no NextToken: a PostgreSQL target needs no key files (given, they are used).
    let (token_key, pepper) = if crate::store::is_postgres_url(&store.database)
        && (store.token_key_file.is_none() || store.pepper_file.is_none())
    {
        (Key32::random(), Key32::random())
    } else {
        load_keys(store)?
    };
    Ok(AppState::new(
        backend,
        &token_key,
        pepper,
        Settings::default(),
    ))
}

/// Runs the command; the exit status.
pub async fn run(args: ImportArgs) -> Result<i32, String> {
    let _log = init_tracing(LogFormat::Text);
    if args.organization_ids.is_empty() && !args.all {
        return Err(
            "name organizations with --organization-id ID (repeatable), or give --all".into(),
        );
    }
    let passwords = match &args.passwords_from {
        Some(path) => Passwords::parse(
            &std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?,
        None => Passwords::default(),
    };
    let app = open_app(&args.store)?;
    let source = Source::connect(&SourceOptions {
        region: args.region.clone(),
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
        max_requests_per_second: args.max_requests_per_second,
        max_attempts: args.max_attempts,
    })
    .await?;
    let target = Target {
        app: &app,
        dry_run: args.dry_run,
        passwords: &passwords,
    };
    let progress = Shown {
        terminal: std::io::stderr().is_terminal(),
        quiet: args.quiet,
        bar: std::sync::Mutex::new(None),
    };
    let selection = Selection {
        organization_ids: args.organization_ids.clone(),
        all: args.all,
    };
    let result = source.import(&selection, &target, &progress).await;
    let closed = app.store.close().await.map_err(|e| e.to_string());
    let report = result?;
    closed?;
    finish(&report, args.report.as_deref())
}

/// Prints the summary, writes the report; the exit status.
pub fn finish(report: &Report, path: Option<&std::path::Path>) -> Result<i32, String> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    print!("{}", report.summary());
    Ok(if report.skipped() > 0 { 2 } else { 0 })
}
