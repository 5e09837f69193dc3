//! What the engine's integration tests share: a database of the test's own
//! on the machine's PostgreSQL (127.0.0.1:5432, user postgres, trust auth),
//! and a SQLite file in a folder of its own.

#![allow(dead_code)] // each test binary uses a part

use std::process::{Command, Stdio};
use switchboard_engine::storage::{Database, DatabaseConfig};

/// A database of the test's own on the machine's PostgreSQL, created empty
/// and dropped (`WITH (FORCE)`: the pool may still hold connections) on
/// drop.
pub struct Postgres {
    pub name: String,
}

impl Postgres {
    pub fn create() -> Postgres {
        let name = format!("sb_test_{}", uuid::Uuid::now_v7().simple());
        psql(&format!("CREATE DATABASE {name}"));
        Postgres { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// The system of record on it (migrations run).
    pub async fn open(&self) -> Database {
        Database::open(DatabaseConfig::new(self.url()))
            .await
            .unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Runs one statement in the `postgres` database with `psql`.
pub fn psql(sql: &str) {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .expect("psql runs (the PostgreSQL client is installed)");
    assert!(
        output.status.success() || std::thread::panicking(),
        "psql {sql:?} on the PostgreSQL at 127.0.0.1:5432: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A SQLite file in a temporary folder, removed on drop.
pub struct SqliteFile(pub std::path::PathBuf);

impl SqliteFile {
    pub fn create() -> SqliteFile {
        let dir = std::env::temp_dir().join(format!("sb-engine-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        SqliteFile(dir)
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}/switchboard.db", self.0.display())
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
