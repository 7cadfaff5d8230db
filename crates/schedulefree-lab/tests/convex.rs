//! End-to-end tests of `sflab convex` through the library entry point.

use std::path::{Path, PathBuf};
use std::process::Command;

use schedulefree_lab::convex::config::{
    DEFAULT_ADAM_EXPONENTS, DEFAULT_DATASETS, DEFAULT_EPOCHS, DEFAULT_SEEDS, DEFAULT_SGD_EXPONENTS,
    FULL_ADAM_EXPONENTS, FULL_DATASETS, FULL_EPOCHS, FULL_SEEDS, FULL_SGD_EXPONENTS, grid_label,
};
use schedulefree_lab::convex::{self, Base, ConvexArgs, Method};

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sflab-convex-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn non_empty(path: &Path) {
    let len = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len();
    assert!(len > 0, "{} is empty", path.display());
}

#[test]
fn iris_end_to_end_writes_every_output() {
    let out = out_dir("e2e");
    let args = ConvexArgs {
        datasets: Some(vec!["iris".into()]),
        epochs: Some(2),
        seeds: Some(1),
        lrs: Some(vec![0.0625, 0.5]),
        out: Some(out.clone()),
        quiet: true,
        ..Default::default()
    };
    let o = convex::run_with(&args).expect("sweep runs");
    assert_eq!(o.plot_error, None, "plots must be drawn");
    let f = &o.files;
    for p in [&f.curves, &f.grid, &f.summary_csv, &f.summary_md, &f.config] {
        assert!(p.starts_with(&out), "{} is not under --out", p.display());
        non_empty(p);
    }
    assert_eq!(f.plots, vec![out.join("plots").join("iris.png")]);
    let png = std::fs::read(&f.plots[0]).expect("png readable");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");

    // 2 bases x 6 methods x 2 lrs x 1 seed runs, each evaluated before training and after
    // each of the 2 epochs.
    let runs = 2 * Method::ALL.len() * 2;
    assert_eq!(o.runs, runs);
    let curves = std::fs::read_to_string(&f.curves).expect("curves");
    let mut lines = curves.lines();
    assert_eq!(
        lines.next(),
        Some("dataset,method,base,lr,seed,step,epoch,train_loss,train_acc,test_acc")
    );
    assert_eq!(lines.count(), runs * 3);

    // summary.csv: one row per base x method, every method present.
    let summary = std::fs::read_to_string(&f.summary_csv).expect("summary");
    let rows: Vec<Vec<&str>> = summary
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2 * Method::ALL.len());
    for base in Base::ALL {
        for m in Method::ALL {
            let row = rows
                .iter()
                .find(|r| r[0] == "iris" && r[1] == base.name() && r[2] == m.name())
                .unwrap_or_else(|| panic!("summary lacks {base}/{m}"));
            let lr: f64 = row[3].parse().expect("lr");
            assert!(lr == 0.0625 || lr == 0.5, "best lr {lr} not from the grid");
            let acc: f64 = row[8].parse().expect("train_acc_mean");
            assert!((0.0..=1.0).contains(&acc));
        }
    }
    // The markdown names every method in its tables, and the best cell of each row is bold.
    let md = std::fs::read_to_string(&f.summary_md).expect("markdown");
    for m in Method::ALL {
        assert!(
            md.contains(&format!(" {} |", m.label())),
            "markdown lacks {}",
            m.label()
        );
    }
    assert!(md.contains("**"), "no bold winner");
    assert!(md.contains("| iris (150×4, 3 cl.) |"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn schedule_free_adam_fits_iris() {
    let out = out_dir("sf");
    let args = ConvexArgs {
        datasets: Some(vec!["iris".into()]),
        epochs: Some(10),
        seeds: Some(2),
        lrs: Some(vec![0.125]),
        bases: Some(vec![Base::Adam]),
        methods: Some(vec![Method::ScheduleFree]),
        out: Some(out.clone()),
        quiet: true,
        no_plots: true,
        ..Default::default()
    };
    let o = convex::run_with(&args).expect("sweep runs");
    let best = o
        .report
        .best_of(0, Base::Adam, Method::ScheduleFree)
        .expect("a result");
    assert_eq!(best.train_acc.n, 2);
    assert_eq!(best.diverged, 0);
    assert!(
        best.train_acc.mean >= 0.90,
        "Schedule-Free Adam reached only {:.1}% train accuracy on iris",
        100.0 * best.train_acc.mean
    );
    assert!(
        best.train_loss.mean < 0.5,
        "loss {} (ln 3 = 1.10 at the start)",
        best.train_loss.mean
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn user_files_and_bad_names() {
    let iris = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/libsvm/iris.libsvm");
    let out = out_dir("user");
    let args = ConvexArgs {
        data: vec![iris.to_string_lossy().into_owned()],
        epochs: Some(1),
        seeds: Some(1),
        lrs: Some(vec![0.1]),
        bases: Some(vec![Base::Sgd]),
        methods: Some(vec![Method::LinearDecay, Method::Polyak]),
        out: Some(out.clone()),
        quiet: true,
        no_plots: true,
        ..Default::default()
    };
    let o = convex::run_with(&args).expect("user file runs");
    assert_eq!(o.report.datasets.len(), 1);
    assert_eq!(o.report.datasets[0].name, "iris");
    assert_eq!(o.report.best.len(), 2);

    let bad = ConvexArgs {
        datasets: Some(vec!["no_such_dataset".into()]),
        out: Some(out.clone()),
        quiet: true,
        ..Default::default()
    };
    let err = convex::run_with(&bad).expect_err("unknown dataset");
    assert!(format!("{err:#}").contains("no_such_dataset"), "{err:#}");
    let _ = std::fs::remove_dir_all(&out);
}

fn sflab_convex(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sflab"))
        .arg("convex")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("sflab runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn negative_numbers_reach_our_own_validation() {
    let out = out_dir("negative");
    let out_arg = out.to_string_lossy().into_owned();
    for (args, message) in [
        (
            vec!["--lrs", "-0.1"],
            "learning rates must be positive and finite, got -0.1",
        ),
        (
            vec!["--lrs", "-0.1,0.2"],
            "learning rates must be positive and finite, got -0.1",
        ),
        (
            vec!["--warmup", "-1"],
            "--warmup must be a fraction in [0, 1], got -1",
        ),
        (
            vec!["--lr-min", "-3", "--lr-max", "-5"],
            "--lr-min (-3) must not exceed --lr-max (-5)",
        ),
        // `--jobs`, as in the other commands; `--threads` is its old name.
        (vec!["--jobs", "0"], "--jobs must be positive"),
        (vec!["--threads", "0"], "--jobs must be positive"),
    ] {
        let mut all = args.clone();
        all.extend(["--quiet", "--no-plots", "--out", &out_arg]);
        let (ok, _, stderr) = sflab_convex(&all);
        assert!(!ok, "{args:?} accepted");
        assert!(
            !stderr.contains("unexpected argument"),
            "{args:?}: clap rejected it:\n{stderr}"
        );
        assert!(
            stderr.contains(message),
            "{args:?}: expected {message:?}:\n{stderr}"
        );
    }
    assert!(!out.exists(), "nothing is written for invalid arguments");
}

#[test]
fn help_and_docs_match_the_protocol_constants() {
    let (ok, help, stderr) = sflab_convex(&["--help"]);
    assert!(ok, "{stderr}");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let full = format!(
        "{FULL_EPOCHS} epochs, {FULL_SEEDS} seeds, all {} datasets",
        FULL_DATASETS.len()
    );
    let grids = format!(
        "lr grids SGD {} and Adam {}",
        grid_label(FULL_SGD_EXPONENTS),
        grid_label(FULL_ADAM_EXPONENTS)
    );
    assert_eq!(grid_label(FULL_SGD_EXPONENTS), "2^-9..2^7 (17 points)");
    for want in [
        full.as_str(),
        grids.as_str(),
        &format!("(default {DEFAULT_EPOCHS}; {FULL_EPOCHS} with --full)"),
        &format!("(default {DEFAULT_SEEDS}; {FULL_SEEDS} with --full)"),
        &format!(
            "Default grids: SGD {}, Adam {}",
            grid_label(DEFAULT_SGD_EXPONENTS),
            grid_label(DEFAULT_ADAM_EXPONENTS)
        ),
        "Smallest lr exponent, an integer",
        "Largest lr exponent, an integer",
    ] {
        assert!(help.contains(want), "--help lacks {want:?}:\n{help}");
    }
    assert!(!help.contains("15-point"), "{help}");

    // The module documentation quotes the same grids and run count.
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/convex/mod.rs"))
            .expect("convex/mod.rs");
    let doc = doc
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let quoted = |(lo, hi): (i32, i32)| format!("`2^{lo}..2^{hi}` ({} points)", hi - lo + 1);
    let points = |(lo, hi): (i32, i32)| (hi - lo + 1) as usize;
    let runs = DEFAULT_DATASETS.len()
        * DEFAULT_SEEDS as usize
        * Method::ALL.len()
        * (points(DEFAULT_SGD_EXPONENTS) + points(DEFAULT_ADAM_EXPONENTS));
    for want in [
        format!(
            "SGD {} and Adam {}: {runs} runs",
            quoted(DEFAULT_SGD_EXPONENTS),
            quoted(DEFAULT_ADAM_EXPONENTS)
        ),
        format!(
            "SGD {} and Adam {}",
            quoted(FULL_SGD_EXPONENTS),
            quoted(FULL_ADAM_EXPONENTS)
        ),
        format!("{DEFAULT_EPOCHS} epochs, {DEFAULT_SEEDS} seeds"),
        format!(
            "{FULL_EPOCHS} epochs, {FULL_SEEDS} seeds, {} datasets",
            FULL_DATASETS.len()
        ),
    ] {
        assert!(doc.contains(&want), "convex module docs lack {want:?}");
    }
}

#[test]
fn unknown_names_list_the_datasets_and_a_bad_data_dir_is_an_error() {
    let out = out_dir("names");
    let args = |datasets: &str, data_dir: Option<PathBuf>| ConvexArgs {
        datasets: Some(vec![datasets.into()]),
        data_dir,
        out: Some(out.clone()),
        quiet: true,
        no_plots: true,
        ..Default::default()
    };
    let err = format!(
        "{:#}",
        convex::run_with(&args("Iris", None)).expect_err("unknown dataset")
    );
    assert!(err.contains("\"Iris\""), "{err}");
    assert!(
        err.contains("available: ") && err.contains("iris") && err.contains("satimage"),
        "{err}"
    );

    let missing = Path::new("/nonexistent-sflab-data-dir");
    let err = format!(
        "{:#}",
        convex::run_with(&args("iris", Some(missing.into()))).expect_err("missing dir")
    );
    assert!(
        err.contains("--data-dir") && err.contains("nonexistent-sflab-data-dir"),
        "{err}"
    );
    let empty = out_dir("empty-data-dir");
    std::fs::create_dir_all(&empty).expect("create");
    let err = format!(
        "{:#}",
        convex::run_with(&args("iris", Some(empty.clone()))).expect_err("no manifest")
    );
    assert!(err.contains("MANIFEST.tsv"), "{err}");
    // The bundled directory itself (or its parent, holding libsvm/) is a valid --data-dir.
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let cfg = convex::ConvexConfig::resolve(&args("iris", Some(bundled.clone())))
        .expect("data dir with libsvm/");
    assert_eq!(cfg.data_dir, Some(bundled));
    let _ = std::fs::remove_dir_all(&empty);
    let _ = std::fs::remove_dir_all(&out);
}
