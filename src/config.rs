//! The settings every front end shares (`udpix recv`, `udpix send`, the TUI), resolved in one
//! place, in layers as trippy does: command line > environment (`UDPIX_*`) > config file >
//! built-in defaults. [`resolve`] returns each value with the layer it came from, which
//! `udpix config` prints.
//!
//! The file is `$XDG_CONFIG_HOME/udpix/config.toml` (else `~/.config/udpix/config.toml`), or
//! the one named with `--config` or `$UDPIX_CONFIG` (which must then exist).
//! `docs/config.toml` is a commented sample; a test checks it parses.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// Default listen address (and the port a receiver's address gets when it has none).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7878";

/// Names the config file instead of the default one.
pub const ENV_CONFIG: &str = "UDPIX_CONFIG";
/// Environment variable of `listen`.
pub const ENV_LISTEN: &str = "UDPIX_LISTEN";
/// Environment variable of `connect`.
pub const ENV_CONNECT: &str = "UDPIX_CONNECT";
/// Environment variable of `out`.
pub const ENV_OUT: &str = "UDPIX_OUT";
/// Environment variable of `image_protocol`.
pub const ENV_IMAGE_PROTOCOL: &str = "UDPIX_IMAGE_PROTOCOL";
/// Environment variable of `colors`.
pub const ENV_COLORS: &str = "UDPIX_COLORS";
/// Environment variable of `mouse`.
pub const ENV_MOUSE: &str = "UDPIX_MOUSE";

/// How the TUI draws the preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageProtocol {
    /// Pick what the terminal supports (half blocks inside tmux or when unsure).
    #[default]
    Auto,
    /// The kitty graphics protocol.
    Kitty,
    /// iTerm2's inline images (also WezTerm).
    Iterm,
    /// Sixel (xterm -ti vt340, foot, mlterm, ...).
    Sixel,
    /// Half blocks drawn into the text grid: works everywhere.
    Blocks,
}

/// Colour use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
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
    /// Default receiver to send to (`udpix send`, TUI send role).
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

/// What the command line said (`None`: not given there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliConfig {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--connect ADDR` (TUI) or the HOST of `udpix send HOST FILE...`.
    pub connect: Option<String>,
    /// `--out DIR`.
    pub out: Option<PathBuf>,
    /// `--image-protocol P`.
    pub image_protocol: Option<ImageProtocol>,
    /// No flag sets this yet; kept so every key has its four layers.
    pub colors: Option<Colors>,
    /// `--no-mouse` is `Some(false)`.
    pub mouse: Option<bool>,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag or argument, by name.
    Cli(&'static str),
    /// An environment variable, by name.
    Env(&'static str),
    /// The config file.
    File(PathBuf),
    /// udpix's own default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Cli(flag) => write!(f, "{flag}"),
            Source::Env(var) => write!(f, "${var}"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Default => write!(f, "built-in default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Its layer.
    pub source: Source,
}

/// Which config file was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUsed {
    /// The file.
    pub path: PathBuf,
    /// Whether it was there (a default file may be missing; a named one may not).
    pub found: bool,
    /// What named it: `--config`, `$UDPIX_CONFIG`, or the default location.
    pub source: Source,
}

/// Every shared setting, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The config file looked at, if any location was known.
    pub file: Option<FileUsed>,
    /// Where a receiver listens.
    pub listen: Setting<String>,
    /// The receiver a sender sends to, if any layer names one.
    pub connect: Option<Setting<String>>,
    /// Where received images go.
    pub out: Setting<PathBuf>,
    /// The TUI's preview drawing.
    pub image_protocol: Setting<ImageProtocol>,
    /// Colour use.
    pub colors: Setting<Colors>,
    /// Whether the TUI takes the mouse.
    pub mouse: Setting<bool>,
}

/// Why the settings could not be resolved. (Each reason is part of the message, not a
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
    /// An environment variable holds a value its setting does not take.
    #[error("${var}={value:?} is not valid: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        reason: String,
    },
}

/// Where the default config file lives (whether or not it exists), from the environment.
pub fn default_path() -> Option<PathBuf> {
    default_path_in(&|k| std::env::var(k).ok())
}

fn default_path_in(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("udpix").join("config.toml"))
}

/// Reads the file at the default path; a missing file is an empty config.
pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    read(path, true).map(|(c, _)| c)
}

/// Reads a file the user named (`--config`, `$UDPIX_CONFIG`): a missing one is an error.
pub fn load_given(path: &Path) -> Result<FileConfig, ConfigError> {
    read(path, false).map(|(c, _)| c)
}

