//! Hardening: what an operator is protected from without asking (known
//! secrets refused, ...). Each test fails on a node without the fix.

use std::process::Command;
use switchboard_gateway::settings::DEMO_TOKEN_SECRET;

use crate::support::CONFIG;

const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Runs `switchboard check-config` on `config` written to a file of its own.
fn check_config(name: &str, config: &str) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("sb-check-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, config).expect("config written");
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .env_remove("SWITCHBOARD__AUTH__TOKEN_SECRET")
        .output()
        .expect("switchboard runs");
    let _ = std::fs::remove_dir_all(&dir);
    output
}

#[test]
fn known_secrets_are_refused_by_check_config() {
    for (name, secret) in [
        ("demo", DEMO_TOKEN_SECRET),
        ("placeholder", "change-me-change-me-change-me-change-me"),
    ] {
        let output = check_config(name, &CONFIG.replace(TEST_SECRET, secret));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}: {stderr}");
        assert!(stderr.contains("auth.token_secret"), "{name}: {stderr}");
        assert!(stderr.contains("gen-secret"), "{name}: {stderr}");
    }

    // `gen-secret` makes one the same check accepts.
    let generated = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("gen-secret")
        .output()
        .expect("switchboard runs");
    assert!(generated.status.success());
    let secret = String::from_utf8_lossy(&generated.stdout).trim().to_owned();
    assert_eq!(secret.len(), 64, "{secret}");
    let output = check_config("generated", &CONFIG.replace(TEST_SECRET, &secret));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
