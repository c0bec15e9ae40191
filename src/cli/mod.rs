//! The command line: `serve` runs the server, `token create` makes a PAT without the web flow. The binary only
//! calls [`main`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use zeroize::Zeroizing;

use crate::auth::{AuthMode, Authenticator, KeyEntry};
use crate::context::{Limits, Shared};
use crate::secrets::Key32;
use crate::state::{AppState, Settings};

mod domain;
mod health;
mod import;
mod kit;
mod migrate;
mod report;
mod seed;
mod token;

#[derive(Parser, Debug)]
#[command(
    name = "workmail-pat",
    version,
    about = "Amazon WorkMail's personal-access-token API, self-hosted"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Manage personal access tokens directly in a database.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Load a seed file (YAML or JSON), or build a large synthetic store with --generate.
    Seed(seed::SeedArgs),
    /// Write the whole state as JSON (never secrets, password hashes or token digests).
    Dump(seed::DumpArgs),
    /// Copy a whole SQLite store into an empty PostgreSQL database (stop the server first).
    Migrate(migrate::MigrateArgs),
    /// List an organization's tokens that expire soon or were not used for a long time (for audits).
    Report(report::ReportArgs),
    /// Print a shell completion script (e.g. `workmail-pat completions bash > /etc/bash_completion.d/workmail-pat`).
    Completions(kit::CompletionsArgs),
    /// Print the manual page (roff), e.g. `workmail-pat man > workmail-pat.1`.
    Man,
    /// Copy organizations, keeping their ids, from Amazon WorkMail (or any endpoint speaking its API) into the
    /// database. Exit status 0: everything imported; 2: some entities skipped (see the report); 1: failure.
    Import(Box<import::ImportArgs>),
    /// Ask a running server's health endpoint; exit 0 only when it answers 200 (the container HEALTHCHECK).
    Health(health::HealthArgs),
    /// Manage mail domains directly in a database.
    #[command(subcommand)]
    Domain(domain::DomainCommand),
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for a user and print it (with its secret, shown once) as JSON.
    Create(Box<TokenCreateArgs>),
    /// Print a fresh, valid `wmpat_` secret (touches no database): for fixed secrets in seed files and fixtures.
    Secret,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthArg {
    /// Accept any well-formed SigV4 Authorization header without checking the signature (like moto/LocalStack).
    AcceptAny,
    /// Verify every SigV4 signature against the configured access keys.
    Sigv4,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainVerificationArg {
    /// A new domain is VERIFIED at once.
    Auto,
    /// A new domain stays PENDING until the operator marks it verified.
    Manual,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the database and its keys are.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Database URL: `sqlite:PATH` (created if missing), `sqlite::memory:`, or `postgres://USER@HOST[:PORT]/DB`
    /// (schema created or migrated at start; needs `--token-key-file` and `--pepper-file`).
    /// The URL is never logged or shown as given (its password is masked); prefer `--database-password-file`.
    #[arg(
        long,
        env = "WORKMAIL_PAT_DATABASE",
        hide_env_values = true,
        default_value = "sqlite:workmail-pat.db"
    )]
    pub database: String,
    /// PostgreSQL only: a file holding the database password (one trailing newline is ignored), used when the URL
    /// has none. Without either, `PGPASSWORD` and then the libpq password file (`PGPASSFILE`, default `~/.pgpass`)
    /// are used, as libpq does.
    #[arg(long, env = "WORKMAIL_PAT_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,
    /// File with the NextToken key (64 hex characters). Default: `<database file>.token-key`, created on first
    /// start. Replicas must share it.
    #[arg(long, env = "WORKMAIL_PAT_TOKEN_KEY_FILE")]
    pub token_key_file: Option<PathBuf>,
    /// File with the token pepper (64 hex characters). Default: `<database file>.pepper`, created on first start.
    /// Replicas and `token create` must share it.
    #[arg(long, env = "WORKMAIL_PAT_PEPPER_FILE")]
    pub pepper_file: Option<PathBuf>,
    /// PostgreSQL only: most database connections this process holds.
    #[arg(long, env = "WORKMAIL_PAT_DATABASE_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool_size: u32,
    /// PostgreSQL only: seconds to wait for a connection (connecting, or a free pooled one) before a request is
    /// answered 503 ServiceUnavailable; one whole store operation gets twice this.
    #[arg(long, env = "WORKMAIL_PAT_DATABASE_TIMEOUT", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub database_timeout: u64,
}

