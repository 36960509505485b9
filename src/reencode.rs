//! Making an image smaller before it is sent (`udpix send --max-dim N --format F
//! --quality Q`), for links too slow for the originals. Without these options udpix
//! sends files byte for byte; with them, the receiver verifies and keeps exactly the
//! re-encoded bytes that were sent.

use std::io::{self, Cursor};
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, imageops::FilterType};

/// The formats udpix re-encodes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// JPEG at `--quality`: small, lossy, no transparency.
    Jpeg,
    /// PNG: lossless.
    Png,
    /// WebP, lossless (the encoder udpix has makes no lossy WebP).
    Webp,
}

impl Target {
    fn format(self) -> ImageFormat {
        match self {
            Target::Jpeg => ImageFormat::Jpeg,
            Target::Png => ImageFormat::Png,
            Target::Webp => ImageFormat::WebP,
        }
    }

    /// The target for an image decoded from `f`: the same format where udpix can write
    /// it, else PNG.
    fn keeping(f: ImageFormat) -> Target {
        match f {
            ImageFormat::Jpeg => Target::Jpeg,
            ImageFormat::WebP => Target::Webp,
            _ => Target::Png,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Target::Jpeg => "jpg",
            Target::Png => "png",
            Target::Webp => "webp",
        }
    }
}

/// What to do to each image before it is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reencode {
    /// Scale down (aspect kept) so that neither side is longer than this.
    pub max_dim: Option<u32>,
    /// Write this format; by default the original's (PNG for formats udpix cannot write).
    pub format: Option<Target>,
    /// JPEG quality, 1 to 100.
    pub quality: u8,
}

/// Most memory a decoded image may take: a larger one is refused, not decoded.
const DECODE_LIMIT: u64 = 512 << 20;

/// The re-encoded image: its bytes, the name it is offered under (the extension made to
/// match), and its size in pixels.
#[derive(Debug)]
pub struct Reencoded {
    /// The new file's bytes: what is offered, hashed and verified.
    pub bytes: Vec<u8>,
    /// `photo.png` sent as JPEG is offered as `photo.jpg`.
    pub name: String,
    /// Its format's label (`jpg`, `png`, `webp`).
    pub format: &'static str,
    /// Width and height after scaling.
    pub dims: (u32, u32),
}

/// Decodes the image at `path`, scales it down and encodes it as `r` says.
pub fn reencode(path: &Path, name: &str, r: &Reencode) -> io::Result<Reencoded> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut header = [0u8; crate::formats::MAGIC_LEN];
    let n = {
        use std::io::Read;
        std::fs::File::open(path)?.read(&mut header)?
    };
    // By content, never by name: a text file called notes.png is no image.
    let Some(source) = crate::formats::sniff(&header[..n]) else {
        return Err(invalid(
            "it is not an image udpix decodes (png, jpeg, gif, webp, bmp): send it without \
             --max-dim, --format and --quality"
                .to_owned(),
        ));
    };
    let mut reader = ImageReader::with_format(file, source);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(DECODE_LIMIT);
    reader.limits(limits);
    let mut img = reader
        .decode()
        .map_err(|e| invalid(format!("cannot decode it: {e}")))?;
    if let Some(max) = r.max_dim
        && img.width().max(img.height()) > max
    {
        img = img.resize(max, max, FilterType::Lanczos3);
    }
    let target = r.format.unwrap_or(Target::keeping(source));
    let bytes = encode(&img, target, r.quality).map_err(|e| invalid(e.to_string()))?;
    let stem = Path::new(name)
        .file_stem()
        .map_or_else(|| "image".to_owned(), |s| s.to_string_lossy().into_owned());
    Ok(Reencoded {
        bytes,
        name: format!("{stem}.{}", target.extension()),
        format: crate::formats::label(target.format()),
        dims: (img.width(), img.height()),
    })
}

fn encode(img: &DynamicImage, target: Target, quality: u8) -> image::ImageResult<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    match target {
        Target::Jpeg => {
            // JPEG has no alpha: flattened to RGB.
            let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
            let enc =
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
            rgb.write_with_encoder(enc)?;
        }
        Target::Png => img.write_to(&mut out, ImageFormat::Png)?,
        Target::Webp => {
            let rgba = DynamicImage::ImageRgba8(img.to_rgba8());
            rgba.write_to(&mut out, ImageFormat::WebP)?;
        }
    }
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata")
            .join(name)
    }

    #[test]
    fn an_image_is_scaled_down_with_its_aspect_and_written_in_the_format_asked() {
        let r = Reencode {
            max_dim: Some(100),
            format: Some(Target::Jpeg),
            quality: 80,
        };
        let out = reencode(&testdata("chelsea.png"), "chelsea.png", &r).expect("re-encoded");
        assert_eq!(out.name, "chelsea.jpg");
        assert_eq!(out.format, "jpg");
        // 451×300 fitted into 100×100.
        assert_eq!(out.dims, (100, 67));
        let back = image::load_from_memory(&out.bytes).expect("decodes");
        assert_eq!((back.width(), back.height()), (100, 67));
        assert_eq!(
            image::guess_format(&out.bytes).expect("sniffed"),
            ImageFormat::Jpeg
        );
        let original = std::fs::metadata(testdata("chelsea.png"))
            .expect("meta")
            .len();
        assert!(
            (out.bytes.len() as u64) < original / 10,
            "{}",
            out.bytes.len()
        );
    }

    #[test]
    fn a_small_image_keeps_its_size_and_format_and_a_non_image_is_refused() {
        let r = Reencode {
            max_dim: Some(4096),
            format: None,
            quality: 85,
        };
        let out = reencode(&testdata("rocket.jpg"), "rocket.jpg", &r).expect("re-encoded");
        assert_eq!((out.name.as_str(), out.format), ("rocket.jpg", "jpg"));
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("notes.png");
        std::fs::write(&text, b"not an image at all").expect("write");
        let e = reencode(&text, "notes.png", &r).expect_err("refused");
        assert!(e.to_string().contains("not an image udpix decodes"), "{e}");
    }
}
