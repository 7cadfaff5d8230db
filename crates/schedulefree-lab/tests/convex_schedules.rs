//! `sflab convex --suite schedules` and `--schedule FILE`: the schedule comparison of
//! ALGORITHMS.md §13.4 with two-phase refinement, at toy size.

use std::path::{Path, PathBuf};
use std::process::Command;

use schedulefree::schedule::ScheduleConfig;
use schedulefree_lab::convex::config::{
    DEFAULT_ADAM_EXPONENTS, DEFAULT_DATASETS, DEFAULT_SEEDS, DEFAULT_SGD_EXPONENTS, SCHEDULES_OUT,
};
use schedulefree_lab::convex::methods::step_milestones;
use schedulefree_lab::convex::{self, Base, ConvexArgs, ConvexConfig, Method, Suite};
use schedulefree_lab::refine::norms_csv;
use schedulefree_lab::refine::{NormArg, RefineArgs, refine_with};

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sflab-schedules-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn tabulated(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).expect("schedule written");
    match serde_json::from_str::<ScheduleConfig>(&text).expect("a ScheduleConfig") {
        ScheduleConfig::Tabulated { values } => values,
        other => panic!("not tabulated: {other:?}"),
    }
}

/// iris: 150 training rows, batch 16 → 10 updates per epoch.
fn tiny(out: &Path) -> ConvexArgs {
    ConvexArgs {
        datasets: Some(vec!["iris".into()]),
        epochs: Some(2),
        seeds: Some(1),
        lrs: Some(vec![0.0625, 0.5]),
        out: Some(out.to_path_buf()),
        quiet: true,
        ..Default::default()
    }
}

