//! Throw-away PostgreSQL databases for tests.
//!
//! The server is taken from `WORKMAIL_PAT_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`, the
//! machine's cluster with trust auth, which `scripts/test.sh` starts). Each [`TestDb`] is a uniquely named
//! database, dropped (even while clients are still connected) when the value is dropped, also when a test fails.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The PostgreSQL server used by tests, as a URL without a database name.
pub fn server_url() -> String {
    std::env::var("WORKMAIL_PAT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
        .trim_end_matches('/')
        .to_string()
}

/// Runs statements on the server's maintenance database, on a helper thread with its own runtime so that this
/// works from sync code, from `Drop` and from inside any async test.
pub fn admin(sql: String) -> Result<(), String> {
    let url = format!("{}/postgres", server_url());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| {
                    format!(
                        "cannot reach the test PostgreSQL at {url} ({e}); start it (scripts/test.sh does) or \
                         set WORKMAIL_PAT_TEST_POSTGRES"
                    )
                })?;
            let driver = tokio::spawn(conn);
            let r = client.batch_execute(&sql).await.map_err(|e| e.to_string());
            drop(client);
            let _ = driver.await;
            r
        })
    })
    .join()
    .map_err(|_| "admin thread panicked".to_string())?
}

/// A fresh, empty database; dropped with the value.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn create(prefix: &str) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("wmpat_{prefix}_{}_{n}_{nanos}", std::process::id());
        admin(format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("{e}"));
        let url = format!("{}/{name}", server_url());
        TestDb { name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // FORCE ends sessions a still-running server holds (PostgreSQL 13+).
        if let Err(e) = admin(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
