//! The `tickfeed` binary: parse the command line, set up logging, call the
//! library, and map its result to an exit code: 0 success, 2 invalid input
//! (usage, an option's value wherever it came from, the config file, an
//! unreadable feed file), 1 any other failure.

use std::io::IsTerminal;
use std::process::ExitCode;
use tickfeed::cli::layers::{self, ParseError, ServeSources};
use tickfeed::cli::{Command, LogFormat, manual};
use tracing_subscriber::EnvFilter;

/// The exit status of invalid input, as clap's for a usage error.
const INVALID_INPUT: u8 = 2;

fn main() -> ExitCode {
    let parsed = match layers::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(ParseError::Clap(error)) => error.exit(),
        Err(error) => {
            eprintln!("tickfeed: {error}");
            return ExitCode::from(INVALID_INPUT);
        }
    };
    match parsed.cli.command {
        Some(Command::Completions(args)) => {
            manual::completions(args.shell, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man) => {
            return match manual::man_page(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => failed(&error.into()),
            };
        }
        _ => {}
    }
    init_logging(parsed.cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let sources = parsed.serve;
    let result = runtime.block_on(async move {
        match parsed.cli.command {
            Some(Command::Serve(args)) => serve(args, sources).await,
            Some(Command::Bench(args)) => tickfeed::bench::run(args).await.map(|_| ()),
            Some(Command::Feed(args)) => tickfeed::cli::run_feed(args).map_err(Into::into),
            Some(Command::Completions(_) | Command::Man) => Ok(()),
            None => serve(parsed.cli.serve, sources).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failed(&error),
    }
}

/// Reports the error; invalid input exits 2, anything else 1.
fn failed(error: &anyhow::Error) -> ExitCode {
    eprintln!("tickfeed: {error:#}");
    let invalid = error.is::<layers::SettingError>()
        || error.is::<tickfeed::bench::args::ArgsError>()
        || error
            .downcast_ref::<tickfeed::feed::FeedError>()
            .is_some_and(tickfeed::feed::FeedError::is_invalid_input);
    match invalid {
        true => ExitCode::from(INVALID_INPUT),
        false => ExitCode::FAILURE,
    }
}

async fn serve(
    args: tickfeed::cli::ServeArgs,
    sources: Option<ServeSources>,
) -> anyhow::Result<()> {
    let sources = sources.expect("serve's options are parsed with their sources");
    let print_config = args.print_config;
    let config = args.into_config().map_err(|e| sources.explain(e))?;
    if print_config {
        let serve = layers::command();
        let serve = serve
            .find_subcommand("serve")
            .expect("serve is a subcommand");
        print!("{}", tickfeed::cli::print_config::render(serve, &sources));
        return Ok(());
    }
    raise_fd_limit();
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
