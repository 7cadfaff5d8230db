//! `sflab refine-run` and the train ↔ refine round trip: gradient norms logged by `sflab
//! train`, refined by `sflab refine`, and the refined schedule run by `sflab train --schedule`.

use std::path::{Path, PathBuf};
use std::process::Command;

use schedulefree::PresetConfig;
use schedulefree::schedule::ScheduleConfig;
use schedulefree_lab::refine::rerun::{RefineRunArgs, run_with};
use schedulefree_lab::refine::warmup_length;
use schedulefree_lab::train::{Task, TrainConfig};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sflab-refine-run-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn sflab(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sflab"))
        .args(args)
        .output()
        .expect("sflab runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tabulated(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).expect("schedule file");
    match serde_json::from_str::<ScheduleConfig>(&text).expect("schedule json") {
        ScheduleConfig::Tabulated { values } => values,
        other => panic!("not tabulated: {other:?}"),
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn a_tiny_refine_run_writes_everything_and_matches_sflab_refine() {
    let out = dir("tiny");
    let args = RefineRunArgs {
        task: Task::MnistMlp,
        steps: Some(60),
        lr: None,
        seed: 3,
        eval_every: Some(20),
        smoothing: 0.1,
        data_dir: None,
        out: Some(out.clone()),
        quiet: true,
    };
    let o = run_with(&args).expect("refine-run");
    assert!(o.plot_error.is_none(), "{:?}", o.plot_error);
    for f in [
        "linear_decay.csv",
        "refined_l1.csv",
        "refined_l1.json",
        "refined_l2.json",
        "summary.md",
        "summary.json",
        "schedules.png",
        "schedules.svg",
        "curves.png",
        "curves.svg",
    ] {
        let meta = std::fs::metadata(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 0, "{f} is empty");
    }
    // Both runs evaluated at 20, 40, 60 with the task's default lr.
    assert_eq!(o.linear_decay.evals.len(), 3);
    assert_eq!(o.refined.evals.len(), 3);
    assert_eq!(
        o.summary.lr,
        TrainConfig::default_for(Task::MnistMlp).optimizer.lr()
    );
    // The rerun used the refined ℓ1 schedule, which is what `sflab refine` makes of the log.
    let l1 = tabulated(&out.join("refined_l1.json"));
    assert_eq!(l1.len(), 60);
    let again = out.join("again_l1.json");
    let log = out.join("linear_decay.csv");
    let (ok, stderr) = sflab(&[
        "refine",
        "--log",
        p(&log),
        "--norm",
        "l1",
        "--steps",
        "60",
        "-o",
        p(&again),
        "--no-plot",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(tabulated(&again), l1);
    let again2 = out.join("again_l2.json");
    let (ok, stderr) = sflab(&[
        "refine",
        "--log",
        p(&log),
        "--norm",
        "l2",
        "-o",
        p(&again2),
        "--no-plot",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(tabulated(&again2), tabulated(&out.join("refined_l2.json")));
    match &o.refined.config.optimizer {
        PresetConfig::AdamW {
            schedule: ScheduleConfig::Tabulated { values },
            ..
        } => assert_eq!(values, &l1),
        other => panic!("rerun optimizer {other:?}"),
    }
    // The summary states the warmup that emerged.
    let md = std::fs::read_to_string(out.join("summary.md")).expect("summary");
    let w = warmup_length(&l1);
    assert_eq!(o.summary.l1.warmup_steps, w);
    assert!(
        md.contains(&format!("ℓ1 {w} steps")),
        "summary does not state the ℓ1 warmup {w}:\n{md}"
    );
    assert!(md.contains("final eval loss"), "{md}");
    let expected = 100.0 * (o.summary.refined.eval_loss / o.summary.linear_decay.eval_loss - 1.0);
    assert!((o.summary.loss_change_percent - expected).abs() < 1e-9);
}

#[test]
fn train_logs_grad_norms_that_refine_reads_and_train_runs_the_result() {
    let out = dir("train");
    let run1 = out.join("run1");
    let (ok, stderr) = sflab(&[
        "train",
        "--task",
        "mnist_mlp",
        "--quick",
        "--steps",
        "30",
        "--eval-every",
        "10",
        "--optimizer",
        "adamw",
        "--quiet",
        "--out",
        p(&run1),
    ]);
    assert!(ok, "{stderr}");
    let csv = std::fs::read_to_string(run1.join("metrics.csv")).expect("metrics");
    let header = csv.lines().next().expect("header");
    assert!(header.contains(",grad_l1,grad_l2"), "{header}");
    let sched = out.join("refined.json");
    let (ok, stderr) = sflab(&[
        "refine",
        "--log",
        p(&run1.join("metrics.csv")),
        "--norm",
        "l1",
        "-o",
        p(&sched),
        "--no-plot",
    ]);
    assert!(ok, "{stderr}");
    // One value per step row: the evaluation rows are skipped.
    assert_eq!(tabulated(&sched).len(), 30);

    // `--schedule FILE` selects AdamW with that schedule; a horizon mismatch is a warning.
    let run2 = out.join("run2");
    let (ok, stderr) = sflab(&[
        "train",
        "--task",
        "mnist_mlp",
        "--quick",
        "--steps",
        "30",
        "--eval-every",
        "0",
        "--schedule",
        p(&sched),
        "--quiet",
        "--out",
        p(&run2),
    ]);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("horizon"), "{stderr}");
    let config: TrainConfig =
        serde_json::from_str(&std::fs::read_to_string(run2.join("config.json")).expect("config"))
            .expect("config json");
    match config.optimizer {
        PresetConfig::AdamW {
            config: adamw,
            schedule: ScheduleConfig::Tabulated { values },
        } => {
            assert_eq!(values, tabulated(&sched));
            assert_eq!(
                adamw.lr,
                TrainConfig::quick_for(Task::MnistMlp).optimizer.lr()
            );
            assert_eq!(adamw.weight_decay, 0.0);
        }
        other => panic!("{other:?}"),
    }
    let lrs: Vec<f64> = std::fs::read_to_string(run2.join("metrics.csv"))
        .expect("metrics")
        .lines()
        .filter(|l| l.starts_with("step,"))
        .map(|l| l.split(',').nth(5).expect("lr").parse().expect("number"))
        .collect();
    let lr = TrainConfig::quick_for(Task::MnistMlp).optimizer.lr();
    for (got, m) in lrs.iter().zip(tabulated(&sched)) {
        assert!((got - lr * m).abs() <= 1e-12 * lr, "{got} vs {}", lr * m);
    }

    let run3 = out.join("run3");
    let (ok, stderr) = sflab(&[
        "train",
        "--task",
        "mnist_mlp",
        "--quick",
        "--steps",
        "12",
        "--eval-every",
        "0",
        "--schedule",
        p(&sched),
        "--quiet",
        "--out",
        p(&run3),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("horizon of 30 updates, the run has 12"),
        "{stderr}"
    );
    // A Schedule-Free preset takes no schedule; a missing file is an error.
    let (ok, _) = sflab(&[
        "train",
        "--task",
        "mnist_mlp",
        "--steps",
        "5",
        "--optimizer",
        "adamw_schedule_free",
        "--schedule",
        p(&sched),
        "--quiet",
        "--out",
        p(&out.join("run4")),
    ]);
    assert!(!ok);
    let (ok, stderr) = sflab(&[
        "train",
        "--task",
        "mnist_mlp",
        "--steps",
        "5",
        "--schedule",
        "/nonexistent/s.json",
        "--quiet",
        "--out",
        p(&out.join("run5")),
    ]);
    assert!(!ok && stderr.contains("/nonexistent/s.json"), "{stderr}");
}

#[test]
fn pareto_runs_a_schedule_file_at_t_over_the_lr_grid() {
    use schedulefree_lab::pareto::{self, Method, ParetoArgs};
    let out = dir("pareto");
    // Linear decay (warmup 2 of 40) written out as a table: the custom runs must reproduce
    // the linear-decay runs at T exactly.
    let ld = ScheduleConfig::Linear {
        warmup: 2,
        total: 40,
        end: 0.0,
    }
    .build()
    .expect("schedule");
    let values: Vec<f64> = (0..40).map(|k| ld.value(k)).collect();
    let file = out.join("table.json");
    std::fs::write(
        &file,
        serde_json::to_string(&ScheduleConfig::Tabulated { values }).expect("json"),
    )
    .expect("write");
    let args = ParetoArgs {
        task: Some(Task::MnistMlp),
        steps: Some(40),
        budgets: Some(vec![1]),
        eval_every: Some(20),
        eval_batches: Some(2),
        batch_size: Some(16),
        lrs: Some(vec![1e-3, 4e-3]),
        betas: Some(vec![0.9]),
        jobs: Some(2),
        out: Some(out.join("run")),
        quiet: true,
        no_plots: true,
        schedule: Some(file.clone()),
        ..Default::default()
    };
    let o = pareto::run_with(&args).expect("protocol runs");
    let of = |m: Method| {
        let mut v: Vec<(f64, f64)> = o
            .records
            .iter()
            .filter(|r| r.spec.method == m)
            .map(|r| (r.spec.lr, r.final_loss()))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let custom = of(Method::Custom);
    assert_eq!(custom.len(), 2, "{:?}", o.records.len());
    assert!(
        o.records
            .iter()
            .filter(|r| r.spec.method == Method::Custom)
            .all(|r| r.spec.steps == 40)
    );
    assert_eq!(custom, of(Method::LinearDecay));
    let md = std::fs::read_to_string(&o.files.summary_md).expect("summary");
    assert!(md.contains("Custom schedule"), "{md}");
    assert!(md.contains("(+0.00 %)"), "{md}");
    let runs = std::fs::read_to_string(&o.files.runs).expect("runs.csv");
    assert!(runs.contains("custom"), "{runs}");
    // Without the flag nothing changes.
    let plain = pareto::ParetoConfig::resolve(&ParetoArgs {
        schedule: None,
        ..args.clone()
    })
    .expect("config");
    assert!(
        plain
            .grid_specs()
            .iter()
            .all(|s| s.method != Method::Custom)
    );
}
