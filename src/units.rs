//! Parsers for the human units on the command line: `10%`, `20ms`, `20mbit`, `1.5s`.

use std::time::Duration;

/// A probability: `0.1`, `10%`.
pub fn probability(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a probability (use 0.1 or 10%)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{s}` is outside 0..1 (0%..100%)"));
    }
    Ok(v)
}

/// A duration with its unit: `20ms`, `1.5s`, `500us`, `2m`. A bare number is refused: `20`
/// could mean 20 ms or 20 s.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("us").or_else(|| s.strip_suffix("µs")) {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if s.parse::<f64>().is_ok() {
        return Err(format!(
            "`{s}` has no unit: give a unit, e.g. {s}ms or {s}s (also us, m)"
        ));
    } else {
        return Err(format!("`{s}` is not a duration (use 20ms, 1.5s, 500us)"));
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (use 20ms, 1.5s, 500us)"))?;
    if !(0.0..1e9).contains(&v) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// A rate in bytes per second from `20mbit`, `500kbit`, `1gbit`, `8000bit`, `2MB`, `100kB`.
pub fn rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let units: [(&str, f64); 10] = [
        ("gbit", 1e9 / 8.0),
        ("mbit", 1e6 / 8.0),
        ("kbit", 1e3 / 8.0),
        ("bit", 1.0 / 8.0),
        ("gbps", 1e9 / 8.0),
        ("mbps", 1e6 / 8.0),
        ("kbps", 1e3 / 8.0),
        ("gb", 1e9),
        ("mb", 1e6),
        ("kb", 1e3),
    ];
    let (num, scale) = units
        .iter()
        .find_map(|(u, f)| lower.strip_suffix(u).map(|n| (n.to_owned(), *f)))
        .or_else(|| lower.strip_suffix('b').map(|n| (n.to_owned(), 1.0)))
        .ok_or_else(|| format!("`{t}` has no unit (use 20mbit, 500kbit, 2MB)"))?;
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not a rate (use 20mbit, 500kbit, 2MB)"))?;
    if v <= 0.0 || !v.is_finite() {
        return Err(format!("`{t}` must be above zero"));
    }
    Ok(v * scale)
}

/// A byte size: `512MiB`, `10MB`, `1200`, `64k`.
pub fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let units: [(&str, u64); 9] = [
        ("gib", 1 << 30),
        ("mib", 1 << 20),
        ("kib", 1 << 10),
        ("gb", 1_000_000_000),
        ("mb", 1_000_000),
        ("kb", 1_000),
        ("g", 1 << 30),
        ("m", 1 << 20),
        ("k", 1 << 10),
    ];
    let (num, scale) = units
        .iter()
        .find_map(|(u, f)| lower.strip_suffix(u).map(|n| (n.to_owned(), *f)))
        .unwrap_or_else(|| (lower.trim_end_matches('b').to_owned(), 1));
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not a size (use 512MiB, 10MB, 1200)"))?;
    if v < 0.0 || !v.is_finite() {
        return Err(format!("`{t}` must not be negative"));
    }
    Ok((v * scale as f64) as u64)
}

/// A value that may differ per direction: `X` for both, `UP:DOWN` for each.
pub fn per_direction<T: Copy>(
    s: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<(T, T), String> {
    match s.split_once(':') {
        Some((up, down)) => Ok((parse(up)?, parse(down)?)),
        None => {
            let v = parse(s)?;
            Ok((v, v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(probability("10%"), Ok(0.1));
        assert_eq!(probability("0.25"), Ok(0.25));
        assert!(probability("120%").is_err());
        assert_eq!(duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        for bare in ["20", "0", "1.5", " 7 "] {
            let e = duration(bare).expect_err(bare);
            assert!(e.contains("give a unit") && e.contains("ms"), "{e}");
        }
        assert!(duration("ms").is_err());
        assert_eq!(rate("20mbit"), Ok(2_500_000.0));
        assert_eq!(rate("2MB"), Ok(2_000_000.0));
        assert!(rate("20").is_err());
        assert_eq!(size("512MiB"), Ok(512 << 20));
        assert_eq!(size("1200"), Ok(1200));
        assert_eq!(per_direction("10%:0", probability), Ok((0.1, 0.0)));
        assert_eq!(per_direction("5%", probability), Ok((0.05, 0.05)));
    }
}