impl StoreArgs {
    /// Opens the store with this command line's pool limits.
    pub fn open(&self) -> Result<Arc<dyn crate::store::Store>, String> {
        crate::store::open_with(
            &self.database,
            &crate::store::postgres::PostgresOptions {
                pool_size: self.database_pool_size as usize,
                timeout: Duration::from_secs(self.database_timeout),
                password_file: self.database_password_file.clone(),
            },
        )
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, env = "WORKMAIL_PAT_LISTEN", default_value = "127.0.0.1:4610")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// How AWS API callers are authenticated.
    #[arg(
        long,
        env = "WORKMAIL_PAT_AUTH",
        value_enum,
        default_value = "accept-any"
    )]
    pub auth: AuthArg,
    /// An access key for `--auth sigv4`: `ACCESS_KEY_ID:SECRET_ACCESS_KEY:ACCOUNT_ID` (repeatable). The secret is
    /// then visible in the process list to every local user (a warning is logged): prefer --credentials-file.
    #[arg(long = "access-key", value_name = "ID:SECRET:ACCOUNT")]
    pub access_keys: Vec<String>,
    /// A file of access keys for `--auth sigv4`: one `ACCESS_KEY_ID:SECRET_ACCESS_KEY:ACCOUNT_ID` per line; blank
    /// lines and lines starting with `#` are ignored.
    #[arg(long, env = "WORKMAIL_PAT_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,
    /// Largest accepted difference between a request's X-Amz-Date and real time, in seconds.
    #[arg(long, default_value_t = 900)]
    pub max_clock_skew: u64,
    /// Scopes given to new tokens when none are requested (comma-separated).
    #[arg(
        long,
        env = "WORKMAIL_PAT_DEFAULT_SCOPES",
        value_delimiter = ',',
        default_value = "IMAP,SMTP"
    )]
    pub default_scopes: Vec<String>,
    /// Allow `--auth accept-any` on a non-loopback address (anyone who can reach it can act as any account).
    #[arg(long)]
    pub allow_insecure_any_credentials: bool,
    /// A host name clients use to reach this server, besides the loopback names (repeatable; case-insensitive,
    /// port ignored). The test API and the accept-any AWS API refuse any other `Host` (DNS-rebinding defence); on a
    /// non-loopback accept-any listener the check applies only once at least one name is given.
    #[arg(
        long = "allowed-host",
        value_name = "NAME",
        env = "WORKMAIL_PAT_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Serve `/metrics` (and health) on this second address to whoever reaches it; the main listener then stops
    /// serving `/metrics`. Without it, `/metrics` answers only clients connecting from loopback.
    #[arg(long, env = "WORKMAIL_PAT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers) in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// Most headers in one request.
    #[arg(long, default_value_t = 64)]
    pub max_headers: usize,
    /// Seconds a client has to send a request's headers (slow-loris protection).
    #[arg(long, default_value_t = 30)]
    pub header_read_timeout: u64,
    /// Seconds a request may take, body included, before it is answered 408.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// Most connections served at once. From 90 % of it on, idle connections (no request in progress) are closed,
    /// longest idle first, down to 80 %.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Most connections one client address may hold (an IPv6 client counts by its /64); a connection beyond it is
    /// answered 429 and closed.
    #[arg(long, default_value_t = crate::context::DEFAULT_MAX_CONNECTIONS_PER_CLIENT)]
    pub max_connections_per_ip: usize,
    /// Password hashes waiting per lane (sign-in; administration) before further ones are answered 503
    /// ServiceUnavailable at once.
    #[arg(long, default_value_t = crate::hashing::DEFAULT_QUEUE)]
    pub password_queue: usize,
    /// Seconds in-flight requests get to finish on SIGTERM/SIGINT; the store is closed after them.
    #[arg(long, default_value_t = 15)]
    pub shutdown_timeout: u64,
    /// Turn every rate limit off (for benchmarks).
    #[arg(long, env = "WORKMAIL_PAT_NO_THROTTLE")]
    pub no_throttle: bool,
    /// Sustained AWS API requests per second per access key (ThrottlingException beyond).
    #[arg(long, default_value_t = 1000)]
    pub api_rate: u32,
    /// Burst of AWS API requests per access key.
    #[arg(long, default_value_t = 2000)]
    pub api_burst: u32,
    /// Sustained AWS API requests per second per client address that are not (yet) verified: unknown access
    /// keys and bad signatures spend this, never a real key's budget (`--auth sigv4`).
    #[arg(long, default_value_t = 50)]
    pub api_unverified_rate: u32,
    /// Burst of unverified AWS API requests per client address.
    #[arg(long, default_value_t = 100)]
    pub api_unverified_burst: u32,
    /// Failed sign-ins/verifications per (user, client address) within --user-failure-window before answering 429.
    #[arg(long, default_value_t = 10)]
    pub user_failures: u32,
    /// Seconds of the per-user failure windows.
    #[arg(long, default_value_t = 300)]
    pub user_failure_window: u64,
    /// Failed sign-ins/verifications per user from all addresses within --user-failure-window; addresses where the
    /// user succeeded in the last 30 days are exempt (a distributed guesser is slowed, the user is not).
    #[arg(long, default_value_t = 100)]
    pub user_failure_ceiling: u32,
    /// Failed sign-ins/verifications per client IP within --ip-failure-window before answering 429.
    #[arg(long, default_value_t = 100)]
    pub ip_failures: u32,
    /// Seconds of the per-IP failure window.
    #[arg(long, default_value_t = 60)]
    pub ip_failure_window: u64,
    /// A reverse proxy (or mail server) whose `X-Forwarded-For` and `RemoteIp` are believed, as an address or CIDR
    /// block (repeatable). Requests from anyone else are attributed to their socket address.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "WORKMAIL_PAT_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<crate::client::Cidr>,
    /// A file holding the secret mail servers send to `/auth/v1/verify` as `Authorization: Bearer SECRET` (at
    /// least 32 characters). When set, verification without it is refused (403); callers with it may report the
    /// mail client's address (`RemoteIp`).
    #[arg(long, env = "WORKMAIL_PAT_VERIFIER_KEY_FILE")]
    pub verifier_key_file: Option<PathBuf>,
    /// Accept `/auth/v1/verify` requests without `Scope` (then a token of any scope passes). Weaker: only for old
    /// mail-server configurations that cannot send the service they verify for.
    #[arg(long)]
    pub verify_allow_missing_scope: bool,
    /// When a domain registered with RegisterMailDomain becomes VERIFIED: `auto` at once, `manual` when the operator
    /// marks it (`workmail-pat domain verify`, or `POST /_workmail-pat/domains/verify` in the test API).
    #[arg(
        long,
        value_enum,
        env = "WORKMAIL_PAT_DOMAIN_VERIFICATION",
        default_value = "auto"
    )]
    pub domain_verification: DomainVerificationArg,
    /// Seconds after the last password entry before creating a token asks for the password again.
    #[arg(long, default_value_t = 900)]
    pub reauthenticate_after: u64,
    /// Always mark the web page's session cookie `Secure` (use behind a TLS proxy that does not send
    /// `X-Forwarded-Proto: https`; with that header the cookie is `Secure` anyway).
    #[arg(long, env = "WORKMAIL_PAT_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// A seed file (YAML or JSON) applied at start; idempotent, so restarts on a persistent database are safe.
    #[arg(long, env = "WORKMAIL_PAT_SEED")]
    pub seed: Option<PathBuf>,
    /// Serve the test-support API (state reset, clock control, id seeding). Refused on a non-loopback address
    /// unless --allow-test-api-on-network is given too.
    #[arg(long, env = "WORKMAIL_PAT_ENABLE_TEST_API")]
    pub enable_test_api: bool,
    /// DANGEROUS, for test containers only: serve the test API on a non-loopback address, where ANYONE who can
    /// reach the port can erase all state and move the clock. Needs --allowed-host (the names other containers
    /// use, e.g. the service name) so the Host check still applies; JSON-only and same-origin checks stay.
    #[arg(long, env = "WORKMAIL_PAT_ALLOW_TEST_API_ON_NETWORK")]
    pub allow_test_api_on_network: bool,
    /// Log format on stderr.
    #[arg(
        long,
        env = "WORKMAIL_PAT_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log one record per request (method, path, AWS operation, status, error type, duration, bytes) at INFO
    /// instead of DEBUG.
    #[arg(long, env = "WORKMAIL_PAT_ACCESS_LOG")]
    pub access_log: bool,
}

