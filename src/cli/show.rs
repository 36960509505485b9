//! `udpix recv --show`: each verified image printed in the terminal below its summary line,
//! through viuer (kitty, iTerm2 or sixel where the terminal has them, half blocks otherwise),
//! the way the first udpix receiver showed what arrived.

use std::io::IsTerminal;
use std::path::Path;

use udpix::config::ImageProtocol;

/// Rows an image may take at most, so a tall image leaves the lines before it on screen.
const MAX_ROWS: u16 = 24;

/// Pixels decoded at most for one preview; a larger image is named, not shown.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// Prints images for `udpix recv --show`.
pub struct Shower {
    protocol: ImageProtocol,
}

impl Shower {
    /// A shower for this terminal, or why there is none (stdout is not a terminal, or the
    /// summary lines are JSON).
    pub fn new(requested: ImageProtocol, json: bool) -> Result<Shower, &'static str> {
        if json {
            return Err("--show prints images only beside human lines, not with --json");
        }
        if !std::io::stdout().is_terminal() {
            return Err("--show prints images only when stdout is a terminal");
        }
        // Probed once, before any image: viuer's own probes read the terminal's answers.
        let protocol = udpix::tui::graphics::resolve(requested);
        tracing::debug!(?protocol, "recv --show draws with");
        Ok(Shower { protocol })
    }

    /// Decodes `path` and prints it at the cursor, as wide as the terminal allows.
    pub fn show(&self, path: &Path) -> Result<(), String> {
        let img = decode(path)?;
        let (cols, rows) = crossterm::terminal::size().unwrap_or((80, 24));
        let rows = rows.saturating_sub(2).clamp(1, MAX_ROWS);
        let config = viuer::Config {
            absolute_offset: false,
            // Width only: viuer keeps the aspect then (with both it stretches to fit).
            width: Some(fit_columns(img.width(), img.height(), cols, rows)),
            height: None,
            use_kitty: self.protocol == ImageProtocol::Kitty,
            use_iterm: self.protocol == ImageProtocol::Iterm,
            use_sixel: self.protocol == ImageProtocol::Sixel,
            ..viuer::Config::default()
        };
        viuer::print(&img, &config)
            .map(|_| ())
            .map_err(|e| format!("cannot print it: {e}"))
    }
}

/// The columns a `width`×`height` image takes to fill at most `cols`×`rows` cells with its
/// aspect kept, a cell being twice as tall as wide (two pixels of a half block).
pub fn fit_columns(width: u32, height: u32, cols: u16, rows: u16) -> u32 {
    let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    let by_rows = u64::from(rows) * 2 * w / h;
    by_rows.clamp(1, u64::from(cols.max(1))) as u32
}

/// Reads the image by its content, within a bound on the memory decoding may take.
fn decode(path: &Path) -> Result<image::DynamicImage, String> {
    let mut reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| format!("cannot read it: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| format!("not an image udpix can draw: {e}"))
}

#[cfg(test)]
mod tests {
    use super::fit_columns;

    #[test]
    fn an_image_fills_the_box_on_its_limiting_side_with_its_aspect_kept() {
        // Square: 24 rows are 48 pixel rows, so 48 columns.
        assert_eq!(fit_columns(512, 512, 100, 24), 48);
        // Wide: the width limits.
        assert_eq!(fit_columns(1000, 100, 80, 24), 80);
        // Tall and thin: never less than one column.
        assert_eq!(fit_columns(1, 10_000, 80, 24), 1);
        assert_eq!(fit_columns(0, 0, 0, 0), 1);
    }
}
