//! `sflab refine`: CSV log → refined schedule JSON + PNG, through the binary and the library.

use std::path::{Path, PathBuf};
use std::process::Command;

use schedulefree::schedule::ScheduleConfig;
use schedulefree_lab::refine::norms_csv::{self, NormCsvError};
use schedulefree_lab::refine::{NormArg, RefineArgs, refine_with, warmup_length};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sflab-refine-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create test dir");
    d
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write csv");
}

fn sflab_refine(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sflab"))
        .arg("refine")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("sflab runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tabulated(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).expect("schedule written");
    match serde_json::from_str::<ScheduleConfig>(&text).expect("a ScheduleConfig") {
        ScheduleConfig::Tabulated { values } => values,
        other => panic!("not tabulated: {other:?}"),
    }
}

fn args(log: &Path, out: &Path) -> RefineArgs {
    RefineArgs {
        log: log.to_path_buf(),
        column: None,
        norm: NormArg::L2,
        steps: None,
        smoothing: 0.1,
        out: out.to_path_buf(),
        no_plot: true,
    }
}

#[test]
fn constant_norms_give_linear_decay_and_a_png() {
    let d = dir("constant");
    let log = d.join("run.csv");
    let mut text = String::from("step,grad_l2,grad_l1\n");
    for k in 0..5 {
        text.push_str(&format!("{k},2.5,7\n"));
    }
    write(&log, &text);
    let out = d.join("sub/schedule.json");
    let (ok, stderr) = sflab_refine(&[
        "--log",
        log.to_str().expect("utf-8"),
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(tabulated(&out), vec![1.0, 0.75, 0.5, 0.25, 0.0]);
    let png = std::fs::read(d.join("sub/schedule.png")).expect("PNG next to the JSON");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(stderr.contains("warmup 0"), "{stderr}");

    // ℓ1 from its default column, resampled to 9 updates: still linear decay.
    let out1 = d.join("l1.json");
    let (ok, stderr) = sflab_refine(&[
        "--log",
        log.to_str().expect("utf-8"),
        "--norm",
        "l1",
        "--steps",
        "9",
        "--no-plot",
        "--out",
        out1.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{stderr}");
    let v = tabulated(&out1);
    let want: Vec<f64> = (0..9).map(|k| (8 - k) as f64 / 8.0).collect();
    assert_eq!(v, want);
    assert!(!d.join("l1.png").exists(), "--no-plot draws nothing");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn falling_norms_make_a_warmup_and_non_finite_values_are_filled() {
    let d = dir("warmup");
    let log = d.join("run.csv");
    // Norms 4, 3, 2 then 1 (ALGORITHMS.md §12.2's profile), in a custom column, with a NaN
    // that refinement must fill in (interpolated between the neighbouring 1s).
    write(
        &log,
        "loss, my_norm\n0,4\n0,3\n0,2\n0,1\n0,1\n0,nan\n0,1\n0,1\n0,1\n0,1\n",
    );
    let out = d.join("s.json");
    let mut a = args(&log, &out);
    a.column = Some("my_norm".into());
    a.smoothing = 0.0;
    let o = refine_with(&a).expect("refines");
    assert_eq!(o.warmup, 3, "peak at the 4th update, after the norms fall");
    assert_eq!(warmup_length(o.schedule.values()), 3);
    let v = tabulated(&out);
    assert_eq!(v, o.schedule.values());
    assert!((v[0] - 0.076_678_240_741).abs() < 1e-11, "{v:?}");
    assert_eq!(v[3], 1.0);
    assert_eq!(*v.last().expect("non-empty"), 0.0);
    assert!(o.norms[5].is_nan(), "non-finite values are read as such");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_csvs_are_clear_errors() {
    let d = dir("bad");
    let out = d.join("s.json");
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "missing.csv",
            "step,loss\n0,1\n",
            &["no column \"grad_l2\"", "columns: step, loss"],
        ),
        ("empty.csv", "", &["no data rows"]),
        ("header.csv", "step,grad_l2\n", &["no data rows"]),
        (
            "blank.csv",
            "step,grad_l2\n0,1\n1,\n",
            &["line 3", "empty value", "grad_l2"],
        ),
        (
            "text.csv",
            "step,grad_l2\n0,1\n1,abc\n",
            &["line 3", "\"abc\" is not a number"],
        ),
        (
            "ragged.csv",
            "step,grad_l2\n0,1\n1\n",
            &["ragged.csv", "fields"],
        ),
    ];
    for (name, text, wants) in cases {
        let log = d.join(name);
        write(&log, text);
        let err = format!("{:#}", refine_with(&args(&log, &out)).expect_err(name));
        for want in wants {
            assert!(err.contains(want), "{name}: {err:?} lacks {want:?}");
        }
        assert!(
            err.contains(name),
            "{name}: the message names the file: {err}"
        );
    }
    // Through the binary: non-zero exit, the message on stderr, nothing written.
    let log = d.join("missing.csv");
    let (ok, stderr) = sflab_refine(&[
        "--log",
        log.to_str().expect("utf-8"),
        "--norm",
        "l1",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("no column \"grad_l1\""), "{stderr}");
    let (ok, stderr) = sflab_refine(&["--log", "/nonexistent/run.csv", "-o", "x.json"]);
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/run.csv"), "{stderr}");
    // Bad settings.
    let good = d.join("good.csv");
    write(&good, "grad_l2\n1\n2\n");
    let mut a = args(&good, &out);
    a.steps = Some(0);
    assert!(format!("{:#}", refine_with(&a).expect_err("steps 0")).contains("--steps"));
    let mut a = args(&good, &out);
    a.smoothing = 2.0;
    assert!(format!("{:#}", refine_with(&a).expect_err("smoothing")).contains("smoothing"));
    assert!(!out.exists(), "nothing is written on error");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_norm_log_writer_and_reader_round_trip() {
    let d = dir("roundtrip");
    let path = d.join("norms.csv");
    let rows = [
        (0, 1.5, 10.25),
        (1, f64::NAN, 3.0e-20),
        (2, f64::INFINITY, 0.1 + 0.2),
    ];
    norms_csv::write_norms(&path, rows).expect("write");
    let l2 = norms_csv::read_column(&path, norms_csv::L2_COLUMN).expect("l2");
    let l1 = norms_csv::read_column(&path, norms_csv::L1_COLUMN).expect("l1");
    let steps = norms_csv::read_column(&path, norms_csv::STEP_COLUMN).expect("step");
    assert_eq!(steps, vec![0.0, 1.0, 2.0]);
    assert_eq!(l2[0], 1.5);
    assert!(l2[1].is_nan());
    assert_eq!(l2[2], f64::INFINITY);
    assert_eq!(l1, vec![10.25, 3.0e-20, 0.1 + 0.2], "bit-exact");
    assert!(matches!(
        norms_csv::read_column(&path, "nope"),
        Err(NormCsvError::MissingColumn { .. })
    ));
    let _ = std::fs::remove_dir_all(&d);
}
