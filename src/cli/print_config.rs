//! `tickfeed serve --print-config`: the effective settings as TOML, one
//! line per option with where its value came from, secrets redacted. The
//! output is a valid `--config` file: values are written as the options
//! take them (`"15s"`, `"64KiB"`), and defaults are commented out.

use super::layers::{Origin, ServeSources};
use clap::{Arg, ArgAction};

/// What a secret's values are printed as.
pub const REDACTED: &str = "(redacted)";

/// The TOML text, in the order of `tickfeed serve --help`.
pub fn render(serve: &clap::Command, sources: &ServeSources) -> String {
    let mut out = String::from(
        "# tickfeed serve: effective settings, each with where it came from\n\
         # (command line > environment > config file > default)\n",
    );
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let Some(origin) = sources.origins.get(long) else {
            continue;
        };
        if ["config", "print-config"].contains(&long) {
            continue;
        }
        let raw: Vec<String> = sources
            .matches
            .get_raw(arg.get_id().as_str())
            .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        out += &match (value(arg, raw), origin) {
            (None, origin) => format!("# {long}: none  # {origin}\n"),
            // Commented out, so that the output read back as a file sets
            // only what differs from the defaults.
            (Some(value), Origin::Default) => format!("# {long} = {value}  # default\n"),
            (Some(value), origin) => format!("{long} = {value}  # {origin}\n"),
        };
    }
    out
}

/// An option's raw values as a TOML value; `None` when it has none.
fn value(arg: &Arg, raw: Vec<String>) -> Option<toml::Value> {
    let raw: Vec<String> = if arg.is_hide_env_values_set() {
        raw.iter().map(|_| REDACTED.to_string()).collect()
    } else {
        raw
    };
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => Some(toml::Value::Boolean(
            raw.first().is_some_and(|v| v == "true"),
        )),
        ArgAction::Append if !raw.is_empty() => Some(toml::Value::Array(
            raw.into_iter().map(toml::Value::String).collect(),
        )),
        _ => raw.into_iter().next().map(scalar),
    }
}

/// A number stays a number, anything else is a string.
fn scalar(text: String) -> toml::Value {
    if let Ok(n) = text.parse::<i64>() {
        toml::Value::Integer(n)
    } else {
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() && !text.contains(['e', 'E']) => toml::Value::Float(x),
            _ => toml::Value::String(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_numbers_and_the_rest_strings() {
        let shown = |text: &str| scalar(text.into()).to_string();
        assert_eq!(shown("5000"), "5000");
        assert_eq!(shown("0.5"), "0.5");
        assert_eq!(shown("15s"), "\"15s\"");
        assert_eq!(shown("1e3"), "\"1e3\"");
        assert_eq!(shown("NaN"), "\"NaN\"");
        assert_eq!(shown("127.0.0.1:8080"), "\"127.0.0.1:8080\"");
    }
}
