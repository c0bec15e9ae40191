//! `workmail-pat migrate --from sqlite:FILE --to postgres://...`: moves a whole embedded store into PostgreSQL.
//!
//! Rows are copied as they are stored (ids, times, the keyed hashes of PAT secrets and session tokens, password
//! hashes, remembered ClientTokens), so a server started on PostgreSQL with the same `--token-key-file` and
//! `--pepper-file` lists the same things, continues the same NextTokens and accepts the same secrets and
//! passwords. The SQLite side is read inside one read transaction (a consistent snapshot; it is never written),
//! the PostgreSQL side is filled with binary COPY inside one transaction: either everything arrives or nothing.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rusqlite::types::Value;
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The SQLite store to read: `sqlite:PATH` (stop the server that uses it first; the file is not modified).
    #[arg(long, value_name = "sqlite:FILE")]
    pub from: String,
    /// The PostgreSQL database to fill: `postgres://USER@HOST[:PORT]/DB`. The schema is created if missing; the
    /// database must not hold any workmail-pat data yet.
    #[arg(long, value_name = "postgres://...")]
    pub to: String,
    /// A file holding the PostgreSQL password, used when the `--to` URL has none (as for `serve`).
    #[arg(long, env = "WORKMAIL_PAT_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,
    /// No progress bar (a summary line is still printed).
    #[arg(long)]
    pub quiet: bool,
}

use crate::store::sql::{Kind, TABLES};

/// The PostgreSQL type a column of this kind is copied into.
fn pg_type(kind: Kind) -> Type {
    match kind {
        Kind::Text | Kind::OptText => Type::TEXT,
        Kind::Int | Kind::OptInt => Type::INT8,
        Kind::Bool => Type::BOOL,
        Kind::Bytes => Type::BYTEA,
    }
}

use Kind::*;

/// The SQLite schema version this command reads: the newest this program knows. The tables and columns it copies
/// are [`TABLES`], the store's own list of them.
fn sqlite_schema_version() -> i64 {
    crate::store::sqlite::MIGRATIONS.last().map_or(0, |m| m.0)
}

type Param = Box<dyn ToSql + Sync + Send>;

fn convert(table: &str, col: &str, kind: Kind, v: Value) -> Result<Param, String> {
    let bad = |v: &Value| format!("{table}.{col}: unexpected stored value {v:?} for {kind:?}");
    Ok(match (kind, v) {
        (Text | OptText, Value::Text(s)) => Box::new(s),
        (OptText, Value::Null) => Box::new(None::<String>),
        (Int | OptInt, Value::Integer(i)) => Box::new(i),
        (OptInt, Value::Null) => Box::new(None::<i64>),
        (Bool, Value::Integer(i)) => Box::new(i != 0),
        (Bytes, Value::Blob(b)) => Box::new(b),
        (_, v) => return Err(bad(&v)),
    })
}

fn sqlite_path(url: &str) -> Result<PathBuf, String> {
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| format!("--from must be sqlite:FILE, got {url:?}"))?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return Err("--from needs the path of an existing SQLite file".into());
    }
    let path = PathBuf::from(path);
    if !path.is_file() {
        return Err(format!(
            "{} does not exist or is not a file",
            path.display()
        ));
    }
    Ok(path)
}

pub async fn run(args: MigrateArgs) -> Result<(), String> {
    let path = sqlite_path(&args.from)?;
    if !crate::store::is_postgres_url(&args.to) {
        return Err(format!(
            "--to must be a postgres:// or postgresql:// URL, got {:?}",
            crate::store::redact_url(&args.to)
        ));
    }
    let mut source = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    source
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    // One read transaction: every table is read from the same snapshot.
    let snapshot = source.transaction().map_err(|e| e.to_string())?;
    let version: i64 = snapshot
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(|e| format!("{} is not a workmail-pat database: {e}", path.display()))?;
    if version != sqlite_schema_version() {
        return Err(format!(
            "{} has schema version {version}; this program migrates version {} \
             (start and stop a server of this version on it first)",
            path.display(),
            sqlite_schema_version()
        ));
    }
    let mut counts = Vec::new();
    for (table, _) in TABLES {
        let n: i64 = snapshot
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        counts.push(n);
    }
    let total: i64 = counts.iter().sum();

    let config = crate::store::postgres::config_with_password(
        &args.to,
        args.database_password_file.as_deref(),
    )?;
    crate::store::postgres::migrate(&config)
        .await
        .map_err(|e| format!("cannot prepare the PostgreSQL schema: {e}"))?;
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let pg = |e: tokio_postgres::Error| format!("PostgreSQL: {e}");
    let tx = client.transaction().await.map_err(pg)?;
    for (table, _) in TABLES {
        let any: bool = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
            .await
            .map_err(pg)?
            .get(0);
        if any {
            return Err(format!(
                "the PostgreSQL database already holds data (table {table} is not empty); migrate into an \
                 empty database"
            ));
        }
    }

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:32} [{bar:40}] {pos}/{len} rows ({per_sec}, eta {eta})")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    for (table, columns) in TABLES {
        bar.set_message(table.to_string());
        let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
        let types: Vec<Type> = columns.iter().map(|c| pg_type(c.1)).collect();
        let sink = tx
            .copy_in(&format!(
                "COPY {table} ({}) FROM STDIN BINARY",
                names.join(", ")
            ))
            .await
            .map_err(pg)?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        tokio::pin!(writer);
        let mut stmt = snapshot
            .prepare(&format!("SELECT {} FROM {table}", names.join(", ")))
            .map_err(|e| e.to_string())?;
        let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            let mut values: Vec<Param> = Vec::with_capacity(columns.len());
            for (i, (col, kind)) in columns.iter().enumerate() {
                let v: Value = row.get(i).map_err(|e| e.to_string())?;
                values.push(convert(table, col, *kind, v)?);
            }
            let refs: Vec<&(dyn ToSql + Sync)> = values
                .iter()
                .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                .collect();
            writer.as_mut().write(&refs).await.map_err(pg)?;
            bar.inc(1);
        }
        writer.finish().await.map_err(pg)?;
    }
    // Check before committing that every row arrived.
    for ((table, _), want) in TABLES.iter().zip(&counts) {
        let got: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await
            .map_err(pg)?
            .get(0);
        if got != *want {
            return Err(format!(
                "{table}: copied {got} rows but the source has {want}; nothing was committed"
            ));
        }
    }
    tx.commit().await.map_err(pg)?;
    bar.finish_and_clear();
    drop(client);
    let _ = driver.await;
    let summary: Vec<String> = TABLES
        .iter()
        .zip(&counts)
        .map(|((t, _), n)| format!("{n} {t}"))
        .collect();
    println!("migrated {}", summary.join(", "));
    Ok(())
}
