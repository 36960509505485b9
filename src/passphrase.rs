//! Where the shared passphrase comes from: a file, the environment, a prompt, or (on the
//! receiving side) a fresh speakable one. Never the command line, where `ps` would show it.

use std::io::IsTerminal;
use std::path::Path;

use rand::Rng;
use thiserror::Error;

use crate::proto::crypto::Passphrase;

/// The environment variable that may hold the passphrase.
pub const ENV_VAR: &str = "UDPIX_PASSPHRASE";

/// Why no passphrase could be had.
#[derive(Debug, Error)]
pub enum PassphraseError {
    /// The file could not be read. (The reason is part of the message, not a `source`:
    /// printed as a chain it would show twice.)
    #[error("cannot read the passphrase file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: std::io::Error,
    },
    /// The file or variable holds nothing but white space and separators.
    #[error("the passphrase from {0} is empty")]
    Empty(String),
    /// No source and no terminal to ask on.
    #[error(
        "no passphrase: set {ENV_VAR}, pass --passphrase-file FILE, or run both sides with --insecure"
    )]
    Missing,
    /// The prompt failed.
    #[error("cannot read the passphrase from the terminal: {0}")]
    Prompt(std::io::Error),
}

/// A speakable passphrase with about 43 bits of entropy: a number below 1000 and three words
/// from the 2048-word BIP-39 list, e.g. `417-orbit-lantern-mosaic`.
pub fn generate() -> String {
    let words = word_list();
    let mut rng = rand::rng();
    let mut parts = vec![rng.random_range(0..1000u32).to_string()];
    for _ in 0..3 {
        parts.push(words[rng.random_range(0..words.len())].to_owned());
    }
    parts.join("-")
}

/// The BIP-39 English word list, one word a line, as published with BIP-39 (copied from the
/// `bip39` crate, whose only use here was this list).
const WORD_LIST: &str = include_str!("bip39-english.txt");

/// The 2048 words of [`WORD_LIST`], in order.
pub fn word_list() -> &'static [&'static str] {
    static WORDS: std::sync::LazyLock<Vec<&'static str>> =
        std::sync::LazyLock::new(|| WORD_LIST.lines().collect());
    &WORDS
}

fn non_empty(text: &str, from: &str) -> Result<Passphrase, PassphraseError> {
    if crate::proto::crypto::normalize(text).is_empty() {
        return Err(PassphraseError::Empty(from.to_owned()));
    }
    Ok(Passphrase::new(text))
}

/// The passphrase text from `--passphrase-file` or the environment, if either is given
/// (trimmed, never empty).
pub fn text_from_sources(file: Option<&Path>) -> Result<Option<String>, PassphraseError> {
    let (text, from) = if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|reason| PassphraseError::File {
            path: path.display().to_string(),
            reason,
        })?;
        (text, path.display().to_string())
    } else {
        match std::env::var(ENV_VAR) {
            Ok(v) => (v, ENV_VAR.to_owned()),
            Err(_) => return Ok(None),
        }
    };
    if crate::proto::crypto::normalize(&text).is_empty() {
        return Err(PassphraseError::Empty(from));
    }
    Ok(Some(text.trim().to_owned()))
}

/// The passphrase from `--passphrase-file` or the environment, if either is given.
pub fn from_sources(file: Option<&Path>) -> Result<Option<Passphrase>, PassphraseError> {
    Ok(text_from_sources(file)?.map(|t| Passphrase::new(&t)))
}

/// The sender's passphrase: from a source, else asked for without echo on a terminal.
pub fn for_sender(file: Option<&Path>) -> Result<Passphrase, PassphraseError> {
    if let Some(p) = from_sources(file)? {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(PassphraseError::Missing);
    }
    let text = rpassword::prompt_password("udpix passphrase: ").map_err(PassphraseError::Prompt)?;
    non_empty(&text, "the prompt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passphrases_are_speakable_and_vary() {
        let a = generate();
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.len(), 4, "{a}");
        assert!(parts[0].parse::<u32>().is_ok_and(|n| n < 1000));
        assert!(
            parts[1..]
                .iter()
                .all(|w| w.chars().all(|c| c.is_ascii_lowercase()))
        );
        // 43 bits: two draws colliding would be a broken generator.
        assert_ne!(generate(), generate());
    }

    #[test]
    fn the_word_list_is_the_bip39_english_list() {
        let words = word_list();
        assert_eq!(words.len(), 2048);
        assert_eq!(words.first(), Some(&"abandon"));
        assert_eq!(words.last(), Some(&"zoo"));
        let unique: std::collections::BTreeSet<&str> = words.iter().copied().collect();
        assert_eq!(unique.len(), 2048, "duplicate words");
        for w in words {
            assert!(
                (3..=8).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase()),
                "{w:?}"
            );
        }
        // BIP-39 English: the first four letters tell every word apart.
        let prefixes: std::collections::BTreeSet<&str> =
            words.iter().map(|w| &w[..4.min(w.len())]).collect();
        assert_eq!(prefixes.len(), 2048);
        // The list as published, in order (sorted, so no word was moved).
        assert!(words.windows(2).all(|p| p[0] < p[1]));
    }

    #[test]
    fn file_source_is_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("pw");
        std::fs::write(&f, "  secret words \n").expect("write");
        assert!(from_sources(Some(&f)).expect("reads").is_some());
        std::fs::write(&f, " \n").expect("write");
        assert!(matches!(
            from_sources(Some(&f)),
            Err(PassphraseError::Empty(_))
        ));
        let missing = from_sources(Some(&dir.path().join("missing"))).expect_err("missing");
        assert!(matches!(missing, PassphraseError::File { .. }));
        // The reason is told once, also when the error is shown with its chain.
        let shown = format!("{:#}", anyhow::Error::from(missing));
        assert_eq!(shown.matches("No such file").count(), 1, "{shown}");
    }
}