#[derive(Args, Debug)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub organization_id: String,
    /// The owner: user id, username or email.
    #[arg(long)]
    pub user: String,
    #[arg(long)]
    pub name: String,
    /// A scope (repeatable); default `IMAP` and `SMTP`.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
}

/// Parses one `ID:SECRET:ACCOUNT` access key.
pub fn parse_access_key(text: &str) -> Result<(String, KeyEntry), String> {
    let mut parts = text.trim().splitn(3, ':');
    let (Some(id), Some(secret), Some(account)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("an access key must be ACCESS_KEY_ID:SECRET_ACCESS_KEY:ACCOUNT_ID".into());
    };
    if id.is_empty() || secret.is_empty() {
        return Err("an access key needs a non-empty id and secret".into());
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account id for access key {id} must be 12 digits"));
    }
    Ok((
        id.to_string(),
        KeyEntry {
            secret: crate::auth::sigv4::SigningSecret::new(secret),
            account: account.to_string(),
        },
    ))
}

fn load_access_keys(args: &ServeArgs) -> Result<HashMap<String, KeyEntry>, String> {
    let mut keys = HashMap::new();
    for k in &args.access_keys {
        let (id, entry) = parse_access_key(k)?;
        keys.insert(id, entry);
    }
    if let Some(path) = &args.credentials_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        );
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, entry) = parse_access_key(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
            keys.insert(id, entry);
        }
    }
    Ok(keys)
}

