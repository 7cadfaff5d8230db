//! `sflab norms` in quick mode (files, tables, the steady state of SGD, projection and
//! corrected decay on a real model), its analysis on a simulated scale-invariant walk, and the
//! norm diagnostics of `sflab train`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::Parser;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schedulefree::PresetConfig;
use schedulefree_lab::norms::augment::shift;
use schedulefree_lab::norms::magnitude::status;
use schedulefree_lab::norms::trace::{LayerPoint, TracePoint};
use schedulefree_lab::norms::{
    self, DecayVariant, Experiment, LearnerKind, NormsArgs, NormsConfig, Outcome, RunSpec, Shape,
    Status, Trace,
};
use schedulefree_lab::train::config::adamw_linear_decay;
use schedulefree_lab::train::metrics::DiagnosticsLevel;
use schedulefree_lab::train::{self, MemorySink, MetricsSink, Task, TrainArgs, TrainConfig};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sflab-norms-test-{}-{name}", std::process::id()))
}

fn quick_args(out: PathBuf) -> NormsArgs {
    NormsArgs {
        quick: true,
        quiet: true,
        ..NormsArgs::new(out)
    }
}

/// The quick protocol, run once for every test that reads it.
fn quick() -> &'static Outcome {
    static OUTCOME: OnceLock<Outcome> = OnceLock::new();
    OUTCOME.get_or_init(|| norms::run_with(&quick_args(temp("quick"))).expect("quick protocol"))
}

fn finite_positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

#[test]
fn quick_protocol_writes_every_output() {
    let o = quick();
    let out = &o.config.out;
    for f in [
        "summary.md",
        "steady.csv",
        "end.csv",
        "magnitude.csv",
        "config.json",
        "steady.png",
        "end_linear.png",
        "magnitude_polyak.png",
        "magnitude_adagrad_norm.png",
        "magnitude_cocob.png",
        "magnitude_prodigy.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
        assert!(o.files.contains(&out.join(f)), "{f} not listed");
    }
    assert!(o.plot_error.is_none(), "{:?}", o.plot_error);
    let runs: Vec<_> = std::fs::read_dir(out.join("runs")).expect("runs").collect();
    assert_eq!(runs.len(), o.traces.len());
    assert_eq!(o.traces.len(), 3 + 6 + 16);
    let md = std::fs::read_to_string(out.join("summary.md")).expect("summary");
    assert_eq!(md, o.markdown);
    for h in [
        "## 1. Steady state",
        "## 2. End of training",
        "## 3. Magnitude",
    ] {
        assert!(md.contains(h), "{h}");
    }
    // One table row per run, plus header and separator.
    let table_rows = md.lines().filter(|l| l.starts_with("| ")).count();
    assert_eq!(table_rows, o.traces.len() + 3 * 2);
}

#[test]
fn quick_tables_have_the_expected_rows() {
    let o = quick();
    let steady: Vec<&str> = o.steady.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(steady, ["SGD", "AdamW(β1=0)", "AdamW"]);
    for r in &o.steady {
        assert!(!r.diverged, "{r:?}");
        assert!(
            finite_positive(r.measured) && finite_positive(r.predicted),
            "{r:?}"
        );
        assert!(r.relaxation_steps <= 0.2 * r.steps as f64, "{r:?}");
    }
    let end: Vec<(&str, &str)> = o
        .end
        .iter()
        .map(|r| (r.schedule.as_str(), r.method.as_str()))
        .collect();
    assert_eq!(
        end,
        [
            ("linear", "AdamW"),
            ("linear", "AdamC"),
            ("linear", "Adam+proj"),
            ("linear", "SGD"),
            ("linear", "SGDC"),
            ("linear", "SGD+proj")
        ]
    );
    for r in &o.end {
        assert!(!r.diverged, "{r:?}");
        for v in [
            r.grad_ratio,
            r.weight_ratio,
            r.unit_grad_ratio,
            r.train_loss,
            r.eval_loss,
        ] {
            assert!(finite_positive(v), "{r:?}");
        }
    }
    assert_eq!(o.magnitude.len(), 16);
    for (i, r) in o.magnitude.iter().enumerate() {
        assert_eq!(r.learner, LearnerKind::MAGNITUDE[i / 4].label());
        assert_eq!(r.decay, DecayVariant::ALL[i % 4].label());
        assert_eq!(r.weight_decay == 0.0, i % 4 == 0, "{r:?}");
        if r.status != Status::Diverged {
            assert!(
                finite_positive(r.mean_lr) && finite_positive(r.mean_lr_factor),
                "{r:?}"
            );
            assert!(
                finite_positive(r.weight_first) && r.loss_last.is_finite(),
                "{r:?}"
            );
        }
    }
    // COCOB's step factor is 1, the others' are adaptive.
    assert!(o.magnitude[8..12].iter().all(|r| r.mean_lr_factor == 1.0));
    assert!(o.magnitude[4..8].iter().all(|r| r.mean_lr_factor < 1.0));
}

