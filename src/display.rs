//! Text from the other side (offered file names, format tags, refusal and close reasons) made
//! safe to show on a terminal.
//!
//! A peer chooses those strings. Printed raw, a name holding `\n` forges lines in the output and
//! logs, `ESC [ ...` recolours or clears the screen (or worse, on terminals that answer queries),
//! and a bidi override makes `cat\u{202e}gnp.exe` read as `catexe.png`. [`safe`] turns every such
//! character into a visible escape; it is applied where such text is printed, never where it
//! is stored or compared (JSON output keeps the exact string, escaped by its own rules).

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character that must not reach a terminal as itself: every control character
/// (C0, DEL, C1), the bidi embeddings, overrides, isolates and marks, the line and paragraph
/// separators, and invisible format characters that can hide or smuggle text.
///
/// Kept as they are: zero-width joiner and non-joiner (needed by many scripts and by emoji),
/// variation selectors, and everything visible. A backslash is kept too, so ordinary names
/// print unchanged; an escape in the output can thus also be a peer's literal text, which
/// misleads nobody about where lines or colours come from.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'                  // soft hyphen (invisible in most terminals)
            | '\u{061c}'                // Arabic letter mark
            | '\u{180e}'                // Mongolian vowel separator
            | '\u{200b}'                // zero-width space
            | '\u{200e}'..='\u{200f}'   // left-to-right and right-to-left marks
            | '\u{2028}'..='\u{2029}'   // line and paragraph separators
            | '\u{202a}'..='\u{202e}'   // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}'   // bidi isolates
            | '\u{206a}'..='\u{206f}'   // deprecated format characters
            | '\u{feff}'                // zero-width no-break space (BOM)
            | '\u{fff9}'..='\u{fffb}'   // interlinear annotation
            | '\u{e0000}'..='\u{e007f}' // tag characters (invisible ASCII look-alikes)
        )
}

/// `s` with every character of [`needs_escape`] written as a visible escape: `\n`, `\r`,
/// `\t`, `\0`, `\e` (ESC), `\x7f` for the other ASCII controls, `\u{202e}` for the rest.
/// Borrows when there is nothing to escape, which is nearly always.
pub fn safe(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(needs_escape) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !needs_escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            '\u{1b}' => out.push_str("\\e"),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in [
            "",
            "chelsea.png",
            "été à Zürich (1).jpg",
            "写真 2024.png",
            "a\\b.png",
            "👨\u{200d}👩\u{200d}👧.png",
            "❤\u{fe0f}.gif",
        ] {
            assert!(matches!(safe(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(safe("evil\u{1b}[31m\nline"), "evil\\e[31m\\nline");
        assert_eq!(safe("a\rb\tc\0d"), "a\\rb\\tc\\0d");
        assert_eq!(safe("bell\u{7}del\u{7f}"), "bell\\x07del\\x7f");
        // C1: CSI and OSC as single code points, which some terminals obey.
        assert_eq!(
            safe("x\u{9b}2J\u{9d}0;t\u{9c}"),
            "x\\u{9b}2J\\u{9d}0;t\\u{9c}"
        );
    }

    #[test]
    fn bidi_and_invisible_format_characters_are_escaped() {
        assert_eq!(safe("cat\u{202e}gnp.exe"), "cat\\u{202e}gnp.exe");
        for c in [
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200e}',
            '\u{200f}',
            '\u{061c}',
            '\u{200b}',
            '\u{2028}',
            '\u{2029}',
            '\u{2060}',
            '\u{feff}',
            '\u{00ad}',
            '\u{e0041}',
        ] {
            let s = format!("a{c}b");
            assert_eq!(
                safe(&s),
                format!("a\\u{{{:x}}}b", u32::from(c)),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn nothing_dangerous_survives_any_input() {
        // Every code point from NUL to the end of the tag block, in one string.
        let all: String = (0u32..=0xe_00ff).filter_map(char::from_u32).collect();
        let out = safe(&all);
        assert!(!out.chars().any(needs_escape));
        assert!(!out.chars().any(char::is_control));
        // Visible text around the escapes is untouched.
        assert!(out.contains("0123456789") && out.contains("ABCDEFGHIJ"));
    }
}
