//! `sflab pareto`: the report on hand-made runs (selection, relative gaps, β sweep, fit) and a
//! tiny end-to-end protocol on MNIST.

use std::path::PathBuf;

use schedulefree_lab::pareto::config::ParetoConfig;
use schedulefree_lab::pareto::markdown::markdown;
use schedulefree_lab::pareto::method::{SF_BETA, SF_PLUS_LR};
use schedulefree_lab::pareto::{self, EvalPoint, Method, ParetoArgs, Report, RunRecord, RunSpec};
use schedulefree_lab::train::Task;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sflab-pareto-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// T = 100, budgets 50 and 100, evaluations every 25, lrs 0.1 and 0.2, β 0.5 and 0.9.
fn small_config() -> ParetoConfig {
    ParetoConfig::resolve(&ParetoArgs {
        task: Some(Task::MnistMlp),
        steps: Some(100),
        budgets: Some(vec![2, 1]),
        eval_every: Some(25),
        lrs: Some(vec![0.2, 0.1]),
        betas: Some(vec![0.9, 0.5]),
        quiet: true,
        out: Some(out_dir("unused")),
        ..Default::default()
    })
    .expect("valid protocol")
}

/// A run whose held-out loss at step `s` is `loss(s)`.
fn record(method: Method, steps: u64, lr: f64, beta: f64, loss: impl Fn(u64) -> f64) -> RunRecord {
    RunRecord {
        spec: RunSpec {
            method,
            steps,
            lr,
            beta,
            seed: 0,
            beta_sweep: method == Method::ScheduleFree && beta != SF_BETA,
        },
        evals: (1..=steps / 25)
            .map(|k| {
                let step = 25 * k;
                EvalPoint {
                    step,
                    train_loss: loss(step) + 0.1,
                    eval_loss: loss(step),
                    eval_accuracy: 1.0 - loss(step) / 4.0,
                }
            })
            .collect(),
        diverged: false,
        seconds: 1.0,
    }
}

fn constant(v: f64) -> impl Fn(u64) -> f64 {
    move |_| v
}

/// Hand-made runs: the best lr of cosine differs between budgets, linear decay wins at T,
/// SF's lr chosen at T (0.2) is not its best at T/2.
fn hand_made() -> Vec<RunRecord> {
    vec![
        record(Method::Cosine, 50, 0.1, SF_BETA, constant(1.0)),
        record(Method::Cosine, 50, 0.2, SF_BETA, constant(0.8)),
        record(Method::Cosine, 100, 0.1, SF_BETA, constant(0.6)),
        record(Method::Cosine, 100, 0.2, SF_BETA, constant(0.7)),
        record(Method::LinearDecay, 50, 0.1, SF_BETA, constant(0.9)),
        record(Method::LinearDecay, 50, 0.2, SF_BETA, constant(0.85)),
        record(Method::LinearDecay, 100, 0.1, SF_BETA, constant(0.5)),
        record(Method::LinearDecay, 100, 0.2, SF_BETA, constant(0.55)),
        // SF at lr 0.1: 0.7 at step 50, 0.52 at 100; at lr 0.2: 0.88 at 50, 0.45 at 100.
        record(Method::ScheduleFree, 100, 0.1, SF_BETA, |s| {
            if s <= 50 { 0.7 } else { 0.52 }
        }),
        record(Method::ScheduleFree, 100, 0.2, SF_BETA, |s| {
            if s <= 50 { 0.88 } else { 0.45 }
        }),
        // β sweep at lr 0.2: β = 0.5 is better at T/2, worse at T.
        record(Method::ScheduleFree, 100, 0.2, 0.5, |s| {
            if s <= 50 { 0.8 } else { 0.6 }
        }),
        // ScheduleFree+, untuned (lr multiplier 1): 0.96 at T/2, 0.55 at T.
        record(Method::ScheduleFreePlus, 100, SF_PLUS_LR, SF_BETA, |s| {
            if s <= 50 { 0.96 } else { 0.55 }
        }),
    ]
}

