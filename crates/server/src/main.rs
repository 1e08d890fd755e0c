//! The `confab` command line: `confab` (or `confab serve`) runs the server.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use confab_server::{App, Config};
use tracing_subscriber::EnvFilter;

/// A conversation server for chatbots.
#[derive(Debug, Parser)]
#[command(name = "confab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Print the OpenAPI document of the HTTP API.
    #[command(hide = true)]
    Openapi,
}

#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "CONFAB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Database URL: sqlite://FILE?mode=rwc or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "CONFAB_DATABASE_URL",
        default_value = "sqlite://confab.db?mode=rwc"
    )]
    database_url: String,
    /// Token signing secret; generated and kept in the database when absent.
    #[arg(long, env = "CONFAB_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Whether POST /auth/guest hands out guest tokens.
    #[arg(long, env = "CONFAB_GUESTS", default_value_t = true, action = clap::ArgAction::Set)]
    guests: bool,
}

impl ServeArgs {
    fn into_config(self) -> Config {
        Config {
            listen: self.listen,
            database_url: self.database_url,
            jwt_secret: self.jwt_secret,
            guests_enabled: self.guests,
            ..Config::default()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => {
            println!("{}", confab_api_axum::openapi().to_pretty_json()?);
            Ok(())
        }
        Some(Command::Serve(args)) => serve(args.into_config()).await,
        None => serve(cli.serve.into_config()).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let app = App::build(config).await?;
    app.run_until_stopped(shutdown_signal()).await
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
