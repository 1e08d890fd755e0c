//! The `confab` command line: `confab` (or `confab serve`) runs the server; `migrate`,
//! `token` and `config print` help operate it. See docs/operations.md.

mod cli;

use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::Parser as _;
use confab_api_axum::Auth;
use confab_domain::bot::BotId;
use confab_domain::user::{Role, UserId};
use confab_migrations::{Migrator, MigratorTrait as _};
use confab_server::App;
use confab_server::config::{self, Config, LogFormat};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, ConfigAction, MigrateAction, TokenArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        println!("{}", confab_api_axum::openapi().to_pretty_json()?);
        return Ok(());
    }
    let config = config::load(&cli.global.sources())?;
    match cli.command {
        None | Some(Command::Serve) => {
            init_logging(&config)?;
            let app = App::build(config).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Some(Command::Migrate { action }) => {
            init_logging(&config)?;
            migrate(&config, action.unwrap_or(MigrateAction::Up)).await
        }
        Some(Command::Token(args)) => token(&config, &args).await,
        Some(Command::Config {
            action: ConfigAction::Print,
        }) => {
            print!("{}", config::print_redacted(&config)?);
            Ok(())
        }
        Some(Command::Openapi) => Ok(()),
    }
}

/// Logs to stderr, so that stdout carries only what a command prints.
fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log.filter).with_context(|| {
        format!(
            "invalid configuration key `log.filter`: {:?}",
            config.log.filter
        )
    })?;
    // Colours only for a person at a terminal: in a file or a journal the escape
    // codes are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    Ok(())
}

async fn migrate(config: &Config, action: MigrateAction) -> anyhow::Result<()> {
    let url = config::redact_url(&config.database_url);
    let db = confab_storage_seaorm::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {url}"))?;
    match action {
        MigrateAction::Up => {
            confab_storage_seaorm::migrate(&db)
                .await
                .context("cannot apply database migrations")?;
            println!("migrations applied to {url}");
        }
        MigrateAction::Status => {
            let migrations = Migrator::get_migration_with_status(&db)
                .await
                .context("cannot read the applied migrations")?;
            for migration in migrations {
                println!("{}\t{}", migration.status(), migration.name());
            }
        }
        MigrateAction::Down { steps } => {
            Migrator::down(&db, Some(steps))
                .await
                .context("cannot roll back migrations")?;
            println!("rolled back {steps} migration(s) on {url}");
        }
    }
    Ok(())
}

/// Prints a token, and only the token, on stdout: `TOKEN=$(confab token --user me)`.
async fn token(config: &Config, args: &TokenArgs) -> anyhow::Result<()> {
    let user = UserId::parse(&args.user).context("invalid --user")?;
    let role = match (&args.bot, args.admin, args.agent) {
        (Some(bot), _, _) => Role::Bot(BotId::parse(bot).context("invalid --bot")?),
        (None, true, _) => Role::Admin,
        (None, false, true) => Role::Agent,
        (None, false, false) => Role::User,
    };
    let secret = match &config.jwt_secret {
        Some(secret) => secret.clone(),
        None => App::stored_signing_secret(config).await?,
    };
    let issued = Auth::new(secret.as_bytes())
        .issue(&user, &role, args.ttl)
        .context("cannot issue the token")?;
    println!("{}", issued.token);
    Ok(())
}

/// Completes on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