#[test]
fn envelope_picks_the_best_lr_per_budget_and_relative_gaps_are_exact() {
    let cfg = small_config();
    assert_eq!(cfg.budgets, vec![50, 100]);
    let r = Report::build(&cfg, &hand_made());
    assert_eq!(r.sf_lr, Some(0.2), "SF's lr is chosen at T");
    assert_eq!(r.pareto.len(), 2);

    let half = &r.pareto[0];
    assert_eq!(half.budget, 50);
    assert_eq!(half.cosine.map(|c| (c.lr, c.loss.mean)), Some((0.2, 0.8)));
    assert_eq!(
        half.linear_decay.map(|c| (c.lr, c.loss.mean)),
        Some((0.2, 0.85))
    );
    let (m, best) = half.best_schedule().expect("schedules ran");
    assert_eq!((m, best.loss.mean), (Method::Cosine, 0.8));
    assert_eq!(
        half.schedule_free.map(|c| (c.lr, c.loss.mean)),
        Some((0.2, 0.88))
    );
    assert_eq!(
        half.schedule_free_best.map(|c| (c.lr, c.loss.mean)),
        Some((0.1, 0.7))
    );
    let rel = half.relative_pct().expect("finite");
    assert!((rel - 100.0 * (0.88 - 0.8) / 0.8).abs() < 1e-9, "{rel}");
    assert_eq!(
        half.schedule_free_plus.map(|c| (c.lr, c.loss.mean)),
        Some((SF_PLUS_LR, 0.96))
    );
    let rel_plus = half.relative_plus_pct().expect("finite");
    assert!(
        (rel_plus - 100.0 * (0.96 - 0.8) / 0.8).abs() < 1e-9,
        "{rel_plus}"
    );
    let rel_best = half.relative_best_pct().expect("finite");
    assert!(
        (rel_best - 100.0 * (0.7 - 0.8) / 0.8).abs() < 1e-9,
        "{rel_best}"
    );

    let full = &r.pareto[1];
    assert_eq!(full.cosine.map(|c| c.lr), Some(0.1));
    assert_eq!(
        full.linear_decay.map(|c| (c.lr, c.loss.mean)),
        Some((0.1, 0.5))
    );
    assert_eq!(full.best_schedule().map(|b| b.0), Some(Method::LinearDecay));
    let rel = full.relative_pct().expect("finite");
    assert!((rel - 100.0 * (0.45 - 0.5) / 0.5).abs() < 1e-9, "{rel}");

    // lr sweep: every method at every budget, both lrs.
    for b in [50, 100] {
        for m in Method::ALL {
            let s = r.lr_sweep(m, b).expect("sweep");
            assert_eq!(
                s.cells.iter().map(|c| c.lr).collect::<Vec<_>>(),
                vec![0.1, 0.2]
            );
        }
    }
    // Within 5 % of the best: only 0.1 for cosine at T (0.7 is 17 % above 0.6).
    assert_eq!(
        r.lr_sweep(Method::Cosine, 100).map(|s| s.near_optimal()),
        Some(vec![0.1])
    );

    // β sweep at SF's lr: β = 0.5 best at T/2, β = 0.9 at T.
    assert_eq!(r.beta_lr, Some(0.2));
    assert_eq!(
        r.betas.iter().map(|b| b.best_beta()).collect::<Vec<_>>(),
        vec![Some(0.5), Some(0.9)]
    );
    assert_eq!(r.beta_consistent(), Some(false));
    assert_eq!(r.beta_curves.len(), 2);

    // Curves: best-lr schedule runs per budget, then SF's, then SF+'s.
    assert_eq!(r.curves.len(), 6);
    assert_eq!(
        r.curves[4..]
            .iter()
            .map(|c| (c.method, c.lr))
            .collect::<Vec<_>>(),
        vec![
            (Method::ScheduleFree, 0.2),
            (Method::ScheduleFreePlus, SF_PLUS_LR)
        ]
    );
    assert_eq!(
        r.pareto[1].schedule_free_plus.map(|c| c.loss.mean),
        Some(0.55)
    );
}

#[test]
fn diverged_runs_never_win_and_the_summary_states_the_numbers() {
    let cfg = small_config();
    let mut runs = hand_made();
    // Cosine at lr 0.2 on budget 50 diverges after its first evaluation.
    let i = runs
        .iter()
        .position(|r| r.spec.method == Method::Cosine && r.spec.steps == 50 && r.spec.lr == 0.2)
        .expect("present");
    runs[i].evals.truncate(1);
    runs[i].diverged = true;
    let r = Report::build(&cfg, &runs);
    assert_eq!(
        r.pareto[0].cosine.map(|c| (c.lr, c.loss.mean)),
        Some((0.1, 1.0))
    );
    assert_eq!(
        r.pareto[0].best_schedule().map(|b| b.0),
        Some(Method::LinearDecay)
    );
    assert_eq!(r.diverged, 1);

    let md = markdown(&cfg, &r, 12.0);
    assert!(md.contains("## Pareto table"), "{md}");
    assert!(md.contains("| T/2 (50) |"), "{md}");
    // SF (0.88) vs best schedule at T/2 (LD 0.85): +3.53 %.
    let want = format!("{:+.2}%", 100.0 * (0.88 - 0.85) / 0.85);
    assert!(md.contains(&want), "missing {want} in\n{md}");
    assert!(md.contains("diverged"), "{md}");
    assert!(md.contains("The best β differs between budgets."), "{md}");
    assert!(md.contains("## 1/√T check"), "{md}");
}