#[test]
fn quick_sgd_steady_state_matches_the_prediction() {
    // ALGORITHMS.md §10.2 on a real LayerNorm MLP: ‖g‖/‖w‖ → sqrt(2λ/γ − λ²).
    let r = &quick().steady[0];
    assert_eq!(r.method, "SGD");
    assert!(
        r.rel_error.abs() < 0.10 && r.worst_layer_error < 0.15,
        "measured {} predicted {} (layers {})",
        r.measured,
        r.predicted,
        r.worst_layer_error
    );
    let expected = (2.0 * r.weight_decay / r.lr - r.weight_decay.powi(2)).sqrt();
    assert!(
        (r.predicted / expected - 1.0).abs() < 1e-6,
        "{} vs {expected}",
        r.predicted
    );
}

#[test]
fn quick_adam_steady_state_needs_uncorrelated_steps() {
    // §10.3 with β1 = 0: ‖w‖ → γ·‖u‖/sqrt(2κ − κ²). With momentum the measured ‖u‖ of the
    // smoothed direction under-predicts the norm (steady.rs docs), by far more than the noise.
    let o = quick();
    let plain = &o.steady[1];
    assert_eq!(plain.method, "AdamW(β1=0)");
    assert!(plain.rel_error.abs() < 0.15, "{plain:?}");
    let momentum = &o.steady[2];
    assert!(momentum.rel_error > 1.0, "{momentum:?}");
    let corrected = momentum.measured / momentum.predicted_momentum - 1.0;
    assert!(corrected.abs() < 0.3, "{momentum:?}");
}

#[test]
fn quick_projection_holds_the_weight_norm() {
    let o = quick();
    for t in o
        .traces
        .iter()
        .filter(|t| t.spec.decay == DecayVariant::Projected)
    {
        let first = t.points[0].combined().expect("diagnostics").weight;
        for p in &t.points {
            let w = p.combined().expect("diagnostics").weight;
            assert!(
                (w / first - 1.0).abs() < 1e-4,
                "{}: step {} ‖w‖ {w} vs {first}",
                t.spec,
                p.step
            );
        }
    }
}

#[test]
fn quick_corrected_decay_shrinks_normalized_weights_less() {
    // §10.4: under a decaying schedule standard decay lets ‖w‖ fall with γ_t, corrected
    // decay keeps its target.
    let o = quick();
    let row = |m: &str| o.end.iter().find(|r| r.method == m).expect(m);
    assert!(row("AdamW").weight_ratio < row("AdamC").weight_ratio);
    assert!(row("SGD").weight_ratio < row("SGDC").weight_ratio);
    assert!(
        (row("AdamC").weight_ratio - 1.0).abs() < 0.1,
        "{:?}",
        row("AdamC")
    );
}

