//! The web UI in a real browser: runs the end-to-end suites in
//! `gateway/e2e/` (Node's test runner driving Debian's headless Chromium
//! through playwright-core) against this build's `switchboard` binary.
//!
//! Needs `/usr/bin/chromium` and `npm ci --prefix gateway/e2e` once per
//! machine (`.ci/run` does both). Screenshots of every step land in
//! `target/e2e-artifacts/`.

use std::path::Path;
use std::process::Command;

#[test]
fn web_ui_end_to_end_in_headless_chromium() {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: apt-get install -y chromium chromium-driver (or run .ci/run)"
    );
    assert!(
        e2e.join("node_modules/playwright-core").exists(),
        "e2e packages are missing: npm ci --prefix gateway/e2e (or run .ci/run)"
    );
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", "tests/"])
        .current_dir(&e2e)
        .env("SWITCHBOARD_BIN", env!("CARGO_BIN_EXE_switchboard"))
        .status()
        .expect("node runs (install Node.js 20 or later)");
    assert!(
        status.success(),
        "browser suites failed: see the output above and target/e2e-artifacts/"
    );
}
