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

/// The image scaled to fit `area` with its aspect ratio kept on cells `cell_aspect` times as
/// high as wide (2 on most fonts; the terminal says, when asked): two pixels per cell across
/// and two down, one for each quadrant of the cell. The filter (Catmull-Rom, its support
/// widened by the shrink factor) averages what a cell covers instead of picking one pixel of
/// it, so fine detail turns into its mean colour rather than into noise.
pub fn fit(img: &RgbImage, area: Rect, cell_aspect: f64) -> Option<RgbImage> {
    let (cols, half_rows) = cells(img.dimensions(), area, cell_aspect)?;
    Some(image::imageops::resize(
        img,
        cols * 2,
        half_rows,
        FilterType::CatmullRom,
    ))
}

/// Columns and half rows an image of `image` pixels takes in `area`, aspect ratio kept.
fn cells(image: (u32, u32), area: Rect, cell_aspect: f64) -> Option<(u32, u32)> {
    let (iw, ih) = image;
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
    Some((w, h))
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

/// Draws a fitted image (from [`fit`]) centred in `area`. Each cell shows its four pixels in
/// two colours: of the seven ways to split them in two (upper/lower half, left/right half,
/// the diagonals, one corner against three) the one that loses least, as the block symbol
/// of its shape: '▀' with upper and lower colours where the halves differ most, '▌' across a
/// vertical edge, '▗' at a corner. So the image has twice the detail across that half
/// blocks give it, and never less. Without colours (NO_COLOR) each cell is a shade.
pub fn draw(fitted: &RgbImage, area: Rect, buf: &mut Buffer, depth: ColorDepth) {
    let (w, h) = fitted.dimensions();
    let cols = (w / 2) as u16;
    let rows = h.div_ceil(2) as u16;
    let x0 = area.x + (area.width.saturating_sub(cols)) / 2;
    let y0 = area.y + (area.height.saturating_sub(rows)) / 2;
    for cy in 0..rows {
        for cx in 0..cols {
            let (x, y) = (u32::from(cx) * 2, u32::from(cy) * 2);
            let px = |dx: u32, dy: u32| (y + dy < h).then(|| fitted.get_pixel(x + dx, y + dy).0);
            let Some(cell) = buf.cell_mut((x0 + cx, y0 + cy)) else {
                continue;
            };
            let top = [px(0, 0), px(1, 0)].map(|p| p.unwrap_or_default());
            let (Some(bl), Some(br)) = (px(0, 1), px(1, 1)) else {
                // The image's last, odd half row: its upper half only.
                let upper = mean(&top);
                if depth == ColorDepth::Mono {
                    cell.set_char(shade(luma(upper) / 2.0));
                } else {
                    cell.set_char('▀').set_fg(color(upper, depth));
                }
                continue;
            };
            let quad = [top[0], top[1], bl, br];
            if depth == ColorDepth::Mono {
                cell.set_char(shade(quad.iter().map(|p| luma(*p)).sum::<f64>() / 4.0));
                continue;
            }
            let (symbol, fg, bg) = split(quad);
            cell.set_char(symbol)
                .set_fg(color(fg, depth))
                .set_bg(color(bg, depth));
        }
    }
}

/// The shade character for a brightness of 0 to 255.
fn shade(l: f64) -> char {
    [' ', '░', '▒', '▓', '█'][((l / 256.0) * 5.0).clamp(0.0, 4.0) as usize]
}

/// The ways to split a cell's quadrants (upper left, upper right, lower left, lower right) in
/// two: the quadrants drawn in the foreground colour, and the symbol that draws them. The half
/// block comes first, so that it wins ties.
const SPLITS: [([bool; 4], char); 7] = [
    ([true, true, false, false], '▀'),
    ([true, false, true, false], '▌'),
    ([true, false, false, true], '▚'),
    ([true, false, false, false], '▘'),
    ([false, true, false, false], '▝'),
    ([false, false, true, false], '▖'),
    ([false, false, false, true], '▗'),
];

/// The symbol and its foreground and background colours that show the four pixels `quad`
/// (upper left, upper right, lower left, lower right) with the least squared error.
fn split(quad: [[u8; 3]; 4]) -> (char, [u8; 3], [u8; 3]) {
    let mut best = (u64::MAX, '▀', [0; 3], [0; 3]);
    for (mask, symbol) in SPLITS {
        let part = |on: bool| -> Vec<[u8; 3]> {
            (0..4).filter(|&i| mask[i] == on).map(|i| quad[i]).collect()
        };
        let (fg_px, bg_px) = (part(true), part(false));
        let (fg, bg) = (mean(&fg_px), mean(&bg_px));
        let err: u64 = fg_px
            .iter()
            .map(|p| dist2(*p, fg))
            .chain(bg_px.iter().map(|p| dist2(*p, bg)))
            .sum();
        if err < best.0 {
            best = (err, symbol, fg, bg);
        }
    }
    (best.1, best.2, best.3)
}

fn mean(px: &[[u8; 3]]) -> [u8; 3] {
    let n = px.len().max(1) as u32;
    let sum = |c: usize| px.iter().map(|p| u32::from(p[c])).sum::<u32>();
    [0, 1, 2].map(|c| ((sum(c) + n / 2) / n) as u8)
}

fn dist2(a: [u8; 3], b: [u8; 3]) -> u64 {
    (0..3)
        .map(|c| (i64::from(a[c]) - i64::from(b[c])).pow(2) as u64)
        .sum()
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
        // Two pixels across and two down per cell.
        let f = fit(&img, Rect::new(0, 0, 40, 40), 2.0).expect("fits");
        assert_eq!(f.dimensions(), (80, 20)); // 40 cells wide, 10 cells high
        let tall = RgbImage::new(100, 400);
        let f = fit(&tall, Rect::new(0, 0, 40, 10), 2.0).expect("fits");
        assert_eq!(f.dimensions(), (10, 20));
        // Cells 8×19 pixels (kitty's default font): half cells are taller than wide, so
        // the image takes more columns to look as wide as it is.
        let f = fit(&img, Rect::new(0, 0, 100, 20), 19.0 / 8.0).expect("fits");
        assert_eq!(f.dimensions(), (190, 40)); // 95 × 8 px by 40 × 9.5 px: 2:1 as the image
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
        assert_eq!(c.dimensions(), (40, 10));
        let other = Arc::new(RgbImage::new(400, 200));
        let d = cache
            .get(&other, Rect::new(0, 0, 20, 20), 2.0)
            .expect("fits");
        assert!(!Arc::ptr_eq(&c, &d), "another image is fitted anew");
    }

    #[test]
    fn draws_two_pixels_per_cell() {
        let mut img = RgbImage::new(4, 2);
        for x in 0..2 {
            img.put_pixel(x, 0, image::Rgb([255, 0, 0]));
            img.put_pixel(x, 1, image::Rgb([0, 0, 255]));
        }
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

    /// The mean colour of what `draw` puts in `buf`: each cell's quadrants in the colour its
    /// symbol gives them.
    fn drawn_mean(buf: &Buffer) -> [f64; 3] {
        let quads = |sym: &str| -> Option<[bool; 4]> {
            SPLITS
                .iter()
                .find(|(_, c)| c.to_string() == sym)
                .map(|(m, _)| *m)
        };
        let rgb = |c: Color| match c {
            Color::Rgb(r, g, b) => [r, g, b].map(f64::from),
            other => panic!("not true colour: {other:?}"),
        };
        let (mut sum, mut n) = ([0.0; 3], 0.0);
        for cell in buf.content() {
            let Some(mask) = quads(cell.symbol()) else {
                continue;
            };
            for on in mask {
                let c = rgb(if on { cell.fg } else { cell.bg });
                (0..3).for_each(|i| sum[i] += c[i]);
                n += 1.0;
            }
        }
        assert!(n > 0.0, "nothing drawn");
        sum.map(|s| s / n)
    }

    fn source_mean(img: &RgbImage) -> [f64; 3] {
        let n = f64::from(img.width() * img.height());
        [0, 1, 2].map(|c| img.pixels().map(|p| f64::from(p.0[c])).sum::<f64>() / n)
    }

    #[test]
    fn downscaling_averages_fine_detail_instead_of_sampling_it() {
        // One-pixel stripes, black and white: every cell covers many, so every cell must come
        // out mid grey. Picking pixels (a nearest-neighbour shrink) would make it all black or
        // all white, or stripes of both.
        let img = RgbImage::from_fn(401, 401, |x, _| {
            image::Rgb(if x % 2 == 0 { [255; 3] } else { [0; 3] })
        });
        let area = Rect::new(0, 0, 40, 20);
        let fitted = fit(&img, area, 2.0).expect("fits");
        for p in fitted.pixels() {
            assert!((100..=155).contains(&p.0[0]), "a pixel of {:?}", p.0);
        }
        let mut buf = Buffer::empty(area);
        draw(&fitted, area, &mut buf, ColorDepth::TrueColor);
        let m = drawn_mean(&buf);
        assert!(m.iter().all(|c| (c - 127.5).abs() < 8.0), "mean {m:?}");
    }

    #[test]
    fn the_drawn_astronaut_keeps_the_photo_s_mean_colour() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/testdata/astronaut.png"
        );
        let img = image::open(path).expect("shared testdata").to_rgb8();
        let area = Rect::new(0, 0, 44, 22);
        let fitted = fit(&img, area, 2.0).expect("fits");
        let mut buf = Buffer::empty(area);
        draw(&fitted, area, &mut buf, ColorDepth::TrueColor);
        let (want, got) = (source_mean(&img), drawn_mean(&buf));
        for c in 0..3 {
            assert!(
                (want[c] - got[c]).abs() < 3.0,
                "source {want:?}, drawn {got:?}"
            );
        }
    }

    #[test]
    fn edges_inside_a_cell_get_the_quadrant_symbol_of_their_shape() {
        // One cell's four pixels: each split drawn by its symbol, its two colours exact.
        let (a, b) = ([250, 20, 20], [10, 10, 240]);
        for (mask, symbol) in SPLITS {
            let px = |i: usize| image::Rgb(if mask[i] { a } else { b });
            let img = RgbImage::from_fn(2, 2, |x, y| px((y * 2 + x) as usize));
            let area = Rect::new(0, 0, 1, 1);
            let mut buf = Buffer::empty(area);
            draw(&img, area, &mut buf, ColorDepth::TrueColor);
            let c = &buf[(0, 0)];
            assert_eq!(c.symbol(), symbol.to_string(), "{mask:?}");
            assert_eq!(
                (c.fg, c.bg),
                (Color::Rgb(a[0], a[1], a[2]), Color::Rgb(b[0], b[1], b[2]))
            );
        }
        // A vertical edge through each cell doubles the detail half blocks had across.
        let img = RgbImage::from_fn(8, 4, |x, _| image::Rgb(if x % 2 == 0 { a } else { b }));
        let area = Rect::new(0, 0, 4, 2);
        let mut buf = Buffer::empty(area);
        draw(&img, area, &mut buf, ColorDepth::TrueColor);
        assert!(buf.content().iter().all(|c| c.symbol() == "▌"));
    }

    #[test]
    fn images_are_centred_in_their_area() {
        let fitted = RgbImage::from_pixel(20, 10, image::Rgb([9, 9, 9])); // 10×5 cells
        let area = Rect::new(3, 2, 31, 12);
        let mut buf = Buffer::empty(Rect::new(0, 0, 40, 20));
        draw(&fitted, area, &mut buf, ColorDepth::TrueColor);
        let painted: Vec<(u16, u16)> = (0..20u16)
            .flat_map(|y| (0..40u16).map(move |x| (x, y)))
            .filter(|&(x, y)| buf[(x, y)].bg == Color::Rgb(9, 9, 9))
            .collect();
        assert_eq!(painted.len(), 50);
        let (x0, x1) = (
            painted.iter().map(|p| p.0).min().unwrap(),
            painted.iter().map(|p| p.0).max().unwrap(),
        );
        let (y0, y1) = (
            painted.iter().map(|p| p.1).min().unwrap(),
            painted.iter().map(|p| p.1).max().unwrap(),
        );
        let (left, right) = (x0 - area.x, area.right() - 1 - x1);
        let (top, bottom) = (y0 - area.y, area.bottom() - 1 - y1);
        assert!(
            left.abs_diff(right) <= 1 && top.abs_diff(bottom) <= 1,
            "{left} {right} {top} {bottom}"
        );
    }
}
