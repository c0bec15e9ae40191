//! `workmail-pat-bench`: builds a large store, serves it with SigV4 verification on, and measures the service
//! against a "floor" server that answers the same bytes doing no work — all in one run, on loopback, with the load
//! generator pinned to one core and the servers to the other.
//!
//! Every AWS request is signed with `aws-sigv4` (the AWS SDK's signer), never with the server's own code, so each
//! run also checks the server's verifier against an independent signer; any answer other than 200 fails the run.
//!
//! ```text
//! cargo build --release --bin workmail-pat                   # the server it measures (found next to this binary)
//! cargo run --release -p workmail-pat-bench                  # 1,000,000 tokens, 10 s per figure
//! cargo run --release -p workmail-pat-bench -- --short       # 100,000 tokens, 5 s per figure
//! ```

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod figures;
mod postgres;
mod profile;

use figures::{Basics, CORE, core_requests};

const ACCOUNT: &str = "111111111111";
const ACCESS_KEY: &str = "BENCHAKID000000000001";
const SECRET_KEY: &str = "bench-secret-key-not-for-production";
const REGION: &str = "us-east-1";
const PIN_ENV: &str = "WORKMAIL_PAT_BENCH_PINNED";

#[derive(Parser, Debug)]
#[command(
    name = "workmail-pat-bench",
    about = "Measure workmail-pat against a do-nothing floor server"
)]
struct Args {
    /// Tokens in the generated store.
    #[arg(long, default_value_t = 1_000_000)]
    tokens: u64,
    /// Seconds of load per figure.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Quick check: 100,000 tokens and 5 s per figure (overrides --tokens and --seconds).
    #[arg(long)]
    short: bool,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Upper bound on requests per figure (the run is bounded in time and in count).
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// Where the store and logs go (default: a new temporary folder, removed afterwards).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// The `workmail-pat` binary (default: next to this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Do not pin processes to cores with taskset.
    #[arg(long)]
    no_pin: bool,
    /// Also measure the store copied into PostgreSQL: a URL of the server's maintenance database, e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres (the benchmark creates and drops its own `workmail_pat_bench`).
    #[arg(long, value_name = "postgres://...")]
    postgres: Option<String>,
    /// Skip the instruction and allocation counts per request (they need valgrind).
    #[arg(long)]
    no_profile: bool,
    /// Requests per figure counted under callgrind.
    #[arg(long, default_value_t = 200)]
    profile_requests: usize,
    /// Measure each figure this many times, the service and the floor alternately, and report the round with the
    /// median ratio (the other rounds' ratios are printed beside it): the floor itself moves by several per cent
    /// between runs on a shared machine.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Measure only the figures whose name contains this text (e.g. `"10/page, first"` while profiling one).
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Internal: run a floor server answering with the bytes in this file.
    #[arg(long, hide = true)]
    floor: Option<PathBuf>,
}

