//! `udpix send --max-dim N --format F --quality Q`: the image is scaled down and re-encoded
//! before it is offered, and the receiver verifies and keeps exactly what was sent; a file
//! that is no image is reported and the others still go.

mod common;

use common::{WAIT, json_lines, send, start_recv, testdata};

#[test]
fn a_scaled_down_jpeg_is_what_arrives_and_a_non_image_is_told() {
    let recv = start_recv("127.0.0.1:0", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"a text file with an image's name").expect("write");
    let photo = testdata().join("chelsea.png");
    let out = send(
        recv.addr,
        &[&text, &photo],
        &[
            "--max-dim",
            "100",
            "--format",
            "jpeg",
            "--quality",
            "70",
            "--json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one file could not be sent: {stderr}"
    );
    assert!(stderr.contains("not an image udpix decodes"), "{stderr}");
    let lines = recv.proc.wait_stdout_lines(1, WAIT);
    let got = json_lines(&lines);
    assert_eq!(got.len(), 1, "{lines:?}");
    let j = &got[0];
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(j["name"], "chelsea.jpg");
    assert_eq!(
        (j["width"].as_u64(), j["height"].as_u64()),
        (Some(100), Some(67))
    );
    assert_eq!(j["format"], "jpg");
    let kept = std::fs::read(recv.out.path().join("chelsea.jpg")).expect("kept");
    assert_eq!(j["bytes"].as_u64(), Some(kept.len() as u64));
    let img = image::load_from_memory(&kept).expect("a JPEG that decodes");
    assert_eq!((img.width(), img.height()), (100, 67));
    let original = std::fs::metadata(&photo).expect("meta").len();
    assert!((kept.len() as u64) < original / 10, "{} bytes", kept.len());
}
