//! Short training runs of every model: loss goes down, runs reproduce, `x` vs `y`
//! evaluation, divergence, metrics files, config parsing.

use std::path::PathBuf;

use clap::Parser;
use schedulefree::PresetConfig;
use schedulefree_lab::train::config::{adamw_linear_decay, sf_adamw};
use schedulefree_lab::train::{
    self, MemorySink, MetricsSink, RunResult, Task, TrainArgs, TrainConfig, open_sink,
};

/// A short run of `task`: `steps` steps of batch `batch`, evaluations every `steps / 2`, a
/// small evaluation set.
fn short(task: Task, steps: u64, batch: usize, optimizer: PresetConfig) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: batch,
        eval_every: steps / 2,
        eval_batches: Some(4),
        bn_recalibration: 4,
        optimizer,
        ..TrainConfig::default_for(task)
    }
}

fn run(config: &TrainConfig) -> RunResult {
    train::run(config, None, None).expect("run")
}

fn run_with_steps(config: &TrainConfig) -> (RunResult, MemorySink) {
    let mut sink = MemorySink::default();
    let r = train::run(config, None, Some(&mut sink as &mut dyn MetricsSink)).expect("run");
    (r, sink)
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Training loss over the last steps is clearly below the first steps'; the run is exactly
/// reproducible and another seed gives another run.
fn learns_and_reproduces(config: &TrainConfig) {
    let (r, sink) = run_with_steps(config);
    assert!(!r.diverged);
    assert_eq!(sink.steps.len() as u64, config.steps);
    assert_eq!(r.evals.len(), 2);
    assert_eq!(r.evals[1].step, config.steps);
    let losses: Vec<f64> = sink.steps.iter().map(|s| s.train_loss).collect();
    let (first, last) = (mean(&losses[..5]), mean(&losses[losses.len() - 5..]));
    assert!(
        last < 0.8 * first,
        "{}: training loss {first:.3} -> {last:.3}",
        config.task
    );
    assert!(r.evals[1].eval_loss < r.evals[0].eval_loss + 0.5);
    assert!((0.0..=1.0).contains(&r.evals[1].eval_accuracy));
    // Norms of every parameter, including the normalisation layers.
    let names: Vec<&str> = sink.steps[0]
        .params
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.contains("norms") || n.contains("ln_")),
        "{names:?}"
    );
    assert!(
        sink.steps[0]
            .params
            .iter()
            .all(|p| p.grad.is_finite() && p.weight > 0.0
                || p.name.ends_with("beta")
                || p.name.ends_with("bias"))
    );

    let again = run(config);
    assert_eq!(again.evals, r.evals, "{}: same seed, same run", config.task);
    let other = run(&TrainConfig {
        seed: config.seed + 1,
        ..config.clone()
    });
    assert_ne!(other.evals, r.evals, "{}: another seed", config.task);
}

#[test]
fn mlp_learns_and_reproduces() {
    learns_and_reproduces(&short(Task::MnistMlp, 60, 32, sf_adamw(2e-3, 5)));
}

#[test]
fn cnn_learns_and_reproduces() {
    learns_and_reproduces(&short(Task::MnistCnn, 40, 32, sf_adamw(4e-3, 4)));
}

#[test]
fn transformer_learns_and_reproduces() {
    learns_and_reproduces(&short(Task::TragediesTransformer, 40, 8, sf_adamw(1e-2, 4)));
}

#[test]
fn eval_point_x_versus_y() {
    for task in [Task::MnistMlp, Task::MnistCnn] {
        // Schedule-Free: x (the average) and y (the gradient point) differ.
        let sf = short(task, 30, 32, sf_adamw(4e-3, 3));
        let at_x = run(&sf);
        let at_y = run(&TrainConfig {
            eval_at_x: false,
            ..sf.clone()
        });
        assert_eq!(
            at_x.evals.iter().map(|e| e.train_loss).collect::<Vec<_>>(),
            at_y.evals.iter().map(|e| e.train_loss).collect::<Vec<_>>(),
            "{task}: evaluation must not change training"
        );
        assert_ne!(at_x.evals[1].eval_loss, at_y.evals[1].eval_loss, "{task}");
        // AdamW returns its last iterate: both evaluations are the same point.
        let adamw = short(task, 30, 32, adamw_linear_decay(2e-3, 3, 30));
        let at_x = run(&adamw);
        let at_y = run(&TrainConfig {
            eval_at_x: false,
            ..adamw.clone()
        });
        assert_eq!(at_x.evals, at_y.evals, "{task}");
    }
}

