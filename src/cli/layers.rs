//! Where each `serve` setting comes from. Highest first: the command line,
//! the environment (`TICKFEED_<OPTION>`), the `--config` file, the built-in
//! default (docs/configuration.md).
//!
//! clap reads the first two: [`command`] gives every `serve` option its
//! variable, so an option added later has one without more code. The
//! file's values are checked by clap too: each option that neither the
//! command line nor the environment set is appended to the command line
//! from the file, and the parse remembers which, so an error and
//! `--print-config` name the true source of each value.

use super::config_file::{ConfigFile, ConfigFileError, FileValue};
use super::{Cli, ConfigError};
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// The prefix of every `serve` option's environment variable.
pub const ENV_PREFIX: &str = "TICKFEED_";
/// Options that configure the reading of settings, not the server: a file
/// cannot hold them.
const NOT_IN_FILE: &[&str] = &["config", "print-config"];

/// The command line as the binary parses it: the derive's definition, with
/// an environment variable for every `serve` option that has none yet
/// (`--token` keeps `TICKFEED_TOKENS`, `--allowed-origin` keeps
/// `TICKFEED_ALLOWED_ORIGINS`: each holds a comma-separated list).
pub fn command() -> clap::Command {
    command_for(true)
}

/// With `top_level` false, the options of `tickfeed` without a subcommand
/// read no environment: a variable meant for `serve` must not stop
/// `tickfeed bench` or `tickfeed serve --rate 7k` (flag and subcommand
/// are two definitions of the same option).
fn command_for(top_level: bool) -> clap::Command {
    let command = Cli::command()
        .mut_subcommand("serve", |serve| serve.mut_args(with_env))
        .after_long_help(AFTER_HELP);
    match top_level {
        true => command.mut_args(with_env),
        false => command,
    }
}

/// The end of `tickfeed --help` and of the man page.
const AFTER_HELP: &str = "\
Every option of serve is also read from the environment variable \
TICKFEED_<OPTION> (TICKFEED_LISTEN, TICKFEED_MAX_LAG, ...; --token from \
TICKFEED_TOKENS and --allowed-origin from TICKFEED_ALLOWED_ORIGINS, \
comma-separated lists) and from the TOML file of --config, whose keys are \
the long option names. The command line wins over the environment, the \
environment over the file, the file over the defaults; --print-config \
shows the outcome.

Exit status: 0 on success, 2 for invalid input (usage, an option's value \
from any source, the config file, an unusable feed file), 1 for any other \
failure (and for feed check finding bad rows).";

/// `--max-lag` is read from `TICKFEED_MAX_LAG`.
pub fn env_name(long: &str) -> String {
    format!("{ENV_PREFIX}{}", long.to_uppercase().replace('-', "_"))
}

fn with_env(arg: Arg) -> Arg {
    match arg.get_long() {
        Some(long) if arg.get_env().is_none() && takes_setting(&arg) => {
            let name = env_name(long);
            arg.env(clap::builder::Str::from(name))
        }
        _ => arg,
    }
}

fn takes_setting(arg: &Arg) -> bool {
    !matches!(arg.get_action(), ArgAction::Help | ArgAction::Version)
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    CommandLine,
    Env(String),
    File { path: PathBuf, key: String },
    Default,
    Unset,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::CommandLine => write!(f, "command line"),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::File { path, key } => write!(f, "{}:{key}", path.display()),
            Origin::Default => write!(f, "default"),
            Origin::Unset => write!(f, "not set"),
        }
    }
}

/// The command line parsed, and for `serve` where each setting came from.
pub struct Parsed {
    pub cli: Cli,
    pub serve: Option<ServeSources>,
}

/// `serve`'s parsed options and the origin of each, by long name.
pub struct ServeSources {
    pub matches: ArgMatches,
    pub origins: BTreeMap<String, Origin>,
}

/// A command line that cannot run. clap's errors (help and version
/// included) print themselves and choose the exit status.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error(transparent)]
    File(#[from] ConfigFileError),
}

