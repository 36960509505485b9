//! Optional defaults from a TOML file at `$XDG_CONFIG_HOME/udpix/config.toml` (else
//! `~/.config/udpix/config.toml`). Precedence: command line > environment > file > built-in.
//! `docs/config.toml` is a commented sample; a test checks it parses.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::tui::graphics::ImageProtocol;

/// Colour use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colors {
    /// Colours unless NO_COLOR is set.
    #[default]
    Auto,
    /// Never any colour.
    Never,
}

/// What the file may set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Default listen address (`udpix recv`, TUI receive role).
    pub listen: Option<String>,
    /// Default receiver to send to (TUI send role).
    pub connect: Option<String>,
    /// Default output folder.
    pub out: Option<PathBuf>,
    /// Default image protocol for the TUI preview.
    pub image_protocol: Option<ImageProtocol>,
    /// Colour use.
    pub colors: Option<Colors>,
    /// Take mouse clicks and the wheel in the TUI (then Shift-drag selects text).
    pub mouse: Option<bool>,
}

/// Why the config file could not be used. (Each reason is part of the message, not a
/// `source`: printed as a chain it would show twice.)
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file named with `--config` or `$UDPIX_CONFIG` does not exist.
    #[error("config file {path} does not exist: check --config or $UDPIX_CONFIG")]
    Missing {
        /// The file.
        path: String,
    },
    /// It exists but cannot be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: std::io::Error,
    },
    /// It is not valid TOML for udpix.
    #[error("{path} is not a valid udpix config: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with line and column.
        reason: toml::de::Error,
    },
}

/// Where the config file lives (whether or not it exists).
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("udpix").join("config.toml"))
}

/// Reads the file at the default path; a missing file is an empty config.
pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    read(path, true)
}

/// Reads a file the user named (`--config`, `$UDPIX_CONFIG`): a missing one is an error.
pub fn load_given(path: &Path) -> Result<FileConfig, ConfigError> {
    read(path, false)
}

fn read(path: &Path, missing_is_empty: bool) -> Result<FileConfig, ConfigError> {
    let shown = || path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if missing_is_empty {
                Ok(FileConfig::default())
            } else {
                Err(ConfigError::Missing { path: shown() })
            };
        }
        Err(reason) => {
            return Err(ConfigError::Read {
                path: shown(),
                reason,
            });
        }
    };
    parse(&text).map_err(|reason| ConfigError::Parse {
        path: shown(),
        reason,
    })
}

/// Parses config text.
pub fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
    toml::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_parses_to_the_documented_values() {
        let sample = include_str!("../docs/config.toml");
        let c = parse(sample).expect("docs/config.toml parses");
        assert_eq!(c.listen.as_deref(), Some("0.0.0.0:7878"));
        assert_eq!(c.out, Some(PathBuf::from(".")));
        assert_eq!(c.image_protocol, Some(ImageProtocol::Auto));
        assert_eq!(c.colors, Some(Colors::Auto));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(parse("listn = \"x\"").is_err());
        assert!(parse("image_protocol = \"png\"").is_err());
        assert_eq!(parse("").expect("empty"), FileConfig::default());
        let missing = load(Path::new("/nonexistent/udpix.toml")).expect("missing is empty");
        assert_eq!(missing, FileConfig::default());
        let named = load_given(Path::new("/nonexistent/udpix.toml")).expect_err("named");
        assert!(matches!(named, ConfigError::Missing { .. }));
        assert!(
            named.to_string().contains("/nonexistent/udpix.toml"),
            "{named}"
        );
    }
}