#[test]
fn power_law_fit_reads_the_schedule_free_curve() {
    let cfg = small_config();
    // An exact power law on SF's curve at the chosen lr: L = 0.3 + 2·t^(−0.5).
    let runs = vec![
        record(Method::ScheduleFree, 100, 0.1, SF_BETA, |s| {
            0.3 + 2.0 * (s as f64).powf(-0.5)
        }),
        record(Method::ScheduleFree, 100, 0.2, SF_BETA, constant(5.0)),
    ];
    let r = Report::build(&cfg, &runs);
    assert_eq!(r.sf_lr, Some(0.1));
    assert_eq!((r.fit.from, r.fit.to), (50, 100));
    // Only t = 50, 75, 100 are in the window: too few for a 3-parameter fit.
    assert!(r.fit.free.is_err());
    let zero = r.fit.zero_floor.as_ref().expect("two-parameter fit");
    assert!(zero.exponent > 0.0 && zero.points == 3);

    // With evaluations every 10 updates from T/4 on, the fit recovers the exponent.
    let cfg = ParetoConfig::resolve(&ParetoArgs {
        steps: Some(200),
        budgets: Some(vec![4, 1]),
        eval_every: Some(10),
        lrs: Some(vec![0.1]),
        quiet: true,
        ..Default::default()
    })
    .expect("valid");
    let mut run = record(Method::ScheduleFree, 200, 0.1, SF_BETA, constant(0.0));
    run.evals = (1..=20)
        .map(|k| {
            let t = 10 * k;
            let l = 0.3 + 2.0 * (t as f64).powf(-0.5);
            EvalPoint {
                step: t,
                train_loss: l,
                eval_loss: l,
                eval_accuracy: 0.5,
            }
        })
        .collect();
    let r = Report::build(&cfg, &[run]);
    let fit = r.fit.free.as_ref().expect("fits");
    assert!((fit.exponent - 0.5).abs() < 1e-6, "{fit:?}");
    assert!((fit.l_inf - 0.3).abs() < 1e-6, "{fit:?}");
    assert_eq!(fit.points, 16, "t = 50..200");
}

#[test]
fn protocol_validation() {
    let bad = |args: ParetoArgs| {
        ParetoConfig::resolve(&ParetoArgs {
            quiet: true,
            ..args
        })
        .is_err()
    };
    assert!(bad(ParetoArgs {
        steps: Some(100),
        budgets: Some(vec![3]),
        ..Default::default()
    }));
    assert!(bad(ParetoArgs {
        steps: Some(100),
        eval_every: Some(30),
        ..Default::default()
    }));
    assert!(bad(ParetoArgs {
        lrs: Some(vec![0.0]),
        ..Default::default()
    }));
    assert!(bad(ParetoArgs {
        betas: Some(vec![1.5]),
        ..Default::default()
    }));
    assert!(bad(ParetoArgs {
        jobs: Some(0),
        ..Default::default()
    }));
    let cfg = ParetoConfig::resolve(&ParetoArgs::default()).expect("defaults are valid");
    assert_eq!(
        cfg.budgets,
        vec![cfg.steps / 8, cfg.steps / 4, cfg.steps / 2, cfg.steps]
    );
    assert_eq!(cfg.task, Task::FashionMlp);
    assert_eq!(
        cfg.eval_every,
        cfg.steps / 32,
        "four evaluations per smallest budget"
    );
    assert_eq!(cfg.out, PathBuf::from("sflab-out/pareto/fashion_mlp"));
    let text = ParetoConfig::resolve(&ParetoArgs {
        task: Some(Task::TragediesTransformer),
        ..Default::default()
    })
    .expect("valid");
    assert_eq!(text.eval_every, text.steps / 16);
    // Schedule runs warm up over 5 % of their own length, SF over 5 % of T.
    let sched = cfg
        .grid_specs()
        .into_iter()
        .find(|s| s.method == Method::Cosine && s.steps == cfg.steps / 8);
    let tc = cfg.train_config(&sched.expect("a T/8 cosine run"));
    match tc.optimizer {
        schedulefree::PresetConfig::AdamW {
            schedule: schedulefree::schedule::ScheduleConfig::Cosine { warmup, total, .. },
            ..
        } => {
            assert_eq!(
                (warmup, total),
                (cfg.warmup_steps(cfg.steps / 8), cfg.steps / 8)
            );
        }
        other => panic!("{other:?}"),
    }
    let full = ParetoConfig::resolve(&ParetoArgs {
        full: true,
        ..Default::default()
    })
    .expect("valid");
    assert!(full.steps > cfg.steps && full.seeds > 1 && full.lrs.len() > cfg.lrs.len());
}

