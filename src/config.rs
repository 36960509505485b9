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

/// Why the config file could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// It exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not valid TOML for udpix.
    #[error("{path} is not a valid udpix config: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with line and column.
        source: toml::de::Error,
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

/// Reads the file at `path`; a missing file is an empty config.
pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.display().to_string(),
                source,
            });
        }
    };
    parse(&text).map_err(|source| ConfigError::Parse {
        path: path.display().to_string(),
        source,
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
    }
}