#[test]
fn batch_norm_recalibration_changes_the_evaluation_only() {
    let sf = short(Task::MnistCnn, 30, 32, sf_adamw(4e-3, 3));
    let recal = run(&sf);
    let plain = run(&TrainConfig {
        bn_recalibration: 0,
        ..sf.clone()
    });
    for (a, b) in recal.evals.iter().zip(&plain.evals) {
        assert_eq!(a.train_loss, b.train_loss);
        assert_ne!(a.eval_loss, b.eval_loss);
    }
}

#[test]
fn divergence_ends_the_run_without_error() {
    let mut c = short(Task::MnistMlp, 50, 32, sf_adamw(1e-3, 0));
    c.optimizer =
        serde_json::from_str(r#"{"method": "sgd", "config": {"lr": 1e30}}"#).expect("sgd preset");
    let r = run(&c);
    assert!(r.diverged);
    assert!(r.evals.len() < 2);
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sflab-train-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn metrics_files_are_written_and_parse() {
    let config = short(Task::MnistCnn, 10, 16, sf_adamw(4e-3, 2));
    let dir = out_dir("metrics");

    let csv_path = dir.join("m.csv");
    let mut sink = open_sink(&csv_path).expect("csv sink");
    let r = train::run(&config, None, Some(sink.as_mut())).expect("run");
    drop(sink);
    let mut reader = csv::Reader::from_path(&csv_path).expect("csv");
    let header = reader.headers().expect("header").clone();
    assert_eq!(&header[0], "event");
    let grads: Vec<&str> = header
        .iter()
        .filter(|h| h.starts_with("grad_norm:"))
        .collect();
    assert!(grads.contains(&"grad_norm:norms.0.gamma"), "{header:?}");
    assert!(grads.contains(&"grad_norm:convs.1.weight"), "{header:?}");
    assert_eq!(
        grads.len(),
        header
            .iter()
            .filter(|h| h.starts_with("weight_norm:"))
            .count()
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 10 + r.evals.len());
    let steps: Vec<&csv::StringRecord> = rows.iter().filter(|r| &r[0] == "step").collect();
    assert_eq!(steps.len(), 10);
    for (i, row) in steps.iter().enumerate() {
        assert_eq!(row[1].parse::<u64>().expect("step"), i as u64 + 1);
        for cell in [&row[2], &row[5], &row[6], &row[8]] {
            assert!(cell.parse::<f64>().expect("number").is_finite());
        }
    }
    let evals: Vec<&csv::StringRecord> = rows.iter().filter(|r| &r[0] == "eval").collect();
    assert_eq!(evals.len(), r.evals.len());
    assert_eq!(
        evals[0][3].parse::<f64>().expect("eval loss"),
        r.evals[0].eval_loss
    );

    let jsonl_path = dir.join("m.jsonl");
    let mut sink = open_sink(&jsonl_path).expect("jsonl sink");
    train::run(&config, None, Some(sink.as_mut())).expect("run");
    drop(sink);
    let text = std::fs::read_to_string(&jsonl_path).expect("jsonl");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 10 + r.evals.len());
    assert_eq!(lines[0]["event"], "step");
    assert_eq!(lines[0]["step"], 1);
    assert!(lines[0]["params"].as_array().expect("params").len() >= 8);
    let last = lines.last().expect("eval line");
    assert_eq!(last["event"], "eval");
    assert_eq!(
        last["eval_loss"].as_f64(),
        Some(r.evals.last().expect("eval").eval_loss)
    );

    assert!(open_sink(&dir.join("m.txt")).is_err());
}

#[test]
fn config_json_and_defaults() {
    for task in train::ALL_TASKS {
        for c in [TrainConfig::default_for(task), TrainConfig::quick_for(task)] {
            let json = serde_json::to_string(&c).expect("serialize");
            let back: TrainConfig = serde_json::from_str(&json).expect("round trip");
            assert_eq!(back, c);
            assert!(c.steps > 0 && c.batch_size > 0 && c.eval_at_x);
        }
    }
    let minimal: TrainConfig = serde_json::from_str(
        r#"{"task": "mnist_cnn", "optimizer": {"method": "adamw_schedule_free", "lr": 0.004},
            "steps": 10, "batch_size": 8, "seed": 1, "eval_every": 5}"#,
    )
    .expect("minimal config");
    assert!(minimal.eval_at_x);
    assert_eq!(minimal.bn_recalibration, 20);
    assert_eq!(
        (minimal.data_dir.clone(), minimal.eval_batches),
        (None, None)
    );
    assert!(
        serde_json::from_str::<TrainConfig>(
            r#"{"task": "mnist_cnn", "optimizer": {"method": "adamw"}, "steps": 1,
            "batch_size": 1, "seed": 0, "eval_every": 0, "lr": 1}"#
        )
        .is_err()
    );
    let zero = TrainConfig {
        steps: 0,
        ..minimal.clone()
    };
    assert!(train::run(&zero, None, None).is_err());
    let missing = TrainConfig {
        task: Task::FashionMlp,
        data_dir: Some(PathBuf::from("/nonexistent")),
        ..minimal
    };
    let err = train::run(&missing, None, None).expect_err("no Fashion-MNIST there");
    assert!(format!("{err:#}").contains("fashion-mnist"), "{err:#}");
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TrainArgs,
}