/// A setting that failed validation, with where its value came from.
#[derive(Debug, thiserror::Error)]
#[error("{error}{}", from_note(origin.as_ref()))]
pub struct SettingError {
    pub error: ConfigError,
    pub origin: Option<Origin>,
}

fn from_note(origin: Option<&Origin>) -> String {
    match origin {
        Some(origin @ (Origin::Env(_) | Origin::File { .. })) => format!(" (from {origin})"),
        _ => String::new(),
    }
}

/// Parses `argv` with every layer applied.
pub fn parse(argv: Vec<OsString>) -> Result<Parsed, ParseError> {
    let serve_command = command()
        .find_subcommand("serve")
        .expect("serve is a subcommand")
        .clone();
    // A first, lenient pass learns what the command line and the
    // environment set, and which file to read.
    let lenient = command_for(true)
        .ignore_errors(true)
        .try_get_matches_from(&argv)?;
    let command = command_for(lenient.subcommand_name().is_none());
    let Some(first) = serve_matches(&lenient) else {
        let matches = command.try_get_matches_from(&argv)?;
        let cli = Cli::from_arg_matches(&matches)?;
        return Ok(Parsed { cli, serve: None });
    };
    let mut origins: BTreeMap<String, Origin> = serve_command
        .get_arguments()
        .filter(|arg| takes_setting(arg))
        .filter_map(|arg| Some((arg.get_long()?.to_string(), origin_of(arg, first))))
        .collect();
    let mut argv = argv;
    if let Some(path) = first.get_one::<PathBuf>("config") {
        let file = ConfigFile::load(path)?;
        for (key, value) in &file.settings {
            let arg = serve_command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(key.as_str()))
                .filter(|_| !NOT_IN_FILE.contains(&key.as_str()))
                .ok_or_else(|| {
                    file.error(key, "not a setting; keys are the long options of `tickfeed serve` (tickfeed serve --help)")
                })?;
            if matches!(origins[key], Origin::CommandLine | Origin::Env(_)) {
                continue;
            }
            argv.extend(as_options(arg, value).map_err(|what| file.error(key, what))?);
            let origin = Origin::File {
                path: file.path.clone(),
                key: key.clone(),
            };
            origins.insert(key.clone(), origin);
        }
    }
    let matches = command
        .try_get_matches_from(&argv)
        .map_err(|error| attribute(error, &origins))?;
    let cli = Cli::from_arg_matches(&matches)?;
    let matches = serve_matches(&matches)
        .expect("the same command as the first pass")
        .clone();
    Ok(Parsed {
        cli,
        serve: Some(ServeSources { matches, origins }),
    })
}

/// `serve`'s options: the subcommand's, or the top level's without one.
fn serve_matches(matches: &ArgMatches) -> Option<&ArgMatches> {
    match matches.subcommand() {
        Some(("serve", serve)) => Some(serve),
        Some(_) => None,
        None => Some(matches),
    }
}

fn origin_of(arg: &Arg, matches: &ArgMatches) -> Origin {
    let source = matches.value_source(arg.get_id().as_str());
    let env = arg
        .get_env()
        .filter(|name| std::env::var_os(name).is_some());
    match (source, env) {
        (Some(ValueSource::CommandLine), _) => Origin::CommandLine,
        // Also an environment value the lenient pass could not parse.
        (_, Some(name)) => Origin::Env(name.to_string_lossy().into_owned()),
        (Some(ValueSource::DefaultValue), None) => Origin::Default,
        _ => Origin::Unset,
    }
}

