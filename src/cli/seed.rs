//! `workmail-pat seed` (a seed file, or `--generate N` for a large synthetic store) and `workmail-pat dump`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{LogFormat, StoreArgs, init_tracing, load_keys};
use crate::domain::Partition;
use crate::seed::{DEFAULT_REGION, GenerateSpec};
use crate::state::{AppState, Settings};

#[derive(Args, Debug)]
pub struct SeedArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The seed file (YAML or JSON). Generated secrets are printed once in the JSON report.
    #[arg(conflicts_with = "generate", required_unless_present = "generate")]
    pub file: Option<PathBuf>,
    /// Build a synthetic store of N tokens (10 organizations, one user per 10 tokens) through the bulk path.
    #[arg(long, value_name = "N")]
    pub generate: Option<u64>,
    /// With --generate: how many users (default: one per 10 tokens).
    #[arg(long, requires = "generate")]
    pub users: Option<u64>,
    /// With --generate: how many organizations (default: 10).
    #[arg(long, requires = "generate")]
    pub organizations: Option<u64>,
    /// Account of generated data.
    #[arg(long, default_value = crate::auth::DEFAULT_ACCOUNT)]
    pub account: String,
    /// Region of generated data.
    #[arg(long, default_value = DEFAULT_REGION)]
    pub region: String,
    /// With --generate: write a sample of the generated secrets (`organization-id,username,secret` lines) here,
    /// for benchmarks of verification. The file is created with mode 0600.
    #[arg(long, requires = "generate")]
    pub secrets_out: Option<PathBuf>,
    /// How many secrets --secrets-out keeps.
    #[arg(long, default_value_t = 1000, requires = "secrets_out")]
    pub secrets_sample: usize,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

fn open_app(store: &StoreArgs) -> Result<AppState, String> {
    let backend = store.open()?;
    let (token_key, pepper) = load_keys(store)?;
    Ok(AppState::new(
        backend,
        &token_key,
        pepper,
        Settings::default(),
    ))
}

pub async fn run(args: SeedArgs) -> Result<(), String> {
    let _log = init_tracing(LogFormat::Text);
    let app = open_app(&args.store)?;
    if let Some(n) = args.generate {
        if n == 0 {
            return Err("--generate needs at least 1 token".into());
        }
        if args.account.len() != 12 || !args.account.bytes().all(|b| b.is_ascii_digit()) {
            return Err("--account must be 12 digits".into());
        }
        let mut spec = GenerateSpec::new(
            n,
            Partition {
                account: args.account.clone(),
                region: args.region.clone(),
            },
        );
        if let Some(users) = args.users {
            spec.users = users.max(1);
        }
        if let Some(orgs) = args.organizations {
            spec.organizations = orgs.clamp(1, spec.users);
        }
        let bar = if args.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(n)
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} tokens ({per_sec}, eta {eta})",
            )
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
        );
        let started = std::time::Instant::now();
        let sample = if args.secrets_out.is_some() {
            args.secrets_sample
        } else {
            0
        };
        let samples =
            crate::seed::generate(&app, &spec, sample, |done| bar.set_position(done)).await?;
        bar.finish_and_clear();
        if let Some(path) = &args.secrets_out {
            let mut text = String::new();
            for s in &samples {
                text.push_str(&format!(
                    "{},{},{}\n",
                    s.organization_id, s.user_name, s.secret
                ));
            }
            write_private(path, &text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        println!(
            "{}",
            serde_json::json!({
                "Tokens": n,
                "Organizations": spec.organizations,
                "Users": spec.users,
                "Seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            })
        );
    } else if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if let Some(dump) = crate::import::dump::parse(&text)? {
            return restore(&app, &dump).await;
        }
        let file = crate::seed::parse(&text)?;
        let report = crate::seed::apply(&app, &file).await?;
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    }
    app.store.close().await.map_err(|e| e.to_string())
}

/// Restores a `dump` file with its ids (through the import's plan and writes); prints the import report with the
/// fresh secrets of the restored tokens.
async fn restore(app: &AppState, dump: &crate::import::dump::Dump) -> Result<(), String> {
    let passwords = crate::import::engine::Passwords::default();
    let target = crate::import::engine::Target {
        app,
        dry_run: false,
        passwords: &passwords,
    };
    let result = crate::import::dump::restore(dump, &target).await;
    let closed = app.store.close().await.map_err(|e| e.to_string());
    let (report, secrets) = result?;
    closed?;
    if report.skipped() > 0 {
        eprint!("{}", report.summary());
        return Err(format!(
            "{} entities of the dump were not restored (see above)",
            report.skipped()
        ));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "Restored": report,
            "NewTokenSecrets": secrets,
        }))
        .map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Writes a file readable only by its owner (it holds secrets).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())
}

pub async fn dump(args: DumpArgs) -> Result<(), String> {
    let _log = init_tracing(LogFormat::Text);
    let app = open_app(&args.store)?;
    let state = crate::seed::dump(&app).await?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &state).map_err(|e| e.to_string())?;
    writeln!(out).map_err(|e| e.to_string())?;
    Ok(())
}
