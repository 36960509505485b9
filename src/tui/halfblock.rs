//! Draws an image into a ratatui buffer with half blocks: each cell shows two pixels, the
//! upper as the foreground of '▀' and the lower as its background. Works in every terminal
//! (tmux, SSH, 256 or 16 colours), in snapshots, and under popups, unlike graphics protocols.

use std::cell::RefCell;
use std::sync::Arc;

use image::RgbImage;
use image::imageops::FilterType;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    /// 24-bit colour (COLORTERM=truecolor or 24bit).
    TrueColor,
    /// The xterm 256-colour palette.
    Indexed256,
    /// The 16 basic ANSI colours.
    Basic16,
    /// No colour at all (NO_COLOR): shades of block characters.
    Mono,
}

impl ColorDepth {
    /// Reads the environment the way terminals advertise themselves.
    pub fn detect() -> Self {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return ColorDepth::Mono;
        }
        let colorterm = std::env::var("COLORTERM").unwrap_or_default();
        if colorterm.contains("truecolor") || colorterm.contains("24bit") {
            return ColorDepth::TrueColor;
        }
        let term = std::env::var("TERM").unwrap_or_default();
        if term.contains("256") {
            ColorDepth::Indexed256
        } else {
            ColorDepth::Basic16
        }
    }
}

/// The image scaled to fit `area` (one pixel wide, two high per cell), aspect ratio kept on
/// cells `cell_aspect` times as high as wide (2 on most fonts; the terminal says, when asked).
pub fn fit(img: &RgbImage, area: Rect, cell_aspect: f64) -> Option<RgbImage> {
    let (iw, ih) = img.dimensions();
    if iw == 0 || ih == 0 || area.width == 0 || area.height == 0 {
        return None;
    }
    let (aw, ah) = (f64::from(area.width), f64::from(area.height) * 2.0);
    // A half cell is 1 wide and cell_aspect/2 high: the image takes that many more columns.
    let stretch = if cell_aspect.is_finite() && cell_aspect > 0.0 {
        cell_aspect / 2.0
    } else {
        1.0
    };
    let scale = (aw / (f64::from(iw) * stretch)).min(ah / f64::from(ih));
    let w = ((f64::from(iw) * stretch * scale).round() as u32).clamp(1, u32::from(area.width));
    let h = ((f64::from(ih) * scale).round() as u32).clamp(1, u32::from(area.height) * 2);
    Some(image::imageops::resize(img, w, h, FilterType::Triangle))
}

/// The last fitted image, so that frames which change neither the image nor the pane do not
/// resize it again (there are up to 30 a second during a transfer).
#[derive(Debug, Default, Clone)]
pub struct FitCache(RefCell<Option<Fitted>>);

type Fitted = (Arc<RgbImage>, Rect, u64, Arc<RgbImage>);

impl FitCache {
    /// `img` fitted into `area`, from the cache when the same image and pane were fitted last.
    pub fn get(&self, img: &Arc<RgbImage>, area: Rect, cell_aspect: f64) -> Option<Arc<RgbImage>> {
        let mut slot = self.0.borrow_mut();
        if let Some((src, a, aspect, fitted)) = slot.as_ref()
            && Arc::ptr_eq(src, img)
            && *a == area
            && *aspect == cell_aspect.to_bits()
        {
            return Some(fitted.clone());
        }
        let fitted = Arc::new(fit(img, area, cell_aspect)?);
        *slot = Some((img.clone(), area, cell_aspect.to_bits(), fitted.clone()));
        Some(fitted)
    }
}

/// Draws a fitted image (from [`fit`]) centred in `area`.
pub fn draw(fitted: &RgbImage, area: Rect, buf: &mut Buffer, depth: ColorDepth) {
    let (w, h) = fitted.dimensions();
    let cells_h = h.div_ceil(2) as u16;
    let x0 = area.x + (area.width.saturating_sub(w as u16)) / 2;
    let y0 = area.y + (area.height.saturating_sub(cells_h)) / 2;
    for cy in 0..cells_h {
        for cx in 0..w as u16 {
            let upper = fitted.get_pixel(u32::from(cx), u32::from(cy) * 2).0;
            let lower_y = u32::from(cy) * 2 + 1;
            let lower = if lower_y < h {
                fitted.get_pixel(u32::from(cx), lower_y).0
            } else {
                [0, 0, 0]
            };
            let Some(cell) = buf.cell_mut((x0 + cx, y0 + cy)) else {
                continue;
            };
            if depth == ColorDepth::Mono {
                let l = (luma(upper) + luma(lower)) / 2.0;
                let ch = [' ', '░', '▒', '▓', '█'][((l / 256.0) * 5.0).min(4.0) as usize];
                cell.set_char(ch);
            } else {
                cell.set_char('▀')
                    .set_fg(color(upper, depth))
                    .set_bg(color(lower, depth));
            }
        }
    }
}

fn luma([r, g, b]: [u8; 3]) -> f64 {
    0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b)
}

/// The nearest colour the terminal can show.
pub fn color(rgb: [u8; 3], depth: ColorDepth) -> Color {
    let [r, g, b] = rgb;
    match depth {
        ColorDepth::TrueColor => Color::Rgb(r, g, b),
        ColorDepth::Indexed256 => Color::Indexed(nearest_256(rgb)),
        ColorDepth::Basic16 | ColorDepth::Mono => nearest_16(rgb),
    }
}