#[test]
fn quick_run_csv_has_a_row_per_step() {
    let o = quick();
    let t = &o.traces[0];
    let path = o
        .config
        .out
        .join("runs")
        .join(format!("{}.csv", t.spec.id()));
    let mut reader = csv::Reader::from_path(&path).expect("csv");
    let header = reader.headers().expect("header").clone();
    for col in [
        "step",
        "grad_norm",
        "weight_norm",
        "grad_norm:hidden.0.weight",
        "weight_norm:hidden.1.weight",
        "eval_loss",
    ] {
        assert!(header.iter().any(|h| h == col), "{col}: {header:?}");
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len() as u64, t.spec.steps);
    let evals = rows
        .iter()
        .filter(|r| !r[header.len() - 2].is_empty())
        .count();
    assert_eq!(evals, t.evals.len());
    assert_eq!(t.layers, ["hidden.0.weight", "hidden.1.weight"]);
}

#[test]
fn steady_runs_are_deterministic() {
    let args = |name| NormsArgs {
        only: vec![Experiment::Steady],
        ..quick_args(temp(name))
    };
    let a = norms::run_with(&args("det-a")).expect("first");
    let b = norms::run_with(&args("det-b")).expect("second");
    assert_eq!(a.traces.len(), 3);
    for (x, y) in a.traces.iter().zip(&b.traces) {
        assert_eq!(x.points, y.points, "{}", x.spec);
        assert_eq!(x.evals, y.evals, "{}", x.spec);
    }
    // Debug text, so that NaN cells compare equal.
    assert_eq!(format!("{:?}", a.steady), format!("{:?}", b.steady));
    assert!(a.end.is_empty() && a.magnitude.is_empty());
    // --resume reads the finished runs back (wall times included: nothing was retrained).
    let c = norms::run_with(&NormsArgs {
        resume: true,
        ..args("det-a")
    })
    .expect("resumed");
    assert_eq!(format!("{:?}", c.traces), format!("{:?}", a.traces));
    // A changed protocol (another seed) trains again.
    let d = norms::run_with(&NormsArgs {
        resume: true,
        seed: 1,
        ..args("det-a")
    })
    .expect("other seed");
    assert_ne!(d.traces[0].points, a.traces[0].points);
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    norms: NormsArgs,
}

#[derive(Parser)]
struct TrainCli {
    #[command(flatten)]
    args: TrainArgs,
}

fn train_args(argv: impl IntoIterator<Item = String>) -> TrainArgs {
    TrainCli::try_parse_from(argv).expect("parse").args
}

#[test]
fn arguments_select_experiments_in_order() {
    let cli = Cli::try_parse_from([
        "norms",
        "--only",
        "magnitude",
        "--only",
        "steady",
        "--quick",
    ])
    .expect("parse");
    let c = NormsConfig::resolve(&cli.norms).expect("resolve");
    assert_eq!(c.experiments, [Experiment::Steady, Experiment::Magnitude]);
    assert!(c.quick);
    assert_eq!(c.specs().len(), 3 + 16);
    assert!(Cli::try_parse_from(["norms", "--only", "nothing"]).is_err());
    let zero = Cli::try_parse_from(["norms", "--jobs", "0"]).expect("parse");
    assert!(NormsConfig::resolve(&zero.norms).is_err());
    let d = NormsConfig::resolve(&Cli::try_parse_from(["norms"]).expect("parse").norms)
        .expect("default");
    assert_eq!(d.experiments, Experiment::ALL);
    assert_eq!(d.out, Path::new(norms::DEFAULT_OUT));
    assert!(
        d.slow_steady_runs().is_empty(),
        "every default grid point relaxes within T/5"
    );
}