/// The file's settings and whether it was there.
fn read(path: &Path, missing_is_empty: bool) -> Result<(FileConfig, bool), ConfigError> {
    let shown = || path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if missing_is_empty {
                Ok((FileConfig::default(), false))
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
    let config = parse(&text).map_err(|reason| ConfigError::Parse {
        path: shown(),
        reason,
    })?;
    Ok((config, true))
}

/// Parses config text.
pub fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
    toml::from_str(text)
}

/// [`resolve_with`] over the process's environment.
pub fn resolve(cli: &CliConfig) -> Result<Resolved, ConfigError> {
    resolve_with(cli, &|k| std::env::var(k).ok())
}

/// Resolves every shared setting: `cli` > `env` > config file > built-in default. `env` looks
/// a variable up (an empty value counts as unset); the config file is `cli.config`, else
/// `$UDPIX_CONFIG`, else the default location (from `XDG_CONFIG_HOME` or `HOME` in `env`).
pub fn resolve_with(
    cli: &CliConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, ConfigError> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let named = match (&cli.config, env(ENV_CONFIG)) {
        (Some(p), _) => Some((p.clone(), Source::Cli("--config"))),
        (None, Some(p)) => Some((PathBuf::from(p), Source::Env(ENV_CONFIG))),
        (None, None) => None,
    };
    let (file, used) = match named {
        Some((path, source)) => {
            let (c, _) = read(&path, false)?;
            let used = FileUsed {
                path,
                found: true,
                source,
            };
            (c, Some(used))
        }
        None => match default_path_in(&env) {
            Some(path) => {
                let (c, found) = read(&path, true)?;
                let used = FileUsed {
                    path,
                    found,
                    source: Source::Default,
                };
                (c, Some(used))
            }
            None => (FileConfig::default(), None),
        },
    };
    match &used {
        Some(u) if u.found => {
            tracing::info!(path = %u.path.display(), named_by = %u.source, "config file read");
        }
        Some(u) => tracing::debug!(path = %u.path.display(), "no config file"),
        None => tracing::debug!("no config file location (neither XDG_CONFIG_HOME nor HOME)"),
    }
    let from_file = used
        .as_ref()
        .map_or(Source::Default, |u| Source::File(u.path.clone()));
    let at = |flag, var| Layers {
        flag,
        var,
        env: &env,
        file: &from_file,
    };
    let listen = at("--listen", ENV_LISTEN).pick(cli.listen.clone(), text, file.listen.clone())?;
    let connect =
        at("--connect", ENV_CONNECT).pick(cli.connect.clone(), text, file.connect.clone())?;
    let out =
        at("--out", ENV_OUT).pick(cli.out.clone(), |s| Ok(PathBuf::from(s)), file.out.clone())?;
    let image_protocol = at("--image-protocol", ENV_IMAGE_PROTOCOL).pick(
        cli.image_protocol,
        value_enum::<ImageProtocol>,
        file.image_protocol,
    )?;
    let colors = at("--colors", ENV_COLORS).pick(cli.colors, value_enum::<Colors>, file.colors)?;
    let mouse = at("--no-mouse", ENV_MOUSE).pick(cli.mouse, boolean, file.mouse)?;
    let resolved = Resolved {
        file: used,
        listen: listen.unwrap_or_else(|| Setting::default_of(DEFAULT_LISTEN.to_owned())),
        connect,
        out: out.unwrap_or_else(|| Setting::default_of(PathBuf::from("."))),
        image_protocol: image_protocol
            .unwrap_or_else(|| Setting::default_of(ImageProtocol::default())),
        colors: colors.unwrap_or_else(|| Setting::default_of(Colors::default())),
        mouse: mouse.unwrap_or_else(|| Setting::default_of(true)),
    };
    for line in resolved.describe().lines().skip(1) {
        tracing::debug!("setting {line}");
    }
    Ok(resolved)
}

/// The receiver and the files of `udpix send`'s arguments. Without a `connect` setting the
/// first argument is the receiver, as always. With one (from the environment or the file),
/// the first argument is a file when `is_file` says it exists, so `udpix send photo.png`
/// sends to the configured receiver; otherwise it is still the receiver (the command line
/// wins).
pub fn send_targets(
    targets: &[String],
    connect: Option<&Setting<String>>,
    is_file: impl Fn(&std::path::Path) -> bool,
) -> Result<(Setting<String>, Vec<PathBuf>), String> {
    let Some((first, rest)) = targets.split_first() else {
        return Err("nothing to send: give HOST FILE...".to_owned());
    };
    // With a receiver configured, one argument alone is a file (if it is missing, sending
    // it says so), and so is a first argument that names an existing file.
    if let Some(c) = connect.filter(|_| rest.is_empty() || is_file(std::path::Path::new(first))) {
        tracing::debug!(receiver = %c.value, from = %c.source, "first argument is a file");
        return Ok((c.clone(), targets.iter().map(PathBuf::from).collect()));
    }
    if rest.is_empty() {
        return Err(format!(
            "no receiver to send {first} to: give HOST FILE..., or name the receiver with \
             ${ENV_CONNECT} or `connect` in the config file"
        ));
    }
    let to = Setting {
        value: first.clone(),
        source: Source::Cli("HOST"),
    };
    Ok((to, rest.iter().map(PathBuf::from).collect()))
}