#[test]
fn schedules_suite_refines_and_reports_all_seven_methods() {
    let out = out_dir("suite");
    let args = ConvexArgs {
        suite: Some(Suite::Schedules),
        ..tiny(&out)
    };
    let o = convex::run_with(&args).expect("suite runs");
    assert_eq!(o.config.methods, Method::SCHEDULES.to_vec());
    assert_eq!(o.plot_error, None);
    assert_eq!(o.runs, 2 * 7 * 2, "bases × methods × lrs × seeds");
    assert_eq!(o.report.best.len(), 2 * 7);

    // One refinement per base, each from LD's best lr, with both schedules on disk.
    assert_eq!(o.refined.len(), 2);
    let total = 20;
    for r in &o.refined {
        let ld = o
            .report
            .best_of(0, r.base, Method::LinearDecay)
            .expect("LD ran");
        assert_eq!(r.lr, ld.lr, "refined from LD's best lr");
        assert_eq!((r.total, r.logged), (total, total as usize));
        let stem = format!("iris_{}", r.base.name());
        let dir = out.join("refined");
        assert_eq!(r.norms_csv, dir.join(format!("{stem}_norms.csv")));
        let steps = norms_csv::read_column(&r.norms_csv, "step").expect("norm log");
        assert_eq!(steps, (0..total).map(|k| k as f64).collect::<Vec<_>>());
        for l in [norms_csv::L2_COLUMN, norms_csv::L1_COLUMN] {
            let v = norms_csv::read_column(&r.norms_csv, l).expect("norms");
            assert!(v.iter().all(|x| x.is_finite() && *x > 0.0), "{l}: {v:?}");
        }
        assert_eq!(r.schedules.len(), 2);
        for (s, suffix) in r.schedules.iter().zip(["l2", "l1"]) {
            assert_eq!(s.json, dir.join(format!("{stem}_{suffix}.json")));
            let values = tabulated(&s.json);
            assert_eq!(values, s.values);
            assert_eq!(values.len(), total as usize);
            let max = values.iter().copied().fold(0.0, f64::max);
            assert_eq!(max, 1.0);
            assert_eq!(values[s.warmup], 1.0);
            assert_eq!(*values.last().expect("non-empty"), 0.0);
            assert!(s.json.with_extension("png").exists(), "plot of {suffix}");

            // Round trip: `sflab refine` on the logged norms gives the same schedule.
            let again = out.join(format!("again_{stem}_{suffix}.json"));
            let a = RefineArgs {
                log: r.norms_csv.clone(),
                column: None,
                norm: if suffix == "l2" {
                    NormArg::L2
                } else {
                    NormArg::L1
                },
                steps: None,
                smoothing: 0.1,
                out: again.clone(),
                no_plot: true,
            };
            let o2 = refine_with(&a).expect("refine reads the convex norm log");
            assert_eq!(o2.schedule.values(), values.as_slice());
            assert_eq!(tabulated(&again), values);
        }
    }
    // The refined runs really used their schedules: different from LD's at the same lr.
    for base in Base::ALL {
        let ld = o.report.best_of(0, base, Method::LinearDecay).expect("LD");
        let grid = |m: Method| {
            o.report
                .grid
                .iter()
                .filter(|a| a.base == base && a.method == m)
                .map(|a| a.train_loss.mean)
                .collect::<Vec<_>>()
        };
        assert_ne!(grid(Method::RefinedL2), grid(Method::LinearDecay), "{base}");
        assert!(ld.train_loss.mean.is_finite());
    }

    let md = std::fs::read_to_string(&o.files.summary_md).expect("summary.md");
    assert!(md.contains("--suite schedules"), "title");
    for m in Method::SCHEDULES {
        assert!(
            md.contains(&format!(" {} |", m.label())),
            "lacks {}",
            m.label()
        );
    }
    for want in [
        "## Final train loss by schedule",
        "| iris | Adam |",
        "| iris | SGD |",
        "### Expected ordering in final train loss: refined ≤ LD ≤ cosine",
        "- iris / Adam: Refined ℓ2 ≤ LD ",
        "LD ≤ Cosine ",
        "Holds (dataset × base rows): Refined ℓ2 ≤ LD on ",
        "LD ≤ Cosine on ",
        "### Refined vs linear decay",
        "| Adam | Refined ℓ1 |",
        "### Refined schedules",
        "1/√t = warmup then sqrt(W/(k+1))",
    ] {
        assert!(md.contains(want), "summary.md lacks {want:?}:\n{md}");
    }
    let summary = std::fs::read_to_string(&o.files.summary_csv).expect("summary.csv");
    for m in Method::SCHEDULES {
        assert!(
            summary.contains(&format!(",{},", m.name())),
            "summary.csv lacks {m}"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn suite_defaults_and_method_resolution() {
    let cfg = ConvexConfig::resolve(&ConvexArgs {
        suite: Some(Suite::Schedules),
        ..Default::default()
    })
    .expect("resolves");
    assert_eq!(cfg.out, PathBuf::from(SCHEDULES_OUT));
    assert_eq!(cfg.methods, Method::SCHEDULES.to_vec());
    // Refined methods bring linear decay along (it is what they refine from).
    let cfg = ConvexConfig::resolve(&ConvexArgs {
        datasets: Some(vec!["iris".into()]),
        methods: Some(vec![Method::Cosine, Method::RefinedL1]),
        ..Default::default()
    })
    .expect("resolves");
    assert_eq!(
        cfg.methods,
        vec![Method::Cosine, Method::LinearDecay, Method::RefinedL1]
    );
    // The default run is unchanged.
    let cfg = ConvexConfig::resolve(&ConvexArgs::default()).expect("resolves");
    assert_eq!(cfg.methods, Method::ALL.to_vec());
    // `custom` needs a file.
    let err = ConvexConfig::resolve(&ConvexArgs {
        methods: Some(vec![Method::Custom]),
        ..Default::default()
    })
    .expect_err("no file");
    assert!(format!("{err:#}").contains("--schedule"), "{err:#}");
    // Step decay: ×0.1 after half the run, ×0.01 after three quarters.
    assert_eq!(step_milestones(20, 1), vec![10, 15]);
    assert_eq!(step_milestones(1000, 50), vec![500, 750]);
    assert_eq!(
        step_milestones(2, 1),
        vec![2],
        "inside the warmup or duplicate: dropped"
    );

    // The module docs quote the suite's run count.
    let points = |(lo, hi): (i32, i32)| (hi - lo + 1) as usize;
    let runs = DEFAULT_DATASETS.len()
        * DEFAULT_SEEDS as usize
        * Method::SCHEDULES.len()
        * (points(DEFAULT_SGD_EXPONENTS) + points(DEFAULT_ADAM_EXPONENTS));
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
    let want = format!(
        "it is {runs} runs (plus {} logged runs)",
        2 * DEFAULT_DATASETS.len()
    );
    assert!(doc.contains(&want), "convex docs lack {want:?}");
}

#[test]
fn a_schedule_file_runs_as_the_custom_method() {
    let out = out_dir("custom");
    std::fs::create_dir_all(&out).expect("create");
    // Linear decay exactly as the `linear_decay` method builds it for this run (20 updates,
    // 5 % warmup = 1 update), so the custom runs must reproduce LD bit for bit.
    let file = out.join("ld.json");
    std::fs::write(&file, r#"{"kind": "linear", "warmup": 1, "total": 20}"#).expect("write");
    let args = ConvexArgs {
        methods: Some(vec![Method::LinearDecay]),
        schedule: Some(file.clone()),
        no_plots: true,
        ..tiny(&out)
    };
    let o = convex::run_with(&args).expect("runs");
    assert_eq!(
        o.config.methods,
        vec![Method::LinearDecay, Method::Custom],
        "--schedule adds `custom`"
    );
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    for base in Base::ALL {
        let grid = |m: Method| {
            o.report
                .grid
                .iter()
                .filter(|a| a.base == base && a.method == m)
                .map(|a| (a.lr, a.train_loss.mean, a.train_acc.mean))
                .collect::<Vec<_>>()
        };
        assert_eq!(grid(Method::Custom), grid(Method::LinearDecay), "{base}");
        assert_eq!(grid(Method::Custom).len(), 2);
    }

    // A shorter table keeps its last value, with a warning naming the file and the lengths.
    let short = out.join("short.json");
    std::fs::write(
        &short,
        r#"{"kind": "tabulated", "values": [1.0, 0.5, 0.25]}"#,
    )
    .expect("write");
    let o = convex::run_with(&ConvexArgs {
        methods: Some(vec![Method::Constant]),
        schedule: Some(short.clone()),
        no_plots: true,
        ..tiny(&out)
    })
    .expect("runs");
    assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
    let w = &o.warnings[0];
    assert!(
        w.contains("short.json") && w.contains("horizon of 3") && w.contains("have 20"),
        "{w}"
    );
    assert!(o.report.best_of(0, Base::Sgd, Method::Custom).is_some());
    assert!(o.markdown.contains("Custom = "), "protocol names the file");

    // Invalid files are errors naming the file.
    let bad = out.join("bad.json");
    std::fs::write(&bad, r#"{"kind": "linear", "total": 0}"#).expect("write");
    let err = convex::run_with(&ConvexArgs {
        schedule: Some(bad),
        ..tiny(&out)
    })
    .expect_err("total 0");
    assert!(format!("{err:#}").contains("bad.json"), "{err:#}");
    let junk = out.join("junk.json");
    std::fs::write(&junk, "not json").expect("write");
    let err = convex::run_with(&ConvexArgs {
        schedule: Some(junk),
        ..tiny(&out)
    })
    .expect_err("junk");
    assert!(format!("{err:#}").contains("junk.json"), "{err:#}");

    // Through the binary: --suite and --schedule parse, the warning reaches stderr even with
    // --quiet.
    let run = Command::new(env!("CARGO_BIN_EXE_sflab"))
        .args(["convex", "--suite", "schedules", "--datasets", "iris"])
        .args([
            "--epochs", "1", "--seeds", "1", "--lrs", "0.25", "--bases", "sgd",
        ])
        .args(["--quiet", "--no-plots", "--schedule"])
        .arg(&short)
        .arg("--out")
        .arg(out.join("cli"))
        .output()
        .expect("sflab runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("warning: --schedule"), "{stderr}");
    let summary = std::fs::read_to_string(out.join("cli/summary.csv")).expect("summary");
    assert_eq!(summary.lines().count(), 1 + 8, "7 suite methods + custom");
    assert!(out.join("cli/refined/iris_sgd_l1.json").exists());
    let _ = std::fs::remove_dir_all(&out);
}
