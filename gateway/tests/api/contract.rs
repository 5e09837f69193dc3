//! The API contract: schemathesis, driven from the served OpenAPI document
//! with a real admin token, runs every check it has (`--checks all`) against
//! a real node: statuses the document does not list, bodies that do not
//! match their schema, methods a path does not take (405 with `Allow`),
//! bad input accepted, good input refused, and so on. `schemathesis.toml`
//! beside this file names the operations that may refuse a schema-valid
//! value (an opaque cursor from elsewhere, say), and why.
//!
//! Needs schemathesis in `target/schemathesis-venv` (`.ci/run` installs it:
//! `python3 -m venv target/schemathesis-venv && target/schemathesis-venv/bin/pip
//! install schemathesis`).

use std::path::Path;
use std::process::Command;
use switchboard_gateway::app::StartOptions;

use crate::support::{config_with_admin, DataDir, Node};

#[actix_rt::test]
async fn the_served_openapi_document_holds_under_schemathesis() {
    let st = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/schemathesis-venv/bin/st")
        .canonicalize()
        .unwrap_or_else(|_| {
            panic!(
                "schemathesis is missing: python3 -m venv target/schemathesis-venv && \
                 target/schemathesis-venv/bin/pip install schemathesis (or run .ci/run)"
            )
        });
    // Sam may do everything (admin); the limits leave room for the fuzzing.
    let node = Node::start_config(
        &config_with_admin(),
        DataDir::new(),
        &[
            ("SWITCHBOARD__LIMITS__CHATS_PER_MINUTE_PER_ADDRESS", "0"),
            ("SWITCHBOARD__LIMITS__LOGINS_PER_MINUTE_PER_ADDRESS", "0"),
            ("SWITCHBOARD__LIMITS__LOGINS_PER_MINUTE_PER_ACCOUNT", "0"),
        ],
        StartOptions {
            workers: 2,
            ..StartOptions::default()
        },
    )
    .await;
    let token = node.login("sam").await;
    let schema = format!("{}/api/v1/openapi.json", node.base);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/schemathesis.toml");
    let output = actix_web::rt::task::spawn_blocking(move || {
        Command::new(st)
            // Which operations may refuse a schema-valid value, and why.
            .arg("--config-file")
            .arg(config)
            .args(["run", &schema, "--checks", "all", "--workers", "1"])
            .args(["--max-examples", "30", "--request-timeout", "40"])
            // Reproducible: the same cases every run.
            .args(["--generation-deterministic", "--no-color"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .output()
            .expect("schemathesis runs")
    })
    .await
    .expect("schemathesis thread");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}"
    );
}
