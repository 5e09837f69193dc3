//! `switchboard`: runs one node. With no config file it runs the built-in
//! demo config, embedded (no Redis), and says so first.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use switchboard_gateway::app::{self, StartOptions};
use switchboard_gateway::observability;
use switchboard_gateway::settings::{resolve_config_path, Settings, CONFIG_PATH_ENV};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Live Chat engine for contact centers"
)]
struct Cli {
    /// TOML config file (or SWITCHBOARD_CONFIG). Without one, the demo config runs.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print an argon2 hash of a password (read from stdin) for `password_hash`.
    HashPassword,
    /// Load and validate the config, then exit.
    CheckConfig,
    /// Print a new random secret (32 bytes, hex) for `[auth] token_secret`
    /// or `[widget] identity_secret`.
    GenSecret,
    /// Compute the report buckets again from the events kept in the
    /// database (after a change of `[stats]`, or to check them). Buckets
    /// older than the oldest kept event stay as they are.
    RebuildReports,
}

fn load(cli: &Cli) -> anyhow::Result<Settings> {
    let path = resolve_config_path(cli.config.clone(), std::env::var(CONFIG_PATH_ENV).ok());
    let env = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)));
    Ok(Settings::load(path.as_deref(), env)?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::HashPassword) => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let hash =
                switchboard_gateway::auth::hash_password(password.trim_end_matches(['\r', '\n']))?;
            println!("{hash}");
            return Ok(());
        }
        Some(Command::GenSecret) => {
            println!("{}", switchboard_gateway::settings::generate_secret());
            return Ok(());
        }
        Some(Command::CheckConfig) => {
            let settings = load(&cli)?;
            println!(
                "config ok: {} queues, {} agents",
                settings.queues.len(),
                settings.agents.len()
            );
            return Ok(());
        }
        Some(Command::RebuildReports) => {
            let settings = load(&cli).context("invalid configuration")?;
            return actix_web::rt::System::new().block_on(rebuild_reports(settings));
        }
        None => {}
    }
    let settings = load(&cli).context("invalid configuration")?;
    actix_web::rt::System::new().block_on(run(settings))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let _telemetry = observability::init(
        settings.telemetry.log_format,
        settings.telemetry.otlp_endpoint.as_deref(),
        settings.server.node_id.as_str(),
    )?;
    let mode = match &settings.cluster.redis_url {
        None => "embedded",
        Some(_) => "cluster",
    };
    if settings.is_demo() {
        tracing::info!(
            mode,
            "running the built-in demo config ({mode}, no config file given)"
        );
    } else {
        tracing::info!(mode, source = ?settings.source(), "running with config file ({mode})");
    }
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let running = app::start(
        &settings,
        StartOptions {
            workers: settings.server.workers,
            ..StartOptions::default()
        },
    )
    .await?;
    tracing::info!(
        addr = %running.addr,
        metrics = ?running.metrics_addr,
        node_id = %settings.server.node_id,
        node = %running.state.engine.node(),
        "listening"
    );
    shutdown_signal().await;
    tracing::info!("draining: telling sessions to reconnect elsewhere");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn rebuild_reports(settings: Settings) -> anyhow::Result<()> {
    use switchboard_engine::reports::{projection, projector};
    let database = switchboard_engine::storage::Database::open(settings.database_config())
        .await
        .context("opening the database")?;
    let from = database.reset_reports().await?;
    let rules = projection::ReportRules::of(&settings.engine_config());
    let reached = projector::catch_up(&database, &rules).await?;
    println!(
        "reports rebuilt from {} up to event {}",
        from.map(|ms| switchboard_proto::Timestamp(ms).to_rfc3339())
            .unwrap_or_else(|| "the first event".into()),
        reached.seq
    );
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