/// The NextToken key and the pepper: from the given files, else beside the SQLite file, else (in-memory store)
/// random for this process.
pub fn load_keys(store: &StoreArgs) -> Result<(Key32, Key32), String> {
    let base = crate::store::key_file_base(&store.database);
    // A PostgreSQL database has no "beside it" and is shared by replicas, which must all use the same two keys:
    // a random per-process key would break every NextToken and every stored secret across replicas.
    if crate::store::is_postgres_url(&store.database)
        && (store.token_key_file.is_none() || store.pepper_file.is_none())
    {
        return Err(
            "a postgres:// database needs --token-key-file and --pepper-file (env WORKMAIL_PAT_TOKEN_KEY_FILE, \
             WORKMAIL_PAT_PEPPER_FILE): every replica and `token create` must use the same two files"
                .into(),
        );
    }
    let pick = |given: &Option<PathBuf>, suffix: &str| -> Result<Key32, String> {
        match (given, &base) {
            (Some(path), _) => Key32::load_or_create(path),
            (None, Some(db)) => Key32::load_or_create(&sibling(db, suffix)),
            (None, None) => Ok(Key32::random()),
        }
    };
    Ok((
        pick(&store.token_key_file, "token-key")?,
        pick(&store.pepper_file, "pepper")?,
    ))
}

/// Reads the verifier key: one line of at least 32 characters (e.g. `openssl rand -hex 32`).
fn load_verifier_key(path: &Path) -> Result<Zeroizing<String>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    let key = text.trim();
    if key.len() < 32 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{}: the verifier key must be one line of at least 32 printable characters (openssl rand -hex 32)",
            path.display()
        ));
    }
    Ok(Zeroizing::new(key.to_string()))
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Installs the process-wide Prometheus recorder (once) and returns the handle that renders `/metrics`.
fn install_metrics_recorder() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])
        .ok()?
        .install_recorder()
        .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
        .ok()?;
    metrics::describe_counter!(
        "workmail_pat_requests_total",
        "AWS API requests by operation and outcome (ok or the error __type)"
    );
    metrics::describe_histogram!(
        "workmail_pat_request_duration_seconds",
        "AWS API request latency by operation"
    );
    metrics::describe_counter!(
        "workmail_pat_token_verifications_total",
        "Personal access token verifications by result"
    );
    metrics::describe_counter!(
        "workmail_pat_connections_refused_total",
        "Connections refused because their client address held --max-connections-per-ip"
    );
    metrics::describe_counter!(
        "workmail_pat_password_jobs_total",
        "Password hashes not done, by lane and outcome (busy: queue full; abandoned: the request had gone)"
    );
    metrics::describe_gauge!(
        "workmail_pat_database_connections",
        "Database connections held by the store"
    );
    // The SQLite store holds exactly one connection.
    metrics::gauge!("workmail_pat_database_connections").set(1.0);
    // Histogram samples pile up in the recorder until upkeep folds them into the buckets. `install_recorder` (unlike
    // `install`) leaves upkeep to the caller; without it, a server nobody scrapes grew by 8 bytes per request
    // (3.5 MiB a minute in a release soak), so run it here on a timer.
    let upkept = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            upkept.run_upkeep();
        }
    });
    Some(handle)
}

