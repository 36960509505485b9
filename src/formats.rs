//! The image formats udpix decodes, in one list: what the file browser groups and labels as
//! images, and what the preview can draw. [`DECODED`] follows the `image` crate features
//! enabled in Cargo.toml (a test checks that every one of them decodes and no other format
//! does), and a file's format is read from its first bytes, never from its name.

use std::io::{Read, Seek};
use std::path::Path;

use image::ImageFormat;

/// Every format udpix decodes: the `image` features in Cargo.toml, no more, no fewer.
pub const DECODED: &[ImageFormat] = &[
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::Gif,
    ImageFormat::WebP,
    ImageFormat::Bmp,
];

/// Bytes enough for [`image::guess_format`] to tell every format in [`DECODED`] (WebP's
/// `RIFF....WEBP` is the longest at 12).
pub const MAGIC_LEN: usize = 16;

/// The format these first bytes announce, if it is one udpix decodes.
pub fn sniff(header: &[u8]) -> Option<ImageFormat> {
    image::guess_format(header)
        .ok()
        .filter(|f| DECODED.contains(f))
}

/// The short name a format is shown by (`png`, `jpg`, `gif`, `webp`, `bmp`).
pub fn label(format: ImageFormat) -> &'static str {
    format.extensions_str().first().copied().unwrap_or("")
}

/// True when the file name ends in an extension of a [`DECODED`] format (any case): how a
/// listing groups images before any file is opened. What a file is comes from [`info_path`].
pub fn has_decoded_extension(path: &Path) -> bool {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return false;
    };
    DECODED.iter().any(|f| {
        f.extensions_str()
            .iter()
            .any(|e| e.eq_ignore_ascii_case(ext))
    })
}

/// A file's format label and dimensions, from its content: an empty label (and no size) for
/// anything that is not a [`DECODED`] image, whatever its name says.
pub fn info_path(path: &Path) -> (String, Option<(u32, u32)>) {
    let none = || (String::new(), None);
    let Ok(mut file) = std::fs::File::open(path) else {
        return none();
    };
    let mut header = Vec::with_capacity(MAGIC_LEN);
    if (&mut file)
        .take(MAGIC_LEN as u64)
        .read_to_end(&mut header)
        .is_err()
    {
        return none();
    }
    let Some(format) = sniff(&header) else {
        return none();
    };
    if file.rewind().is_err() {
        return none();
    }
    let reader = image::ImageReader::with_format(std::io::BufReader::new(file), format);
    (label(format).to_owned(), reader.into_dimensions().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_is_exactly_what_the_image_features_read() {
        for f in ImageFormat::all() {
            assert_eq!(
                DECODED.contains(&f),
                f.reading_enabled(),
                "{f:?}: DECODED and the image crate's features disagree"
            );
        }
    }

    #[test]
    fn every_decoded_format_round_trips_and_is_sniffed() {
        for &f in DECODED {
            let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(7, 5, |x, y| {
                image::Rgb([(x * 30) as u8, (y * 40) as u8, 128])
            }));
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), f)
                .unwrap_or_else(|e| panic!("{f:?} encodes: {e}"));
            assert_eq!(sniff(&bytes[..MAGIC_LEN]), Some(f), "{f:?}");
            let back = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{f:?}: {e}"));
            assert_eq!((back.width(), back.height()), (7, 5), "{f:?}");
            let dir = tempfile::tempdir().expect("tempdir");
            // Named as nothing in particular: the content decides.
            let path = dir.path().join("picture.dat");
            std::fs::write(&path, &bytes).expect("write");
            assert_eq!(
                info_path(&path),
                (label(f).to_owned(), Some((7, 5))),
                "{f:?}"
            );
        }
    }

    #[test]
    fn names_do_not_make_images() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("notes.png");
        std::fs::write(&text, "only text, not an image\n").expect("write");
        assert_eq!(info_path(&text), (String::new(), None));
        assert!(
            has_decoded_extension(&text),
            "grouped by name, labelled by content"
        );
        // A format image can recognise but udpix does not decode is not claimed.
        let tiff = dir.path().join("scan.tif");
        std::fs::write(&tiff, b"II*\0\x08\0\0\0\0\0\0\0\0\0\0\0").expect("write");
        assert_eq!(
            image::guess_format(b"II*\0\x08\0\0\0").ok(),
            Some(ImageFormat::Tiff)
        );
        assert_eq!(info_path(&tiff), (String::new(), None));
        assert!(!has_decoded_extension(&tiff));
        assert!(has_decoded_extension(Path::new("a.JPEG")));
        assert!(!has_decoded_extension(Path::new("png")));
        assert_eq!(
            info_path(&dir.path().join("missing.png")),
            (String::new(), None)
        );
    }
}
