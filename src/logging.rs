//! Diagnostics through `tracing`: how much (`-q`, `-v`, `-vv`, or `RUST_LOG`, which wins) and
//! where (stderr for the command-line subcommands; a file for the TUI, which owns the
//! terminal, or wherever `--log-file` says).
//!
//! These are diagnostics for finding out why something happened; what a command reports
//! (images received, the summary) is its ordinary output and does not go through here.

use std::path::{Path, PathBuf};

use tracing_subscriber::EnvFilter;

/// The variable whose filter, when set, replaces the one `-q`/`-v` choose.
pub const ENV_FILTER: &str = "RUST_LOG";

/// The filter `-q` (`quiet`) and `-v` repeated `verbose` times choose: errors only, warnings
/// (the default), info, debug, then everything.
pub fn level_filter(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    }
}

/// The filter directives in force: `rust_log` when it is set and not empty, else the flags'.
pub fn directives(rust_log: Option<&str>, verbose: u8, quiet: bool) -> String {
    match rust_log.map(str::trim) {
        Some(d) if !d.is_empty() => d.to_owned(),
        _ => level_filter(verbose, quiet).to_owned(),
    }
}

/// Where the TUI's log goes unless `--log-file` says otherwise:
/// `$XDG_STATE_HOME/udpix/udpix.log`, else `~/.local/state/udpix/udpix.log`.
pub fn default_log_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("state"))
        })?;
    Some(base.join("udpix").join("udpix.log"))
}

/// Where the log is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Standard error.
    Stderr,
    /// Appended to this file (its folder is made if missing).
    File(PathBuf),
    /// Nowhere (the TUI when no state folder is known).
    Off,
}

/// Installs the global subscriber. A `RUST_LOG` that does not parse is reported on stderr
/// and the flags' filter used instead; a log file that cannot be opened is an error.
pub fn init(target: &Target, verbose: u8, quiet: bool) -> std::io::Result<()> {
    if *target == Target::Off {
        return Ok(());
    }
    let rust_log = std::env::var(ENV_FILTER).ok();
    let wanted = directives(rust_log.as_deref(), verbose, quiet);
    let filter = EnvFilter::try_new(&wanted).unwrap_or_else(|e| {
        eprintln!("udpix: warning: ignoring {ENV_FILTER}={wanted:?}: {e}");
        EnvFilter::new(level_filter(verbose, quiet))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match target {
        Target::Stderr => {
            use std::io::IsTerminal;
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder
                .with_writer(std::io::stderr)
                .with_ansi(colour)
                .with_timer(tracing_subscriber::fmt::time::uptime())
                .try_init()
        }
        Target::Off => return Ok(()),
        Target::File(path) => {
            let file = open_log(path)?;
            builder
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .try_init()
        }
    };
    // Only fails when a subscriber is already installed (tests), which then stays.
    let _ = installed;
    Ok(())
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_choose_the_level_and_rust_log_overrides_them() {
        assert_eq!(directives(None, 0, false), "warn");
        assert_eq!(directives(None, 1, false), "info");
        assert_eq!(directives(None, 2, false), "debug");
        assert_eq!(directives(None, 5, false), "trace");
        assert_eq!(directives(None, 0, true), "error");
        assert_eq!(directives(Some("udpix=trace"), 0, true), "udpix=trace");
        assert_eq!(directives(Some("debug"), 2, false), "debug");
        // Set but empty is unset.
        assert_eq!(directives(Some(" "), 1, false), "info");
    }

    #[test]
    fn the_tui_log_lives_under_the_state_folder() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            default_log_file(&env(&[("XDG_STATE_HOME", "/s"), ("HOME", "/h")])),
            Some(PathBuf::from("/s/udpix/udpix.log"))
        );
        assert_eq!(
            default_log_file(&env(&[("XDG_STATE_HOME", ""), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.local/state/udpix/udpix.log"))
        );
        assert_eq!(default_log_file(&env(&[])), None);
    }
}
