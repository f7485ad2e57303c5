//! The `--config` file: TOML whose keys are `serve`'s long option names
//! (`rate = "20k"`, `token = ["a", "b"]`, `loop = true`). This module only
//! reads the file into option values as text; `layers.rs` decides which of
//! them apply, and clap checks them exactly as it checks the options.

use std::path::{Path, PathBuf};

/// One setting of the file, as option text.
#[derive(Debug, Clone, PartialEq)]
pub enum FileValue {
    /// A string, number or date: one option value.
    One(String),
    /// An array: the option given once per element.
    Many(Vec<String>),
    /// `true` or `false`: an on/off option.
    Switch(bool),
}

/// A config file that cannot be used; each names the file, and the key
/// when one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("config file {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}:{line}: not valid TOML: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{key}: {what}")]
    Key {
        path: PathBuf,
        key: String,
        what: String,
    },
}

/// The file's settings, in key order.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub settings: Vec<(String, FileValue)>,
}

impl ConfigFile {
    /// Reads and parses `path`; each top-level key becomes a setting.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e.span().map_or(0, |span| span.start);
            ConfigFileError::Syntax {
                path: path.to_path_buf(),
                line: 1 + text[..at.min(text.len())].matches('\n').count(),
                message: e.message().trim_end().to_string(),
            }
        })?;
        let settings = table
            .into_iter()
            .map(|(key, value)| {
                let value = file_value(&value).map_err(|what| ConfigFileError::Key {
                    path: path.to_path_buf(),
                    key: key.clone(),
                    what,
                })?;
                Ok((key, value))
            })
            .collect::<Result<_, ConfigFileError>>()?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            settings,
        })
    }

    /// The error for `key` of this file.
    pub fn error(&self, key: &str, what: impl Into<String>) -> ConfigFileError {
        ConfigFileError::Key {
            path: self.path.clone(),
            key: key.to_string(),
            what: what.into(),
        }
    }
}

fn file_value(value: &toml::Value) -> Result<FileValue, String> {
    match value {
        toml::Value::Boolean(on) => Ok(FileValue::Switch(*on)),
        toml::Value::Array(items) => items
            .iter()
            .map(scalar)
            .collect::<Result<_, _>>()
            .map(FileValue::Many),
        other => scalar(other).map(FileValue::One),
    }
}

fn scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(x) => Ok(x.to_string()),
        toml::Value::Datetime(at) => Ok(at.to_string()),
        toml::Value::Boolean(_) | toml::Value::Array(_) | toml::Value::Table(_) => Err(format!(
            "expected a string or a number, got {value}; settings are top-level keys named after the options"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<(String, FileValue)>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickfeed.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile::load(&path)
            .map(|file| file.settings)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn values_become_option_text() {
        let settings = load(
            "rate = \"20k\"\nsymbols = 40\nskew = 0.5\nloop = true\ntoken = [\"a\", \"b\"]\nfrom = 2024-01-02T03:04:05Z\n",
        )
        .unwrap();
        let one = |s: &str| FileValue::One(s.into());
        assert_eq!(
            settings,
            [
                ("from".into(), one("2024-01-02T03:04:05Z")),
                ("loop".into(), FileValue::Switch(true)),
                ("rate".into(), one("20k")),
                ("skew".into(), one("0.5")),
                ("symbols".into(), one("40")),
                (
                    "token".into(),
                    FileValue::Many(vec!["a".into(), "b".into()])
                ),
            ]
        );
    }

    #[test]
    fn bad_files_name_the_file_and_the_key() {
        let syntax = load("rate = \n").unwrap_err();
        assert!(
            syntax.contains("tickfeed.toml:1: not valid TOML"),
            "{syntax}"
        );
        let table = load("[serve]\nrate = 5\n").unwrap_err();
        assert!(
            table.contains("tickfeed.toml:serve: expected a string"),
            "{table}"
        );
        let missing = ConfigFile::load(Path::new("no/such.toml")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("config file no/such.toml: cannot read")
        );
    }
}