#[test]
fn tiny_protocol_end_to_end_writes_every_output() {
    let out = out_dir("e2e");
    let args = ParetoArgs {
        task: Some(Task::MnistMlp),
        steps: Some(40),
        budgets: Some(vec![2, 1]),
        eval_every: Some(10),
        eval_batches: Some(2),
        batch_size: Some(16),
        lrs: Some(vec![1e-3, 4e-3]),
        betas: Some(vec![0.5, 0.9]),
        jobs: Some(2),
        out: Some(out.clone()),
        quiet: true,
        ..Default::default()
    };
    let o = pareto::run_with(&args).expect("protocol runs");
    assert_eq!(o.plot_error, None, "plots must be drawn");
    // SF: 2 lrs at T; SF+: one run at T; schedules: 2 methods × 2 budgets × 2 lrs; β sweep:
    // β = 0.5 at SF's lr.
    assert_eq!(o.records.len(), 2 + 1 + 8 + 1);
    let f = &o.files;
    for p in [&f.runs, &f.curves, &f.summary_md, &f.config] {
        assert!(p.starts_with(&out), "{}", p.display());
        assert!(
            std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false),
            "{} missing",
            p.display()
        );
    }
    let names: Vec<String> = f
        .plots
        .iter()
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    for n in [
        "pareto.png",
        "pareto.svg",
        "lr_sweep.png",
        "lr_sweep.svg",
        "beta_sweep.png",
        "beta_sweep.svg",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} not drawn: {names:?}");
    }
    for p in &f.plots {
        let bytes = std::fs::read(p).expect("plot readable");
        if p.extension().is_some_and(|e| e == "png") {
            assert!(bytes.starts_with(b"\x89PNG"), "{}", p.display());
        } else {
            assert!(
                String::from_utf8_lossy(&bytes).contains("<svg"),
                "{}",
                p.display()
            );
        }
    }
    let runs = std::fs::read_to_string(&f.runs).expect("runs.csv");
    assert!(runs.starts_with("method,budget,lr,beta,seed,beta_sweep,final_eval_loss"));
    assert_eq!(runs.lines().count(), 1 + 12);
    // Every run is evaluated at every multiple of 10 up to its length: SF and SF+ 4 × 4,
    // schedules 2 × 4 (budget 20) + 4 × 4 (budget 40).
    let curves = std::fs::read_to_string(&f.curves).expect("curves.csv");
    assert_eq!(curves.lines().count(), 1 + 4 * 4 + 4 * 2 + 4 * 4);

    // Every final loss is a real held-out loss (10 classes: near ln 10 at the start).
    for r in &o.records {
        assert!(!r.diverged, "{:?}", r.spec);
        let l = r.final_loss();
        // ScheduleFree+ runs untuned: only finite (its Polyak step may overshoot here).
        let bound = if r.spec.method == Method::ScheduleFreePlus {
            f64::INFINITY
        } else {
            3.0
        };
        assert!(l.is_finite() && l > 0.0 && l < bound, "{:?}: {l}", r.spec);
        assert_eq!(r.evals.last().map(|e| e.step), Some(r.spec.steps));
    }
    let md = std::fs::read_to_string(&f.summary_md).expect("summary");
    assert_eq!(md, o.markdown);
    assert!(
        md.contains("| T/2 (20) |") && md.contains("| T (40) |"),
        "{md}"
    );
    for row in &o.report.pareto {
        assert!(row.relative_pct().is_some(), "{row:?}");
        assert!(
            md.contains(&format!("{:+.2}%", row.relative_pct().unwrap_or_default())),
            "{md}"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