#[test]
fn presets_differ_only_in_the_decay() {
    let spec = |learner, decay| RunSpec {
        experiment: Experiment::End,
        learner,
        decay,
        shape: Shape::Linear,
        lr: 3e-3,
        weight_decay: 0.5,
        steps: 100,
        warmup: 2,
    };
    assert!(matches!(
        spec(LearnerKind::Adam, DecayVariant::Corrected).preset(),
        PresetConfig::AdamC { .. }
    ));
    assert!(matches!(
        spec(LearnerKind::Sgd, DecayVariant::Corrected).preset(),
        PresetConfig::SgdC { .. }
    ));
    let json = |p: PresetConfig| serde_json::to_value(p).expect("json");
    let w = json(spec(LearnerKind::Adam, DecayVariant::Standard).preset());
    let p = json(spec(LearnerKind::Adam, DecayVariant::Projected).preset());
    assert_eq!(w["learner"], p["learner"]);
    assert_eq!(w["decay"]["normalized"]["kind"], "standard");
    assert_eq!(p["decay"]["normalized"]["kind"], "projected");
    assert_eq!(p["decay"]["normalized"]["axis"], 1);
    assert_eq!(
        spec(LearnerKind::Adam, DecayVariant::Projected).method(),
        "Adam+proj"
    );
    assert!(
        (spec(LearnerKind::Sgd, DecayVariant::Standard).relaxation_steps() - 1.0 / 3e-3).abs()
            < 1e-9
    );
}

#[test]
fn stability_verdicts() {
    assert_eq!(status(false, &[2.3, 1.0, 0.5, 0.4]), Status::Ok);
    assert_eq!(status(false, &[2.3, 0.3, 0.5, 1.0]), Status::BlowUp);
    assert_eq!(status(false, &[2.3, 2.25, 2.2, 2.2]), Status::Stalled);
    assert_eq!(
        status(true, &[2.3, 0.3, f64::NAN, f64::NAN]),
        Status::Diverged
    );
    assert_eq!(status(false, &[f64::NAN; 3]), Status::Diverged);
    // Small losses that double are noise, not a blow-up.
    assert_eq!(status(false, &[2.3, 0.01, 0.02]), Status::Ok);
}

