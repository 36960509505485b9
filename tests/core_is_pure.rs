//! The protocol core stays sans-IO: no sockets, no clocks, no async runtime in `src/proto/`.

#[test]
fn proto_has_no_io_or_clock() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/proto");
    let forbidden = [
        "tokio",
        "UdpSocket",
        "std::net::Udp",
        "Instant::now",
        "SystemTime",
        "std::fs",
        "thread::sleep",
    ];
    let mut checked = 0;
    let mut dirs = vec![dir];
    let mut files = Vec::new();
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("src/proto") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        // Unit tests may use a real clock to build a starting instant; the code may not.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for word in forbidden {
            assert!(!code.contains(word), "{} mentions {word}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 8, "expected the proto modules, found {checked}");
}