impl<T> Setting<T> {
    fn default_of(value: T) -> Self {
        Setting {
            value,
            source: Source::Default,
        }
    }
}

/// One key's layers above the built-in default.
struct Layers<'a> {
    flag: &'static str,
    var: &'static str,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// What the file's values are labelled with.
    file: &'a Source,
}

impl Layers<'_> {
    /// The command line's value, else the variable's (parsed by `parse_env`), else the file's.
    fn pick<T>(
        &self,
        cli: Option<T>,
        parse_env: impl Fn(&str) -> Result<T, String>,
        file: Option<T>,
    ) -> Result<Option<Setting<T>>, ConfigError> {
        if let Some(value) = cli {
            return Ok(Some(Setting {
                value,
                source: Source::Cli(self.flag),
            }));
        }
        if let Some(text) = (self.env)(self.var) {
            let value = parse_env(&text).map_err(|reason| ConfigError::Env {
                var: self.var,
                value: text,
                reason,
            })?;
            return Ok(Some(Setting {
                value,
                source: Source::Env(self.var),
            }));
        }
        Ok(file.map(|value| Setting {
            value,
            source: self.file.clone(),
        }))
    }
}

fn text(s: &str) -> Result<String, String> {
    Ok(s.to_owned())
}

/// One of a clap value enum's names, in any case.
fn value_enum<T: clap::ValueEnum>(s: &str) -> Result<T, String> {
    T::from_str(s.trim(), true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        format!("expected one of {}", names.join(", "))
    })
}

fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false (or 1/0, yes/no, on/off)".to_owned()),
    }
}

impl Resolved {
    /// The settings as a config file would hold them, each with where it came from: what
    /// `udpix config` prints.
    pub fn describe(&self) -> String {
        use fmt::Write as _;
        let mut out = String::new();
        match &self.file {
            Some(u) if u.found => {
                let by = match &u.source {
                    Source::Default => "the default location".to_owned(),
                    named => format!("named by {named}"),
                };
                let _ = writeln!(out, "# config file: {} ({by})", u.path.display());
            }
            Some(u) => {
                let _ = writeln!(out, "# config file: {} (not there)", u.path.display());
            }
            None => out.push_str("# config file: none (neither XDG_CONFIG_HOME nor HOME is set)\n"),
        }
        let quoted = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let name = |v: Option<clap::builder::PossibleValue>| {
            quoted(v.as_ref().map_or("?", |p| p.get_name()))
        };
        use clap::ValueEnum as _;
        let connect = match &self.connect {
            Some(c) => (quoted(&c.value), c.source.to_string()),
            None => (
                String::new(),
                format!("not set: a HOST argument, --connect, ${ENV_CONNECT} or the file"),
            ),
        };
        let lines = [
            (
                "listen",
                quoted(&self.listen.value),
                self.listen.source.to_string(),
            ),
            ("connect", connect.0, connect.1),
            (
                "out",
                quoted(&self.out.value.to_string_lossy()),
                self.out.source.to_string(),
            ),
            (
                "image_protocol",
                name(self.image_protocol.value.to_possible_value()),
                self.image_protocol.source.to_string(),
            ),
            (
                "colors",
                name(self.colors.value.to_possible_value()),
                self.colors.source.to_string(),
            ),
            (
                "mouse",
                self.mouse.value.to_string(),
                self.mouse.source.to_string(),
            ),
        ];
        for (key, value, source) in lines {
            let setting = if value.is_empty() {
                format!("# {key} =")
            } else {
                format!("{key} = {value}")
            };
            let _ = writeln!(out, "{setting:<40} # {source}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_parses_to_the_documented_values() {
        let sample = include_str!("../docs/config.toml");
        let c = parse(sample).expect("docs/config.toml parses");
        assert_eq!(c.listen.as_deref(), Some(DEFAULT_LISTEN));
        assert_eq!(c.out, Some(PathBuf::from(".")));
        assert_eq!(c.image_protocol, Some(ImageProtocol::Auto));
        assert_eq!(c.colors, Some(Colors::Auto));
        assert_eq!(c.mouse, Some(true));
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
