//! `udpix bench --quick`, run as a user runs it: every case must deliver its files and the
//! report must make physical sense. Times are never checked here (benchmarks, not tests).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_udpix");

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("bench")
        .args(args)
        .output()
        .expect("udpix runs")
}

#[test]
fn the_quick_matrix_delivers_every_file_and_reports_figures_that_make_sense() {
    let out = bench(&["--quick", "--reps", "1", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    for r in &rows {
        let f = |k: &str| {
            r[k].as_f64()
                .unwrap_or_else(|| panic!("{k} missing in {r}"))
        };
        assert_eq!(r["ok_runs"], 1, "{r}");
        assert_eq!(r["runs"], 1, "{r}");
        assert!(r["errors"].as_array().is_some_and(|e| e.is_empty()), "{r}");
        // No transfer beats the link by much: its limit is physics (a lucky run loses less).
        assert!(f("ratio") > 0.8, "faster than the link allows: {r}");
        assert!(
            (f("ratio") - f("median_s") / f("limit_s")).abs() < 1e-9,
            "{r}"
        );
        // Every image byte crossed the wire at least once, with headers.
        assert!(f("wire_per_byte") > 1.0, "{r}");
        // Login, then data: the first image bytes cannot come before one round trip.
        assert!(f("first_bytes_rtt") >= 1.0, "{r}");
        let drops = f("queue_drop_fraction");
        assert!((0.0..=1.0).contains(&drops), "{r}");
    }
}

#[test]
fn the_table_has_a_heading_and_a_line_per_selected_case() {
    let out = bench(&["--quick", "--reps", "1", "--case", "quick 0%"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("case") && lines[0].contains("ratio"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("quick 0%") && lines[1].contains("1/1"),
        "{stdout}"
    );
}

#[test]
fn an_unknown_case_is_refused_with_the_names_of_the_real_ones() {
    let out = bench(&["--quick", "--case", "no such case"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no case matches") && stderr.contains("quick 10%"),
        "{stderr}"
    );
}

#[test]
fn the_simulated_matrix_repeats_exactly_for_a_seed() {
    let run = || bench(&["--quick", "--sim", "--reps", "2", "--json", "--runs"]);
    let (a, b) = (run(), run());
    assert!(a.status.success(), "{a:?}");
    let a = String::from_utf8_lossy(&a.stdout).into_owned();
    assert_eq!(
        a,
        String::from_utf8_lossy(&b.stdout),
        "virtual time is not repeatable"
    );
    // Two runs and one summary per case.
    assert_eq!(a.lines().count(), 9, "{a}");
    assert!(
        a.lines()
            .all(|l| l.contains("\"ok\":true") || l.contains("\"ok_runs\":2")),
        "{a}"
    );
}
