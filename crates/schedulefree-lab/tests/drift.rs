//! `sflab drift` end to end: a short run writes the CSV and the summary; bad input is a
//! clean error.

use std::process::Command;

fn sflab_drift(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sflab"))
        .arg("drift")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("sflab runs")
}

#[test]
fn a_short_run_writes_the_csv_and_the_summary() {
    let dir = std::env::temp_dir().join(format!("sflab-drift-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = sflab_drift(&[
        "--steps",
        "300",
        "--dataset",
        "iris",
        "--out",
        dir.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(dir.join("drift.csv")).expect("drift.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("problem,method,step,rel_err_x,rel_err_y,floor_x,loss_x64,loss_gap")
    );
    // 2 problems × 2 optimizers × checkpoints 1, 2, 5, 10, 20, 50, 100, 200, 300.
    assert_eq!(lines.count(), 4 * 9);
    let md = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    for row in [
        "| quadratic | SF-AdamW | 100 |",
        "| logreg_iris | SF-SGD | 300 |",
    ] {
        assert!(md.contains(row), "{md}");
    }
    assert_eq!(String::from_utf8_lossy(&out.stdout), md);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zero_steps_and_unknown_datasets_are_errors() {
    let out = sflab_drift(&["--steps", "0", "--out", "/nonexistent/never"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--steps"));
    let out = sflab_drift(&[
        "--steps",
        "10",
        "--dataset",
        "no_such_set",
        "--out",
        "/nonexistent/never",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_set"));
}