fn resolve(flags: &[&str]) -> TrainConfig {
    let mut argv = vec!["sflab-train"];
    argv.extend(flags);
    Cli::parse_from(argv).args.resolve().expect("resolve")
}

/// ScheduleFree+ runs from the command line with its defaults (no lr warmup: its Polyak step
/// sets the lr; the loss of each batch is passed to the step).
#[test]
fn schedule_free_plus_runs_from_the_command_line() {
    let c = resolve(&[
        "--task",
        "mnist_mlp",
        "--optimizer",
        "schedule_free_plus",
        "--steps",
        "60",
    ]);
    assert_eq!(
        c.optimizer,
        PresetConfig::ScheduleFreePlus(schedulefree::ScheduleFreePlus::default())
    );
    let (r, sink) = run_with_steps(&short(Task::MnistMlp, 60, 32, c.optimizer));
    assert!(!r.diverged);
    assert_eq!(sink.steps.len(), 60);
    // The Polyak step adapts: the effective lr differs between steps.
    let lrs: Vec<f64> = sink.steps.iter().map(|s| s.lr).collect();
    assert!(lrs.iter().any(|&l| l != lrs[0]), "{lrs:?}");
    assert!(r.last().is_some_and(|e| e.eval_loss.is_finite()));
}

#[test]
fn command_line_flags() {
    let c = resolve(&[
        "--task",
        "mnist_mlp",
        "--steps",
        "400",
        "--lr",
        "0.01",
        "--eval-at-y",
    ]);
    assert_eq!(c.steps, 400);
    assert!(!c.eval_at_x);
    assert_eq!(c.optimizer, sf_adamw(0.01, 20));

    let c = resolve(&[
        "--task",
        "mnist_cnn",
        "--optimizer",
        "adamw",
        "--lr",
        "0.001",
        "--steps",
        "100",
    ]);
    assert_eq!(c.optimizer, adamw_linear_decay(0.001, 5, 100));
    let c = resolve(&[
        "--optimizer",
        "sgd",
        "--schedule",
        "cosine",
        "--warmup",
        "0",
        "--steps",
        "10",
    ]);
    let json = serde_json::to_value(&c.optimizer).expect("json");
    assert_eq!(json["schedule"]["kind"], "cosine");
    assert_eq!(json["schedule"]["total"], 10);

    let dir = out_dir("cli");
    let file = dir.join("config.json");
    let base = short(Task::MnistCnn, 30, 32, adamw_linear_decay(1e-3, 3, 30));
    std::fs::write(&file, serde_json::to_string(&base).expect("json")).expect("write");
    let f = file.to_str().expect("utf-8 path");
    assert_eq!(resolve(&["--config", f]), base);
    let c = resolve(&["--config", f, "--seed", "7", "--lr", "0.5"]);
    assert_eq!(c.seed, 7);
    assert_eq!(c.optimizer, adamw_linear_decay(0.5, 3, 30));
    assert!(
        Cli::parse_from([
            "x",
            "--optimizer",
            "adamw_schedule_free",
            "--schedule",
            "linear"
        ])
        .args
        .resolve()
        .is_err()
    );
    assert!(
        Cli::parse_from(["x", "--optimizer", "nope"])
            .args
            .resolve()
            .is_err()
    );
}

/// Prints the wall time and steps/s of every task's quick run (no metrics sink, as in sweeps).
/// `cargo test --release -p schedulefree-lab --test train -- --ignored --nocapture`
#[test]
#[ignore = "timing report, not a check"]
fn measure_steps_per_second() {
    for task in train::ALL_TASKS {
        let c = TrainConfig::quick_for(task);
        match train::run(&c, None, None) {
            Ok(r) => println!(
                "{task}: {} steps x batch {} in {:.1} s = {:.1} steps/s, final eval loss {:.4} acc {:.2}%",
                c.steps,
                c.batch_size,
                r.seconds,
                r.steps_per_second,
                r.evals.last().map_or(f64::NAN, |e| e.eval_loss),
                100.0 * r.evals.last().map_or(f64::NAN, |e| e.eval_accuracy)
            ),
            Err(e) => println!("{task}: skipped ({e:#})"),
        }
    }
}
