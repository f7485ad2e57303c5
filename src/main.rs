//! The `tickfeed` binary: parse the command line, set up logging, call the
//! library, and map its result to an exit code.

use clap::Parser;
use std::io::IsTerminal;
use tickfeed::cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Serve(args)) => serve(args).await,
            Some(Command::Bench(args)) => tickfeed::bench::run(args).await.map(|_| ()),
            Some(Command::Feed(args)) => tickfeed::cli::run_feed(args).map_err(Into::into),
            None => serve(cli.serve).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tickfeed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: tickfeed::cli::ServeArgs) -> anyhow::Result<()> {
    raise_fd_limit();
    let config = args.into_config()?;
    // A `--strict` replay that meets a bad row stops the server like a
    // signal does, and its error becomes the exit status.
    let failure = match &config.source {
        tickfeed::config::SourceConfig::Replay(replay) => replay.failure.clone(),
        _ => Default::default(),
    };
    let stop = async {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = failure.wait() => {}
        }
    };
    tickfeed::server::run(config, stop).await?;
    match failure.error() {
        Some(error) => Err(anyhow::anyhow!(error)),
        None => Ok(()),
    }
}

/// Logs to stderr at `RUST_LOG` (default `info`): text, coloured only
/// when stderr is a terminal and `NO_COLOR` is unset or empty
/// (no-color.org), or one JSON object a line with the event's fields at
/// the top level.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            builder
                .with_ansi(std::io::stderr().is_terminal() && !no_color)
                .init()
        }
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

/// Many clients need many sockets: lift the soft descriptor limit to the
/// hard one.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!("cannot raise the open file limit: {e}"),
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