/// The file's value as options for the command line.
fn as_options(arg: &Arg, value: &FileValue) -> Result<Vec<OsString>, String> {
    let long = arg.get_long().expect("file keys are long options");
    let switch = matches!(arg.get_action(), ArgAction::SetTrue);
    let list = matches!(arg.get_action(), ArgAction::Append);
    let option = |text: &String| OsString::from(format!("--{long}={text}"));
    match value {
        FileValue::Switch(on) if switch => {
            Ok(on.then(|| format!("--{long}").into()).into_iter().collect())
        }
        FileValue::One(text) if !switch => Ok(vec![option(text)]),
        FileValue::Many(texts) if list => Ok(texts.iter().map(option).collect()),
        FileValue::Many(_) if !switch => Err(format!("--{long} takes one value, not a list")),
        _ if switch => Err(format!("--{long} is on or off: write true or false")),
        _ => Err(format!("--{long} takes a value, not true or false")),
    }
}

/// Adds to a clap error which environment variable or file gave the value
/// it is about; when it is about no one value (a missing `--replay` that
/// `--loop` requires), every value that came from outside the command line.
fn attribute(mut error: clap::Error, origins: &BTreeMap<String, Origin>) -> clap::Error {
    let outside = |origin: &Origin| matches!(origin, Origin::Env(_) | Origin::File { .. });
    let named = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(shown)) => shown
            .trim_start_matches('-')
            .split([' ', '='])
            .next()
            .map(String::from),
        _ => None,
    };
    let tip = match named.and_then(|long| Some((origins.get(&long)?.clone(), long))) {
        Some((origin, long)) if outside(&origin) => {
            format!("the value of --{long} came from {origin}")
        }
        _ => {
            let from: Vec<String> = origins
                .iter()
                .filter(|(_, origin)| outside(origin))
                .map(|(long, origin)| format!("--{long} from {origin}"))
                .collect();
            if from.is_empty() {
                return error;
            }
            format!("set outside the command line: {}", from.join(", "))
        }
    };
    error.insert(
        ContextKind::Suggested,
        ContextValue::StyledStrs(vec![tip.into()]),
    );
    error
}

impl ServeSources {
    /// The validation error with the origin of the setting it names.
    pub fn explain(&self, error: ConfigError) -> SettingError {
        let origin = error
            .flag()
            .and_then(|flag| self.origins.get(flag))
            .cloned();
        SettingError { error, origin }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_arg(long: &str) -> Arg {
        command()
            .find_subcommand("serve")
            .and_then(|serve| serve.get_arguments().find(|a| a.get_long() == Some(long)))
            .cloned()
            .unwrap_or_else(|| panic!("--{long}"))
    }

    #[test]
    fn variables_are_the_option_in_upper_snake_case() {
        assert_eq!(env_name("max-lag"), "TICKFEED_MAX_LAG");
        assert_eq!(serve_arg("listen").get_env().unwrap(), "TICKFEED_LISTEN");
        assert_eq!(serve_arg("token").get_env().unwrap(), "TICKFEED_TOKENS");
    }

    #[test]
    fn file_values_become_options_of_their_kind() {
        let one = |text: &str| FileValue::One(text.into());
        let texts = |args: Vec<OsString>| -> Vec<String> {
            args.into_iter().map(|a| a.into_string().unwrap()).collect()
        };
        assert_eq!(
            texts(as_options(&serve_arg("rate"), &one("20k")).unwrap()),
            ["--rate=20k"]
        );
        assert_eq!(
            texts(as_options(&serve_arg("loop"), &FileValue::Switch(true)).unwrap()),
            ["--loop"]
        );
        assert!(
            as_options(&serve_arg("loop"), &FileValue::Switch(false))
                .unwrap()
                .is_empty()
        );
        let servers = FileValue::Many(vec!["nats://a:1".into(), "nats://b:2".into()]);
        assert_eq!(
            texts(as_options(&serve_arg("nats"), &servers).unwrap()),
            ["--nats=nats://a:1", "--nats=nats://b:2"]
        );
        assert!(
            as_options(&serve_arg("rate"), &servers)
                .unwrap_err()
                .contains("one value")
        );
        assert!(
            as_options(&serve_arg("loop"), &one("yes"))
                .unwrap_err()
                .contains("true or false")
        );
        assert!(
            as_options(&serve_arg("rate"), &FileValue::Switch(true))
                .unwrap_err()
                .contains("not true or false")
        );
    }
}