/// Installs the process-wide log subscriber: `RUST_LOG` (default `info`) filters, lines go to stderr in batches
/// through a background thread ([`crate::log_writer`]), so a slow terminal or a full pipe never stalls a request
/// (when its buffer is full, lines are dropped rather than waited for). Keep the returned guard alive until the
/// command ends: dropping it writes what is left.
#[must_use = "dropping the guard stops the log writer"]
fn init_tracing(format: LogFormat) -> crate::log_writer::Guard {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (writer, guard) = crate::log_writer::batched(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(writer)
        // Plain text, also on a terminal: tracing-subscriber's `ansi` feature is off (Cargo.toml), because with it
        // every field of every line and request span went through a colour wrapper even when colours were off
        // (~800 instructions a field; /auth/v1/verify 106,283 -> 100,677 instructions a request, issue 14).
        .with_ansi(false);
    let (targets, env_filter) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let _ = match format {
        LogFormat::Text => builder.finish().with(targets).with(env_filter).try_init(),
        LogFormat::Json => builder
            .json()
            .finish()
            .with(targets)
            .with(env_filter)
            .try_init(),
    };
    guard
}

/// The log filter of `RUST_LOG` (default `info`), one of the two. Directives of targets and levels only (`info`,
/// `workmail_pat=debug,hyper=warn`) make a static [`Targets`] filter; anything else (span and field filters) an
/// [`EnvFilter`], which supports them at a price every span pays: it looks the span up under a lock, with SipHash,
/// whenever a request's span is made, entered, left or closed (issue 14).
///
/// [`Targets`]: tracing_subscriber::filter::Targets
/// [`EnvFilter`]: tracing_subscriber::EnvFilter
fn log_filter(
    rust_log: Option<&str>,
) -> (
    Option<tracing_subscriber::filter::Targets>,
    Option<tracing_subscriber::EnvFilter>,
) {
    let directives = rust_log.unwrap_or("info");
    // `Targets` would read `foo[span]=info` as a target named "foo[span]": only plain directives go to it.
    let plain = !directives.is_empty()
        && directives
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'=' | b',' | b'-'));
    if plain && let Ok(targets) = directives.parse() {
        return (Some(targets), None);
    }
    let env_filter = tracing_subscriber::EnvFilter::try_new(directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    (None, Some(env_filter))
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let runtime = match crate::runtime::on_runtime(builder.enable_all()).build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Import(args) => return import::run(*args).await,
            Command::Serve(args) => serve(*args).await,
            Command::Token(TokenCommand::Create(args)) => token::create(*args).await,
            Command::Token(TokenCommand::Secret) => token::secret(),
            Command::Completions(args) => kit::completions(args),
            Command::Man => kit::man(),
            Command::Seed(args) => seed::run(args).await,
            Command::Dump(args) => seed::dump(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Report(args) => report::run(args).await,
            Command::Health(args) => health::run(args).await,
            Command::Domain(domain::DomainCommand::Verify(args)) => domain::verify(args).await,
        }
        .map(|()| 0)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// The smallest listen backlog (the main listener's grows with `--max-connections`): a burst of clients at one
/// instant waits there for the accept loop instead of being dropped by the kernel.
const LISTEN_BACKLOG: usize = 1024;

async fn serve(args: ServeArgs) -> Result<(), String> {
    // Held to the end of `serve`: dropping it flushes the last lines (the shutdown ones) before the process exits.
    let _log = init_tracing(args.log_format);
    if !args.access_keys.is_empty() {
        tracing::warn!(
            event = "secret_on_command_line",
            "--access-key puts secret access keys in the process list, readable by every local user \
             (ps, /proc/PID/cmdline); use --credentials-file (env WORKMAIL_PAT_CREDENTIALS_FILE) instead"
        );
    }
    let host_policy =
        crate::client::HostPolicy::new(args.listen.ip().is_loopback(), &args.allowed_hosts)?;
    let mode = match args.auth {
        AuthArg::AcceptAny => {
            if !args.listen.ip().is_loopback() && !args.allow_insecure_any_credentials {
                return Err(format!(
                    "refusing to listen on {} with --auth accept-any: anyone who can reach it could act as any \
                     account. Use --auth sigv4, a loopback address, or --allow-insecure-any-credentials",
                    args.listen
                ));
            }
            if !host_policy.checks_aws() {
                tracing::warn!(
                    event = "host_unchecked",
                    "accept-any on {} without --allowed-host: the Host header is not checked, so a web page \
                     visited by anyone who can reach this address can drive the API through DNS rebinding",
                    args.listen
                );
            }
            AuthMode::AcceptAny
        }
        AuthArg::Sigv4 => {
            let keys = load_access_keys(&args)?;
            if keys.is_empty() {
                return Err("--auth sigv4 needs --access-key or --credentials-file".into());
            }
            AuthMode::SigV4(keys)
        }
    };
    if args.enable_test_api && !args.listen.ip().is_loopback() {
        if !args.allow_test_api_on_network {
            return Err(format!(
                "refusing to serve the test-support API on {}: it can erase all state. Use a loopback address, \
                 or (test containers only) --allow-test-api-on-network with --allowed-host",
                args.listen
            ));
        }
        if args.allowed_hosts.is_empty() {
            return Err(format!(
                "--allow-test-api-on-network on {} needs --allowed-host NAME (the names clients use to reach this \
                 server), so that the test API still refuses other Host names (DNS rebinding)",
                args.listen
            ));
        }
        tracing::warn!(
            event = "test_api_on_network",
            "the test-support API is served on {}: anyone who can reach it can erase all state and move the \
             clock. Only for disposable test containers",
            args.listen
        );
    }
    let (token_key, pepper) = load_keys(&args.store)?;
    crate::hashing::configure(args.password_queue);
    let store = args.store.open()?;
    let settings = Settings {
        default_scopes: args.default_scopes.clone(),
        secure_cookies: args.secure_cookies,
        trusted_proxies: crate::client::TrustedProxies::new(args.trusted_proxies.clone()),
        verifier_key: args
            .verifier_key_file
            .as_deref()
            .map(load_verifier_key)
            .transpose()?,
        verify_require_scope: !args.verify_allow_missing_scope,
        domain_verification: match args.domain_verification {
            DomainVerificationArg::Auto => crate::mail::VerificationMode::Auto,
            DomainVerificationArg::Manual => crate::mail::VerificationMode::Manual,
        },
        reauth_after_ms: (args.reauthenticate_after as i64).saturating_mul(1000),
        access_log: args.access_log,
        ..Settings::default()
    };
    crate::ops::validate::scopes(&settings.default_scopes, "--default-scopes")
        .map_err(|e| e.to_string())?;
    if args.verifier_key_file.is_none()
        && args.trusted_proxies.is_empty()
        && !args.listen.ip().is_loopback()
    {
        // Mail servers then report client addresses that cannot be believed: every login counts against the mail
        // server's own address (per user, each reported address still has its own small budget).
        tracing::warn!(
            event = "verify_unauthenticated",
            "/auth/v1/verify answers anyone who reaches {} and believes no RemoteIp: give mail servers a \
             --verifier-key-file (contrib/dovecot: WORKMAIL_PAT_VERIFIER_KEY_FILE) or list them with --trusted-proxy",
            args.listen
        );
    }
    let shared = Arc::new(Shared {
        app: {
            let mut app = AppState::new(store, &token_key, pepper, settings);
            app.throttle = crate::throttle::Throttle::new(crate::throttle::ThrottleSettings {
                enabled: !args.no_throttle,
                api_per_second: args.api_rate,
                api_burst: args.api_burst,
                unverified_per_second: args.api_unverified_rate,
                unverified_burst: args.api_unverified_burst,
                user_failures: args.user_failures,
                user_window: Duration::from_secs(args.user_failure_window),
                user_ceiling: args.user_failure_ceiling,
                ip_failures: args.ip_failures,
                ip_window: Duration::from_secs(args.ip_failure_window),
            });
            app
        },
        auth: Authenticator {
            mode,
            max_skew: Duration::from_secs(args.max_clock_skew),
        },
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            max_header_bytes: args.max_header_bytes,
            max_headers: args.max_headers,
            header_read_timeout: Duration::from_secs(args.header_read_timeout),
            request_timeout: Duration::from_secs(args.request_timeout),
            max_connections: args.max_connections.max(1),
            max_connections_per_ip: args.max_connections_per_ip.max(1),
            uncapped_peers: crate::client::TrustedProxies::new(args.trusted_proxies.clone()),
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        },
        metrics: install_metrics_recorder(),
        test_api: args.enable_test_api,
        host_policy,
        metrics_listener: args.metrics_listen.is_some(),
    });
    if let Some(path) = &args.seed {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file = crate::seed::parse(&text)?;
        let report = crate::seed::apply(&shared.app, &file).await?;
        tracing::info!(organizations = report.organizations.len(), file = %path.display(), "seed file applied");
    }
    if let Err(e) = shared.app.store.prepare_to_serve().await {
        // Only reads get slower (see the SQLite store's note): the server still serves.
        tracing::warn!(error = %e, "readying the store for reads failed");
    }
    let backlog = shared.limits.max_connections.max(LISTEN_BACKLOG);
    let listener = crate::server::listen(args.listen, backlog)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics_listener = match args.metrics_listen {
        Some(addr) => {
            let l = crate::server::listen(addr, LISTEN_BACKLOG)
                .map_err(|e| format!("cannot listen on {addr} (--metrics-listen): {e}"))?;
            let a = l.local_addr().map_err(|e| e.to_string())?;
            Some((l, a))
        }
        None => None,
    };
    // Install the signal handlers before announcing the port: a supervisor that signals right after reading the
    // line must get a graceful shutdown, not the default action (death by signal).
    let shutdown = shutdown_signal()?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{local}");
        if let Some((_, a)) = &metrics_listener {
            // After the main line, and worded so that a supervisor matching "listening on" finds the main one.
            let _ = writeln!(out, "metrics on http://{a}/metrics");
        }
        let _ = out.flush();
    }
    tracing::info!(address = %local, database = %crate::store::redact_url(&args.store.database), "listening");

    let (metrics_stop_tx, metrics_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let metrics_server = metrics_listener.map(|(l, a)| {
        tracing::info!(address = %a, "serving /metrics");
        tokio::spawn(crate::server::serve_metrics(l, shared.clone(), async {
            let _ = metrics_stop_rx.await;
        }))
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::serve(listener, shared, async {
        let _ = stop_rx.await;
    }));
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(());
    let _ = metrics_stop_tx.send(());
    // One deadline, `--shutdown-timeout` from now: both listeners stop accepting at once and give their in-flight
    // requests until then, after which the main one closes the store (for SQLite, the WAL checkpoint). No timeout
    // here: a second, shorter one would cut that close short (and a longer one would never fire).
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// A future that completes on SIGINT or SIGTERM. The handlers are registered when this returns, not when the future
/// is first polled.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_access_keys_are_refused() {
        assert!(parse_access_key("AKID:secret").is_err());
        assert!(parse_access_key("AKID:secret:12").is_err());
        assert!(parse_access_key(":secret:111111111111").is_err());
        let (id, e) = parse_access_key("AKID:secret:111111111111").unwrap();
        assert_eq!(id, "AKID");
        assert_eq!(e.account, "111111111111");
        assert!(!format!("{e:?}").contains("\"secret\""));
    }

    #[test]
    fn plain_log_directives_make_a_static_filter_and_the_rest_an_env_filter() {
        use tracing::Level;
        let targets = |rust_log| match log_filter(rust_log) {
            (Some(targets), None) => targets,
            other => panic!("{rust_log:?} made {other:?}"),
        };
        let default = targets(None);
        assert!(default.would_enable("workmail_pat::access", &Level::INFO));
        assert!(!default.would_enable("workmail_pat::access", &Level::DEBUG));
        let mixed = targets(Some("warn,workmail_pat::access=debug,hyper=off"));
        assert!(mixed.would_enable("workmail_pat::access", &Level::DEBUG));
        assert!(!mixed.would_enable("workmail_pat::server", &Level::INFO));
        assert!(mixed.would_enable("workmail_pat::server", &Level::WARN));
        assert!(!mixed.would_enable("hyper::proto", &Level::ERROR));
        // Span and field filters, an empty value and nonsense keep EnvFilter's meaning.
        for rust_log in [
            "info,[request]=debug",
            "workmail_pat[{request_id}]=trace",
            "",
            "a=b=c",
        ] {
            assert!(
                matches!(log_filter(Some(rust_log)), (None, Some(_))),
                "{rust_log:?}"
            );
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
