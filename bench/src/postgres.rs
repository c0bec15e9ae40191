//! The benchmark's PostgreSQL run: the SQLite store copied with `workmail-pat migrate` (binary COPY) into a fresh
//! database, served, and the [`CORE`] figures measured as ratios to SQLite's.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{
    Args, Basics, CORE, Req, core_requests, extra_server_args, measure, pinned, start_server,
};

/// Copies the SQLite store into a fresh PostgreSQL database (`workmail-pat migrate`: binary COPY), serves it and
/// measures the [`CORE`] figures, each printed with its ratio to the SQLite figure of this run.
pub async fn figures(
    args: &Args,
    server_bin: &Path,
    workdir: &Path,
    db: &Path,
    admin_url: &str,
    basics: &Basics,
    sqlite_rps: &[(String, f64)],
) -> Result<(), String> {
    const NAME: &str = "workmail_pat_bench";
    let psql = |sql: &str| -> Result<(), String> {
        let out = Command::new("psql")
            .args([admin_url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(format!(
                "psql: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    };
    psql(&format!("DROP DATABASE IF EXISTS {NAME} WITH (FORCE)"))?;
    psql(&format!("CREATE DATABASE {NAME}"))?;
    // The same server, another database: postgres://USER@HOST:PORT/workmail_pat_bench.
    let authority_end = admin_url
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| admin_url[start..].find(['/', '?']).map(|e| start + e))
        .unwrap_or(admin_url.len());
    let url = format!("{}/{NAME}", &admin_url[..authority_end]);
    let started = Instant::now();
    let out = Command::new(server_bin)
        .args(["migrate", "--quiet", "--to", &url, "--from"])
        .arg(format!("sqlite:{}", db.display()))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "migrate to PostgreSQL failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!();
    println!(
        "PostgreSQL ({}): store copied in {:.1} s",
        redact(&url),
        started.elapsed().as_secs_f64()
    );
    let mut extra = extra_server_args(server_bin);
    for (flag, suffix) in [
        ("--token-key-file", "token-key"),
        ("--pepper-file", "pepper"),
    ] {
        extra.push(flag.into());
        extra.push(format!("{}.{suffix}", db.display()));
    }
    let server = start_server(
        pinned(args, "0", server_bin),
        &url,
        &extra,
        &workdir.join("server-postgres.log"),
        Duration::from_secs(60),
    )
    .await?;
    let figures: Vec<(String, Vec<Req>)> = (0..CORE.len())
        .map(|i| (CORE[i].to_string(), core_requests(&server.addr, basics, i)))
        .collect();
    println!(
        "{:<52} {:>10} {:>8} {:>8} | {:>10}",
        "figure (PostgreSQL)", "req/s", "p50 ms", "p99 ms", "x SQLite"
    );
    for figure in &figures {
        let rows = measure(
            args,
            workdir,
            &server.addr,
            std::slice::from_ref(figure),
            false,
        )
        .await?;
        let sqlite = sqlite_rps
            .iter()
            .find(|(n, _)| *n == figure.0)
            .map_or(f64::NAN, |r| r.1);
        for (_, service, _) in rows {
            println!(" | {:>10.2}", service.rps() / sqlite);
        }
    }
    drop(server.guard);
    psql(&format!("DROP DATABASE IF EXISTS {NAME} WITH (FORCE)"))
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if url[s + 3..at].contains(':') => {
            let colon = s + 3 + url[s + 3..at].find(':').unwrap_or(0);
            format!("{}:***{}", &url[..colon], &url[at..])
        }
        _ => url.to_string(),
    }
}
