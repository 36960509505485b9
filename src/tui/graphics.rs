//! Real pixels where the terminal can show them: kitty, iTerm2 or sixel images printed with
//! viuer over the preview pane, after ratatui has drawn the frame. Everywhere else (tmux, SSH
//! without graphics, unknown terminals, tests) the half-block preview drawn into the buffer is
//! used; it is also what shows while a popup covers the pane.
//!
//! Probing happens once, before the terminal enters raw mode and before the key reader
//! starts, because the probes read the terminal's answers from stdin.

use std::io::Write;

use image::{DynamicImage, RgbImage};
use ratatui::layout::Rect;

/// How the preview is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
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

/// Resolves `auto` from the environment and, where the terminal is known to answer, a probe.
/// Never probes inside tmux or when stdout is not a terminal.
pub fn resolve(requested: ImageProtocol) -> ImageProtocol {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return ImageProtocol::Blocks;
    }
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    match requested {
        ImageProtocol::Blocks => ImageProtocol::Blocks,
        ImageProtocol::Kitty => kitty_or_blocks(),
        ImageProtocol::Iterm => ImageProtocol::Iterm,
        ImageProtocol::Sixel => {
            if viuer::is_sixel_supported() {
                ImageProtocol::Sixel
            } else {
                ImageProtocol::Blocks
            }
        }
        ImageProtocol::Auto => {
            if std::env::var_os("TMUX").is_some() || env("TERM").starts_with("screen") {
                ImageProtocol::Blocks
            } else if env("TERM").contains("kitty") || std::env::var_os("KITTY_WINDOW_ID").is_some()
            {
                kitty_or_blocks()
            } else if matches!(env("TERM_PROGRAM").as_str(), "iTerm.app" | "WezTerm") {
                ImageProtocol::Iterm
            } else if std::env::var_os("XTERM_VERSION").is_some() && viuer::is_sixel_supported() {
                ImageProtocol::Sixel
            } else {
                ImageProtocol::Blocks
            }
        }
    }
}

fn kitty_or_blocks() -> ImageProtocol {
    // Only the remote (escape-code) mode: the local mode waits for a reply on stdin at every
    // print, which would race the key reader.
    if viuer::get_kitty_support() == viuer::KittySupport::Remote {
        ImageProtocol::Kitty
    } else {
        ImageProtocol::Blocks
    }
}

/// Remembers what was printed, so an image is printed only when it or its place changes.
#[derive(Debug, Default)]
pub struct Overlay {
    shown: Option<(u64, Rect)>,
}

impl Overlay {
    /// True when something is on screen that a redraw must first remove.
    pub fn is_shown(&self) -> bool {
        self.shown.is_some()
    }

    /// Which image is on screen, if any.
    pub fn shown_key(&self) -> Option<u64> {
        self.shown.map(|(k, _)| k)
    }

    /// Forgets what was shown (after the screen was cleared).
    pub fn reset(&mut self) {
        self.shown = None;
    }

    /// Removes a kitty image (kitty images live above the text and survive a clear).
    pub fn erase(&mut self, protocol: ImageProtocol) {
        if protocol == ImageProtocol::Kitty && self.shown.is_some() {
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x1b_Ga=d\x1b\\");
            let _ = out.flush();
        }
        self.shown = None;
    }

    /// Prints `img` fitted into `area` unless the same image is already there.
    pub fn show(&mut self, protocol: ImageProtocol, key: u64, img: &RgbImage, area: Rect) {
        if protocol == ImageProtocol::Blocks || area.width < 2 || area.height < 2 {
            return;
        }
        if self.shown == Some((key, area)) {
            return;
        }
        self.erase(protocol);
        // Fit the width so the height stays inside the pane (cells are about twice as high
        // as wide), and never reach the terminal's last row: viuer ends rows with newlines.
        let (iw, ih) = img.dimensions();
        let max_h = u32::from(area.height.saturating_sub(1)).max(1);
        let by_height = (max_h * 2 * iw / ih.max(1)).max(1);
        let width = u32::from(area.width).min(by_height);
        let config = viuer::Config {
            absolute_offset: true,
            x: area.x,
            y: area.y as i16,
            width: Some(width),
            height: None,
            restore_cursor: true,
            use_kitty: protocol == ImageProtocol::Kitty,
            use_iterm: protocol == ImageProtocol::Iterm,
            use_sixel: protocol == ImageProtocol::Sixel,
            ..viuer::Config::default()
        };
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x1b[?2026h"); // synchronized update: no tearing
        let _ = viuer::print(&DynamicImage::ImageRgb8(img.clone()), &config);
        let _ = out.write_all(b"\x1b[?2026l");
        let _ = out.flush();
        self.shown = Some((key, area));
    }
}