/// A trace of `w ← (1 − κ)·w − γ·u` on a scale-invariant toy (ALGORITHMS.md §12.3): `d = 50`,
/// `g` Gaussian of norm ≈ 1 projected orthogonal to `w`, divided by `‖w‖`; `u = g` (SGD) or
/// `u = g·‖w‖·scale` (a direction of fixed size, like Adam's).
fn simulated(learner: LearnerKind, lr: f64, wd: f64, steps: u64) -> Trace {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let d = 50;
    let mut w: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let kappa = lr * wd;
    let mut points = Vec::new();
    for step in 1..=steps {
        let wn = w.iter().map(|v| v * v).sum::<f64>().sqrt();
        let mut g: Vec<f64> = (0..d)
            .map(|_| {
                let (a, b): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
                (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos() / (d as f64).sqrt()
            })
            .collect();
        let along = g.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() / (wn * wn);
        g.iter_mut()
            .zip(&w)
            .for_each(|(a, b)| *a = (*a - along * b) / wn);
        let u: Vec<f64> = match learner {
            LearnerKind::Sgd => g.clone(),
            _ => g.iter().map(|v| v * wn * 3.0).collect(),
        };
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        points.push(TracePoint {
            step,
            train_loss: 1.0,
            lr,
            lr_factor: 1.0,
            skipped: false,
            layers: vec![LayerPoint {
                grad: norm(&g),
                weight: wn,
                update: norm(&u),
                kappa,
            }],
        });
        w.iter_mut()
            .zip(&u)
            .for_each(|(x, v)| *x = (1.0 - kappa) * *x - lr * v);
    }
    Trace {
        spec: RunSpec {
            experiment: Experiment::Steady,
            learner,
            decay: DecayVariant::Standard,
            shape: Shape::Constant,
            lr,
            weight_decay: wd,
            steps,
            warmup: 0,
        },
        layers: vec!["w".into()],
        points,
        evals: Vec::new(),
        diverged: false,
        seconds: 0.0,
    }
}

#[test]
fn steady_analysis_recovers_the_simulated_steady_state() {
    // §12.3.3: γ = 0.1, λ = 5e-3, 20 000 steps: ratio within 3 % of sqrt(2λ/γ − λ²).
    let r = norms::steady::analyse(&simulated(LearnerKind::Sgd, 0.1, 5e-3, 20_000));
    assert!((r.predicted - 0.3162).abs() < 1e-3, "{r:?}");
    assert!(r.rel_error.abs() < 0.03, "{r:?}");
    // A direction of fixed size: ‖w‖ → γ‖u‖/sqrt(2κ − κ²).
    let r = norms::steady::analyse(&simulated(LearnerKind::AdamNoMomentum, 0.01, 0.1, 20_000));
    assert_eq!(r.quantity, "weight_norm");
    assert!(r.rel_error.abs() < 0.03, "{r:?}");
    // Twice the decay: a different steady state, which the analysis sees.
    let r2 = norms::steady::analyse(&simulated(LearnerKind::AdamNoMomentum, 0.01, 0.2, 20_000));
    assert!(
        (r2.measured / r.measured - 0.5f64.sqrt()).abs() < 0.05,
        "{} vs {}",
        r2.measured,
        r.measured
    );
}

proptest! {
    #[test]
    fn shifts_compose_and_zero_is_identity(
        img in proptest::collection::vec(any::<u8>(), 36),
        (dx1, dy1, dx2, dy2) in (0i64..4, 0i64..4, 0i64..4, 0i64..4),
        neg in any::<bool>(),
    ) {
        let s = if neg { -1 } else { 1 };
        prop_assert_eq!(shift(&img, 6, 0, 0), img.clone());
        let twice = shift(&shift(&img, 6, s * dx1, s * dy1), 6, s * dx2, s * dy2);
        prop_assert_eq!(twice, shift(&img, 6, s * (dx1 + dx2), s * (dy1 + dy2)));
        let sum = |v: &[u8]| v.iter().map(|&p| u64::from(p)).sum::<u64>();
        prop_assert!(sum(&shift(&img, 6, dx1, -dy1)) <= sum(&img));
    }
}

#[test]
fn shift_moves_pixels() {
    let img: Vec<u8> = (0..9).collect();
    assert_eq!(shift(&img, 3, 1, 0), [0, 0, 1, 0, 3, 4, 0, 6, 7]);
    assert_eq!(shift(&img, 3, 0, -1), [3, 4, 5, 6, 7, 8, 0, 0, 0]);
    assert_eq!(shift(&img, 3, 3, 0), [0; 9]);
}

/// A short MLP run with AdamW, decay 0.1, evaluations at 5 and 10.
fn short_train() -> TrainConfig {
    TrainConfig {
        steps: 10,
        batch_size: 16,
        eval_every: 5,
        eval_batches: Some(2),
        optimizer: {
            let mut p = adamw_linear_decay(1e-3, 2, 10);
            p.set_weight_decay(0.1);
            p
        },
        ..TrainConfig::default_for(Task::MnistMlp)
    }
}

#[test]
fn train_diagnostics_at_evaluations() {
    let mut sink = MemorySink {
        diagnostics: DiagnosticsLevel::AtEvals,
        ..MemorySink::default()
    };
    train::run(
        &short_train(),
        None,
        Some(&mut sink as &mut dyn MetricsSink),
    )
    .expect("run");
    let with: Vec<u64> = sink
        .steps
        .iter()
        .filter(|s| !s.diagnostics.is_empty())
        .map(|s| s.step)
        .collect();
    assert_eq!(with, [1, 5, 10]);
    let d = &sink.steps[4].diagnostics;
    let names: Vec<&str> = d.iter().map(|l| l.name.as_str()).collect();
    assert!(
        names.contains(&"hidden.0.weight") && names.contains(&"head.bias"),
        "{names:?}"
    );
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted: {names:?}");
    for l in d {
        assert!(
            l.grad_norm.is_finite() && l.weight_norm > 0.0 && l.update_norm.is_finite(),
            "{l:?}"
        );
        assert!((l.ratio - l.grad_norm / l.weight_norm).abs() <= 1e-12 * l.ratio.abs().max(1.0));
        // Decoupled decay: κ = γλ, with γ the scheduled lr of the step.
        assert!(l.lr > 0.0 && l.lr <= 1e-3, "{l:?}");
        assert_eq!(l.lr, sink.steps[4].lr);
        assert!((l.kappa - l.lr * 0.1).abs() < 1e-12, "{l:?}");
        let expected = (2.0 * l.kappa - l.kappa * l.kappa).sqrt() / l.lr;
        assert!((l.predicted_ratio / expected - 1.0).abs() < 1e-9, "{l:?}");
        assert!(!l.normalized, "sflab train tags nothing");
    }
    assert!(sink.steps.iter().all(|s| s.lr_factor == 1.0));

    let mut off = MemorySink::default();
    train::run(&short_train(), None, Some(&mut off as &mut dyn MetricsSink)).expect("run");
    assert!(off.steps.iter().all(|s| s.diagnostics.is_empty()));
}

#[test]
fn train_cli_diagnostics_flag_writes_columns() {
    let dir = temp("train-cli");
    let args = train_args(
        [
            "train",
            "--task",
            "mnist_mlp",
            "--steps",
            "6",
            "--eval-every",
            "3",
            "--eval-batches",
            "1",
            "--batch-size",
            "8",
            "--quiet",
            "--diagnostics",
            "--weight-decay",
            "0.1",
            "--optimizer",
            "adamw",
            "--schedule",
            "constant",
            "--out",
        ]
        .into_iter()
        .map(String::from)
        .chain([dir.display().to_string()]),
    );
    assert!(args.diagnostics);
    train::cli::run_cli(&args).expect("run");
    let mut reader = csv::Reader::from_path(dir.join("metrics.csv")).expect("csv");
    let header = reader.headers().expect("header").clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}: {header:?}"))
    };
    let ratio = col("diag_ratio:hidden.0.weight");
    let predicted = col("diag_predicted_ratio:hidden.0.weight");
    let lr = col("diag_lr:hidden.0.weight");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let filled: Vec<&str> = rows
        .iter()
        .filter(|r| &r[0] == "step" && !r[ratio].is_empty())
        .map(|r| r.get(1).unwrap_or(""))
        .collect();
    assert_eq!(filled, ["1", "3", "6"]);
    for r in rows
        .iter()
        .filter(|r| &r[0] == "step" && !r[ratio].is_empty())
    {
        let v = |i: usize| r[i].parse::<f64>().expect("number");
        assert!(v(ratio) > 0.0 && v(lr) > 0.0 && v(predicted) > 0.0, "{r:?}");
    }

    // JSON Lines: the diagnostics array only where measured.
    let jsonl = dir.join("m.jsonl");
    let args = train_args(
        [
            "train",
            "--task",
            "mnist_mlp",
            "--steps",
            "4",
            "--eval-every",
            "2",
            "--eval-batches",
            "1",
            "--batch-size",
            "8",
            "--quiet",
            "--diagnostics",
            "--metrics",
        ]
        .into_iter()
        .map(String::from)
        .chain([
            jsonl.display().to_string(),
            "--out".into(),
            dir.display().to_string(),
        ]),
    );
    train::cli::run_cli(&args).expect("run");
    let text = std::fs::read_to_string(&jsonl).expect("jsonl");
    let steps: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .filter(|v: &serde_json::Value| v["event"] == "step")
        .collect();
    let measured: Vec<u64> = steps
        .iter()
        .filter(|v| v.get("diagnostics").is_some())
        .map(|v| v["step"].as_u64().expect("step"))
        .collect();
    assert_eq!(measured, [1, 2, 4]);
    assert!(steps[0]["diagnostics"][0]["grad_norm"].as_f64().is_some());
    assert_eq!(steps[0]["lr_factor"], 1.0);
}