fn main() {
    let mut args = Args::parse();
    if let Some(body) = &args.floor {
        return run_floor(body);
    }
    if args.short {
        args.tokens = 100_000;
        args.seconds = 5.0;
    }
    // Pin the load generator (this process) to core 1; servers go to core 0.
    if !args.no_pin && std::env::var_os(PIN_ENV).is_none() && taskset_available() {
        let exe = std::env::current_exe().expect("current executable");
        let status = Command::new("taskset")
            .arg("-c")
            .arg("1")
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(PIN_ENV, "1")
            .status()
            .expect("re-exec under taskset");
        std::process::exit(status.code().unwrap_or(1));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn pinned(args: &Args, core: &str, program: &Path) -> Command {
    if !args.no_pin && taskset_available() {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(core).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request, ready to send as raw bytes.
#[derive(Clone)]
pub struct Req(Arc<Vec<u8>>);

/// An awsJson request signed by `aws-sigv4` with the SDKs' default settings (payload hashed, `content-type`,
/// `host` and `x-amz-target` signed alongside `x-amz-date`), as an SDK client would send it.
fn aws_request(host: &str, op: &str, body: &serde_json::Value) -> Req {
    let body = serde_json::to_vec(body).expect("json");
    let target = format!("WorkMailService.{op}");
    let headers = [
        ("host", host),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target.as_str()),
    ];
    let identity: Identity =
        Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "workmail-pat-bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("workmail")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let signable = SignableRequest::new(
        "POST",
        format!("http://{host}/"),
        headers.iter().copied(),
        SignableBody::Bytes(&body),
    )
    .expect("signable request");
    let (instructions, _signature) = sign(signable, &params)
        .expect("aws-sigv4 signs")
        .into_parts();
    let mut out = String::from("POST / HTTP/1.1\r\n");
    // The signer adds `x-amz-date` and `authorization`.
    for (name, value) in headers.iter().copied().chain(instructions.headers()) {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    Req(Arc::new(out))
}

fn json_request(host: &str, path: &str, body: &serde_json::Value) -> Req {
    let body = serde_json::to_vec(body).expect("json");
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Req(Arc::new(out))
}

/// A keep-alive HTTP/1.1 connection that sends raw requests and reads whole responses.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends one request and returns (status, body).
    async fn call(&mut self, req: &Req) -> Result<(u16, Vec<u8>), String> {
        self.stream
            .write_all(&req.0)
            .await
            .map_err(|e| e.to_string())?;
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).map_err(|e| e.to_string())?;
                let status: u16 = head
                    .get(9..12)
                    .and_then(|s| s.parse().ok())
                    .ok_or("bad status line")?;
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let total = end + 4 + len;
                while self.buf.len() < total {
                    let n = self
                        .stream
                        .read(&mut chunk)
                        .await
                        .map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Err("connection closed".into());
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                return Ok((status, self.buf[end + 4..total].to_vec()));
            }
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Results of one load run.
struct Load {
    requests: u64,
    errors: u64,
    seconds: f64,
    latencies_us: Vec<u32>,
}

impl Load {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// Drives `requests` round-robin over `connections` keep-alive connections for `seconds` (or `max` requests).
async fn load(
    addr: &str,
    requests: &[Req],
    connections: usize,
    seconds: f64,
    max: u64,
) -> Result<Load, String> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let per_conn = max / connections as u64 + 1;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let addr = addr.to_string();
        let reqs: Vec<Req> = requests.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await?;
            let mut lat = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            let mut i = c;
            let mut n = 0u64;
            while Instant::now() < deadline && n < per_conn {
                let req = &reqs[i % reqs.len()];
                i += 1;
                let t = Instant::now();
                let (status, _) = conn.call(req).await?;
                lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                if status != 200 {
                    errors += 1;
                }
                n += 1;
            }
            Ok::<_, String>((lat, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.map_err(|e| e.to_string())??;
        all.extend(lat);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Ok(Load {
        requests: all.len() as u64,
        errors,
        seconds,
        latencies_us: all,
    })
}

/// A running `workmail-pat serve`.
struct Server {
    guard: Guard,
    pid: u32,
    addr: String,
    first_answer_ms: f64,
}

/// Starts `command` (the server binary, perhaps under a wrapper) serving `db_url` with SigV4 verification on, and
/// waits for its first answered request.
async fn start_server(
    mut command: Command,
    db_url: &str,
    extra: &[String],
    log: &Path,
    patience: Duration,
) -> Result<Server, String> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = command
        .args([
            "serve",
            "--listen",
            &addr,
            "--database",
            db_url,
            "--auth",
            "sigv4",
        ])
        .arg("--access-key")
        .arg(format!("{ACCESS_KEY}:{SECRET_KEY}:{ACCOUNT}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id();
    let guard = Guard(child);
    let health = format!("GET /_workmail-pat/health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let health = Req(Arc::new(health.into_bytes()));
    let first_answer_ms = loop {
        if let Ok(mut c) = Conn::open(&addr).await
            && let Ok((200, _)) = c.call(&health).await
        {
            break started.elapsed().as_secs_f64() * 1000.0;
        }
        if started.elapsed() > patience {
            return Err(format!("the server did not answer within {patience:?}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    Ok(Server {
        guard,
        pid,
        addr,
        first_answer_ms,
    })
}

async fn run(args: Args) -> Result<(), String> {
    let temp;
    let workdir = match &args.workdir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
            d.clone()
        }
        None => {
            temp = tempdir()?;
            temp.clone()
        }
    };
    let server_bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("workmail-pat"),
    };
    if !server_bin.is_file() {
        return Err(format!(
            "no server binary at {} (build it with `cargo build --release --bin workmail-pat`, or pass --server-bin)",
            server_bin.display()
        ));
    }
    let db = workdir.join("bench.db");
    let db_url = format!("sqlite:{}", db.display());
    let secrets_file = workdir.join("secrets.csv");
    println!(
        "workmail-pat benchmark: {} tokens, {:.0} s per figure, {} connections",
        args.tokens, args.seconds, args.connections
    );
    println!(
        "pinning: {}",
        if !args.no_pin && taskset_available() {
            "load generator on core 1, service and floor servers on core 0 (taskset)"
        } else {
            "none"
        }
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average before the run: {}", load.trim());
    }

    // 1. The store, through the bulk path. A store left in `--workdir` by an earlier run goes first: seeding into it
    // would add its tokens to the old ones.
    for suffix in ["", "-wal", "-shm", ".pepper", ".token-key"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        if file.exists() {
            std::fs::remove_file(&file)
                .map_err(|e| format!("cannot remove {}: {e}", file.display()))?;
        }
    }
    let started = Instant::now();
    let out = Command::new(&server_bin)
        .args([
            "seed",
            "--database",
            &db_url,
            "--generate",
            &args.tokens.to_string(),
        ])
        .args([
            "--account",
            ACCOUNT,
            "--quiet",
            "--secrets-sample",
            "1000",
            "--secrets-out",
        ])
        .arg(&secrets_file)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", server_bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "seed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let seed_seconds = started.elapsed().as_secs_f64();
    println!(
        "store built in {seed_seconds:.1} s ({:.0} tokens/s)",
        args.tokens as f64 / seed_seconds
    );

    // 2. The service, with SigV4 verification on; time from start to the first answered request.
    let extra = extra_server_args(&server_bin);
    let server = start_server(
        pinned(&args, "0", &server_bin),
        &db_url,
        &extra,
        &workdir.join("server.log"),
        Duration::from_secs(60),
    )
    .await?;
    println!(
        "start to first answered request: {:.1} ms",
        server.first_answer_ms
    );
    let addr = server.addr.clone();

    // 3. The requests of each figure.
    let mut probe = Conn::open(&addr).await?;
    let basics = Basics::read(&addr, &mut probe, &secrets_file).await?;
    let orgs = &basics.orgs;
    let list_user = |size: u32| -> Vec<Req> {
        basics
            .samples
            .iter()
            .take(200)
            .map(|u| {
                let body =
                    serde_json::json!({"OrganizationId": u.0, "UserId": u.1, "MaxResults": size});
                aws_request(&addr, "ListPersonalAccessTokens", &body)
            })
            .collect()
    };
    let (user_100, user_10) = (list_user(100), list_user(10));

    // Deep pages: walk one organization 10 at a time to depth >= 1,000 pages (or half the org in short runs).
    let per_org = args.tokens / orgs.len().max(1) as u64;
    let depth = (per_org / 10 / 2).clamp(1, 1000);
    let mut deep_tokens = VecDeque::new();
    let mut token: Option<String> = None;
    for page in 0..depth + 50 {
        let mut body = serde_json::json!({"OrganizationId": orgs[0], "MaxResults": 10});
        if let Some(t) = &token {
            body["NextToken"] = t.clone().into();
        }
        let (status, resp) = probe
            .call(&aws_request(&addr, "ListPersonalAccessTokens", &body))
            .await?;
        if status != 200 {
            return Err(format!("walk answered {status}"));
        }
        let doc: serde_json::Value = serde_json::from_slice(&resp).map_err(|e| e.to_string())?;
        let Some(next) = doc["NextToken"].as_str() else {
            break;
        };
        if page + 1 >= depth {
            deep_tokens.push_back(next.to_string());
        }
        token = Some(next.to_string());
    }
    let deep_10: Vec<Req> = deep_tokens
        .iter()
        .map(|t| {
            aws_request(
                &addr,
                "ListPersonalAccessTokens",
                &serde_json::json!({"OrganizationId": orgs[0], "MaxResults": 10, "NextToken": t}),
            )
        })
        .collect();

    let figures: Vec<(String, Vec<Req>)> = vec![
        (CORE[0].into(), core_requests(&addr, &basics, 0)),
        (CORE[1].into(), core_requests(&addr, &basics, 1)),
        (
            format!("ListPersonalAccessTokens org, 10/page, depth >= {depth}"),
            deep_10,
        ),
        ("ListPersonalAccessTokens user, 100/page".into(), user_100),
        ("ListPersonalAccessTokens user, 10/page".into(), user_10),
        (CORE[2].into(), core_requests(&addr, &basics, 2)),
        (CORE[3].into(), core_requests(&addr, &basics, 3)),
    ];
    let figures: Vec<(String, Vec<Req>)> = figures
        .into_iter()
        .filter(|(name, _)| {
            args.only
                .as_ref()
                .is_none_or(|only| name.contains(only.as_str()))
        })
        .collect();

    // 4. Measure each figure on the service, then on a floor server answering the same bytes.
    println!();
    println!(
        "{:<52} {:>10} {:>8} {:>8} | {:>10} {:>8} {:>8} | {:>6}",
        "figure", "req/s", "p50 ms", "p99 ms", "floor r/s", "p50 ms", "p99 ms", "ratio"
    );
    let rows = measure(&args, &workdir, &addr, &figures, true).await?;

    // 5. Memory and disk.
    let peak_rss_kib = std::fs::read_to_string(format!("/proc/{}/status", server.pid))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        });
    let disk: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    println!();
    if let Some(kib) = peak_rss_kib {
        println!("server peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    println!(
        "database on disk: {:.1} MiB",
        disk as f64 / (1024.0 * 1024.0)
    );
    let first = rows.iter().find(|r| r.0 == CORE[1]);
    let deep = rows.iter().find(|r| r.0.contains("depth >="));
    if let (Some(first), Some(deep)) = (first, deep) {
        println!(
            "deep-page p50 / first-page p50 (10/page): {:.2}",
            deep.1.percentile_ms(0.5) / first.1.percentile_ms(0.5)
        );
    }
    drop(probe);
    drop(server.guard);

    // 6. The same store in PostgreSQL, as ratios to the SQLite figures of this run.
    if let Some(admin_url) = &args.postgres {
        let sqlite_rps: Vec<(String, f64)> =
            rows.iter().map(|r| (r.0.clone(), r.1.rps())).collect();
        postgres::figures(
            &args,
            &server_bin,
            &workdir,
            &db,
            admin_url,
            &basics,
            &sqlite_rps,
        )
        .await?;
    }

    // 7. Instructions and allocations per request (valgrind's callgrind, on a fixed number of requests).
    if !args.no_profile {
        profile::run(&args, &server_bin, &db_url, &workdir, &extra, &basics).await?;
    }
    if args.workdir.is_none() {
        let _ = std::fs::remove_dir_all(&workdir);
    }
    Ok(())
}

/// Measures each figure on the service (and on a floor server answering the same bytes, with `floor`), printing a
/// line per figure.
async fn measure(
    args: &Args,
    workdir: &Path,
    addr: &str,
    figures: &[(String, Vec<Req>)],
    floor: bool,
) -> Result<Vec<(String, Load, Option<Load>)>, String> {
    let mut rows = Vec::new();
    for (name, reqs) in figures {
        if reqs.is_empty() {
            println!("{name:<52} (no requests could be prepared)");
            continue;
        }
        // A connection of its own per figure: one kept from the figure before would have sat idle through its
        // load runs, longer than the server keeps an idle connection (--header-read-timeout) with --rounds.
        let mut probe = Conn::open(addr).await?;
        let probe = &mut probe;
        let (status, sample_body) = probe.call(&reqs[0]).await?;
        if status != 200 {
            return Err(format!(
                "{name}: the service answered {status}: {}",
                String::from_utf8_lossy(&sample_body)
            ));
        }
        // Warm-up: every request once, so one-off work is not in the figure (caches, and for verification the
        // first use of each token, which writes DateLastUsed durably; that cost is printed separately).
        let warm = Instant::now();
        for req in reqs.iter().skip(1) {
            let (status, body) = probe.call(req).await?;
            if status != 200 {
                return Err(format!(
                    "{name}: the service answered {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
        if name.contains("verify") {
            println!(
                "  (warm-up: {} first uses in {:.2} s = {:.0}/s, each writing DateLastUsed)",
                reqs.len(),
                warm.elapsed().as_secs_f64(),
                reqs.len() as f64 / warm.elapsed().as_secs_f64()
            );
        }
        let mut rounds = Vec::new();
        for _ in 0..args.rounds.max(1) {
            let service = load(
                addr,
                reqs,
                args.connections,
                args.seconds,
                args.max_requests,
            )
            .await?;
            let floor = match floor {
                true => Some(measure_floor(args, workdir, reqs, &sample_body).await?),
                false => None,
            };
            let failed = service.errors > 0;
            rounds.push((service, floor));
            if failed {
                break;
            }
        }
        let ratio = |(service, floor): &(Load, Option<Load>)| {
            floor
                .as_ref()
                .map_or(service.rps(), |f| service.rps() / f.rps())
        };
        rounds.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
        let all_ratios = match (rounds.len(), floor) {
            (1, _) | (_, false) => String::new(),
            _ => format!(
                "  (ratios of {} rounds: {})",
                rounds.len(),
                rounds
                    .iter()
                    .map(|r| format!("{:.2}", ratio(r)))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        };
        // A round with failed requests is the one reported (and refused below); else the median.
        let pick = rounds
            .iter()
            .position(|(service, _)| service.errors > 0)
            .unwrap_or(rounds.len() / 2);
        let (service, floor) = rounds.swap_remove(pick);
        let errors = match service.errors {
            0 => String::new(),
            n => format!("  ({n} not 200!)"),
        };
        match &floor {
            Some(floor) => println!(
                "{:<52} {:>10.0} {:>8.2} {:>8.2} | {:>10.0} {:>8.2} {:>8.2} | {:>6.2}{errors}{all_ratios}",
                name,
                service.rps(),
                service.percentile_ms(0.5),
                service.percentile_ms(0.99),
                floor.rps(),
                floor.percentile_ms(0.5),
                floor.percentile_ms(0.99),
                service.rps() / floor.rps(),
            ),
            None => print!(
                "{:<52} {:>10.0} {:>8.2} {:>8.2}{errors}",
                name,
                service.rps(),
                service.percentile_ms(0.5),
                service.percentile_ms(0.99),
            ),
        }
        std::io::stdout().flush().ok();
        if service.errors > 0 {
            // A refused signature (or any other failure) is a finding, not a figure.
            return Err(format!(
                "{name}: {} of {} answers were not 200 (see {})",
                service.errors,
                service.requests,
                workdir.join("server.log").display()
            ));
        }
        rows.push((name.clone(), service, floor));
    }
    Ok(rows)
}

/// Extra `serve` flags when the server supports them: `--no-throttle` (the hardening work). Verification asks for
/// IMAP, as a mail server would; the sampled secrets all carry it (`seed --generate` samples only such tokens).
fn extra_server_args(server_bin: &Path) -> Vec<String> {
    let help = Command::new(server_bin).args(["serve", "--help"]).output();
    let help = match help {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(_) => return Vec::new(),
    };
    ["--no-throttle"]
        .into_iter()
        .filter(|flag| help.contains(flag))
        .map(String::from)
        .collect()
}

async fn measure_floor(
    args: &Args,
    workdir: &Path,
    reqs: &[Req],
    body: &[u8],
) -> Result<Load, String> {
    let file = workdir.join("floor-body");
    std::fs::write(&file, body).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = pinned(args, "0", &exe)
        .arg("--floor")
        .arg(&file)
        .env(PIN_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("floor stdout")?;
    let _guard = Guard(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .ok_or("floor did not start")?
        .to_string();
    load(
        &addr,
        reqs,
        args.connections,
        args.seconds,
        args.max_requests,
    )
    .await
}

/// The floor: a minimal hyper server that reads each request and answers the same bytes, doing no work.
fn run_floor(body_file: &Path) {
    let body = bytes::Bytes::from(std::fs::read(body_file).expect("floor body"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!(
            "listening on http://{}",
            listener.local_addr().expect("addr")
        );
        std::io::stdout().flush().ok();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let body = body.clone();
                        async move {
                            // Read the request body like the service must (it is signed), then answer.
                            let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                            let mut resp = hyper::Response::new(http_body_util::Full::new(body));
                            let h = resp.headers_mut();
                            h.insert(
                                "content-type",
                                hyper::header::HeaderValue::from_static(
                                    "application/x-amz-json-1.1",
                                ),
                            );
                            h.insert(
                                "x-amzn-requestid",
                                hyper::header::HeaderValue::from_static(
                                    "00000000-0000-4000-8000-000000000000",
                                ),
                            );
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

fn tempdir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("workmail-pat-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}
