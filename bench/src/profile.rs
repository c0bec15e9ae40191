//! Instructions and allocations per request, counted by valgrind's callgrind on a fixed number of requests (they
//! are stable on a shared, noisy machine where throughput is not, and this machine's CPU exposes no hardware
//! counters to `perf stat`).
//!
//! For each figure the server runs under callgrind on the benchmark's store and answers the requests it will count
//! once (the warm-up: caches, statement preparation, the first use of each token); then the counters are zeroed
//! (`callgrind_control -z`), `--profile-requests` requests of the warm set are answered and the counters are dumped
//! (`callgrind_control -d`): the totals divided by the request count are the cost of one warm request. Allocations
//! are the calls from the program to the allocator's entry points: Rust's (`__rust_alloc`, `__rust_alloc_zeroed`,
//! `__rust_realloc`, whatever allocator serves them) and C's (`malloc`, `calloc`, `realloc`, used by SQLite):
//! every allocation of the process, HTTP, authentication, store and encoding alike.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Args, Conn, start_server};
use crate::figures::{Basics, CORE, core_requests};

/// Totals of one callgrind run.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    instructions: u64,
    allocations: u64,
}

pub async fn run(
    args: &Args,
    server_bin: &Path,
    db_url: &str,
    workdir: &Path,
    extra: &[String],
    basics: &Basics,
) -> Result<(), String> {
    let available = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    println!();
    if !available {
        println!("instructions and allocations per request: skipped (valgrind is not installed)");
        return Ok(());
    }
    let n = args.profile_requests.max(1);
    println!(
        "{:<52} {:>14} {:>12}   (callgrind, {n} warm requests)",
        "figure", "instr/req", "allocs/req"
    );
    let setup = Setup {
        server_bin,
        db_url,
        workdir,
        extra,
        basics,
        keep: args.workdir.is_some(),
    };
    for (i, name) in CORE.iter().enumerate() {
        if args
            .only
            .as_ref()
            .is_some_and(|only| !name.contains(only.as_str()))
        {
            continue;
        }
        let t = one(&setup, i, n).await?;
        println!(
            "{:<52} {:>14.0} {:>12.1}",
            name,
            t.instructions as f64 / n as f64,
            t.allocations as f64 / n as f64
        );
    }
    Ok(())
}

/// Runs `callgrind_control` with `arg` for the process `pid`.
fn control(arg: &str, pid: u32) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .args([arg, &pid.to_string()])
        .output()
        .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "callgrind_control {arg}: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// What every profiled run shares.
struct Setup<'a> {
    server_bin: &'a Path,
    db_url: &'a str,
    workdir: &'a Path,
    extra: &'a [String],
    basics: &'a Basics,
    /// Keep the callgrind files (with `--workdir`: callgrind_annotate shows where the costs are).
    keep: bool,
}

/// One run of the server under callgrind: every request of figure `which` once, then `n` counted requests.
async fn one(setup: &Setup<'_>, which: usize, n: usize) -> Result<Totals, String> {
    let Setup {
        server_bin,
        db_url,
        workdir,
        extra,
        basics,
        keep,
    } = *setup;
    let out = workdir.join(format!("callgrind-{which}.out"));
    let mut command = Command::new("valgrind");
    command
        .args(["--tool=callgrind", "-q"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(server_bin);
    let log = workdir.join(format!("server-callgrind-{which}.log"));
    let server = start_server(command, db_url, extra, &log, Duration::from_secs(300)).await?;
    let reqs = core_requests(&server.addr, basics, which);
    if reqs.is_empty() {
        return Err(format!("{}: no requests could be prepared", CORE[which]));
    }
    let mut conn = Conn::open(&server.addr).await?;
    let warm = reqs.len().min(n.max(1));
    for i in 0..warm + n {
        if i == warm {
            control("-z", server.pid)?;
        }
        let (status, body) = conn.call(&reqs[i % warm]).await?;
        if status != 200 {
            return Err(format!(
                "{} under callgrind answered {status}: {}",
                CORE[which],
                String::from_utf8_lossy(&body)
            ));
        }
    }
    control("-d", server.pid)?;
    drop(conn);
    drop(server.guard);
    let dump = workdir.join(format!("callgrind-{which}.out.1"));
    let text = std::fs::read_to_string(&dump).map_err(|e| format!("{}: {e}", dump.display()))?;
    if !keep {
        for file in [&out, &dump] {
            let _ = std::fs::remove_file(file);
        }
    }
    parse(&text)
}

/// Whether a function is an allocator entry point the program calls.
fn is_allocation(name: &str) -> bool {
    let name = name.split_whitespace().next().unwrap_or(name);
    matches!(name, "malloc" | "calloc" | "realloc")
        || ["__rust_alloc", "__rust_alloc_zeroed", "__rust_realloc"]
            .iter()
            .any(|f| name.ends_with(f))
}

/// Total instructions and the calls into allocator entry points from outside them, from a callgrind output file.
fn parse(text: &str) -> Result<Totals, String> {
    let mut names: HashMap<String, String> = HashMap::new();
    // Function names are compressed: `fn=(12) name` the first time, `fn=(12)` afterwards.
    let mut resolve = |spec: &str| -> String {
        let spec = spec.trim();
        if let Some(rest) = spec.strip_prefix('(')
            && let Some((id, name)) = rest.split_once(')')
        {
            let name = name.trim();
            if name.is_empty() {
                return names.get(id).cloned().unwrap_or_default();
            }
            names.insert(id.to_string(), name.to_string());
            return name.to_string();
        }
        spec.to_string()
    };
    let mut totals = Totals::default();
    let (mut caller, mut callee) = (String::new(), String::new());
    let mut summary = None;
    for line in text.lines() {
        if let Some(spec) = line.strip_prefix("fn=") {
            caller = resolve(spec);
        } else if let Some(spec) = line.strip_prefix("cfn=") {
            callee = resolve(spec);
        } else if let Some(rest) = line.strip_prefix("calls=") {
            let count: u64 = rest
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if is_allocation(&callee) && !is_allocation(&caller) {
                totals.allocations += count;
            }
        } else if let Some(rest) = line.strip_prefix("summary:") {
            summary = rest.split_whitespace().next().and_then(|v| v.parse().ok());
        }
    }
    totals.instructions = summary.ok_or("no totals in the callgrind output")?;
    Ok(totals)
}