fn nearest_256([r, g, b]: [u8; 3]) -> u8 {
    // The 6x6x6 cube (16..231) or the grey ramp (232..255), whichever is closer.
    let level = |v: u8| -> u8 {
        if v < 48 {
            0
        } else if v < 115 {
            1
        } else {
            (v - 35) / 40
        }
    };
    let steps = [0u8, 95, 135, 175, 215, 255];
    let (lr, lg, lb) = (level(r), level(g), level(b));
    let cube = [steps[lr as usize], steps[lg as usize], steps[lb as usize]];
    let avg = (u16::from(r) + u16::from(g) + u16::from(b)) / 3;
    let grey_idx = if avg > 238 {
        23
    } else {
        (avg.saturating_sub(3) / 10) as u8
    };
    let grey = 8 + 10 * grey_idx;
    let dist = |c: [u8; 3]| {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        d(c[0], r) + d(c[1], g) + d(c[2], b)
    };
    if dist([grey, grey, grey]) < dist(cube) {
        232 + grey_idx
    } else {
        16 + 36 * lr + 6 * lg + lb
    }
}

fn nearest_16(rgb: [u8; 3]) -> Color {
    const PALETTE: [([u8; 3], Color); 16] = [
        ([0, 0, 0], Color::Black),
        ([128, 0, 0], Color::Red),
        ([0, 128, 0], Color::Green),
        ([128, 128, 0], Color::Yellow),
        ([0, 0, 128], Color::Blue),
        ([128, 0, 128], Color::Magenta),
        ([0, 128, 128], Color::Cyan),
        ([192, 192, 192], Color::Gray),
        ([128, 128, 128], Color::DarkGray),
        ([255, 0, 0], Color::LightRed),
        ([0, 255, 0], Color::LightGreen),
        ([255, 255, 0], Color::LightYellow),
        ([0, 0, 255], Color::LightBlue),
        ([255, 0, 255], Color::LightMagenta),
        ([0, 255, 255], Color::LightCyan),
        ([255, 255, 255], Color::White),
    ];
    let d = |c: [u8; 3]| {
        c.iter()
            .zip(rgb.iter())
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).pow(2))
            .sum::<i32>()
    };
    PALETTE
        .iter()
        .min_by_key(|(c, _)| d(*c))
        .map_or(Color::White, |(_, col)| *col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_aspect_ratio_and_fits() {
        let img = RgbImage::new(400, 200);
        let f = fit(&img, Rect::new(0, 0, 40, 40), 2.0).expect("fits");
        assert_eq!(f.dimensions(), (40, 20)); // 40 cells wide, 10 cells high
        let tall = RgbImage::new(100, 400);
        let f = fit(&tall, Rect::new(0, 0, 40, 10), 2.0).expect("fits");
        assert_eq!(f.dimensions(), (5, 20));
        // Cells 8×19 pixels (kitty's default font): half cells are taller than wide, so
        // the image takes more columns to look as wide as it is.
        let f = fit(&img, Rect::new(0, 0, 100, 20), 19.0 / 8.0).expect("fits");
        assert_eq!(f.dimensions(), (95, 40)); // 95 × 8 px by 40 × 9.5 px: 2:1 as the image
    }

    #[test]
    fn the_cache_fits_once_per_image_and_pane() {
        let cache = FitCache::default();
        let img = Arc::new(RgbImage::new(400, 200));
        let area = Rect::new(0, 0, 40, 40);
        let a = cache.get(&img, area, 2.0).expect("fits");
        let b = cache.get(&img, area, 2.0).expect("fits");
        assert!(Arc::ptr_eq(&a, &b), "same image, same pane: no new resize");
        let c = cache.get(&img, Rect::new(0, 0, 20, 20), 2.0).expect("fits");
        assert_eq!(c.dimensions(), (20, 10));
        let other = Arc::new(RgbImage::new(400, 200));
        let d = cache
            .get(&other, Rect::new(0, 0, 20, 20), 2.0)
            .expect("fits");
        assert!(!Arc::ptr_eq(&c, &d), "another image is fitted anew");
    }

    #[test]
    fn draws_two_pixels_per_cell() {
        let mut img = RgbImage::new(2, 2);
        img.put_pixel(0, 0, image::Rgb([255, 0, 0]));
        img.put_pixel(0, 1, image::Rgb([0, 0, 255]));
        let area = Rect::new(0, 0, 2, 1);
        let mut buf = Buffer::empty(area);
        draw(&img, area, &mut buf, ColorDepth::TrueColor);
        let c = &buf[(0, 0)];
        assert_eq!(c.symbol(), "▀");
        assert_eq!(c.fg, Color::Rgb(255, 0, 0));
        assert_eq!(c.bg, Color::Rgb(0, 0, 255));
        assert_eq!(
            color([255, 0, 0], ColorDepth::Indexed256),
            Color::Indexed(196)
        );
        assert_eq!(color([250, 250, 250], ColorDepth::Basic16), Color::White);
    }
}
