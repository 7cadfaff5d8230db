//! ALGORITHMS.md §12.4: golden values and properties of the magnitude-based learners.

use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::decay::DecayConfig;
use schedulefree::learner::{AdaGradNorm, Cocob, Polyak};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{DynOptimizer, Param, StepError};

const A: [f64; 3] = [1.0, -2.0, 0.5];

fn last_iterate(learner: LearnerConfig, lr: f64) -> Box<dyn DynOptimizer<f64>> {
    let c = Composed {
        learner,
        conversion: ConversionConfig::LastIterate,
        decay: DecayConfig::default(),
        schedule: ScheduleConfig::Constant {},
        lr,
        weight_decay: 0.0,
    };
    let mut o = c.build_dyn::<f64>().expect("valid");
    o.add_param_to(0, "w", &[3]).expect("new");
    o
}

fn quad(w: &[f64]) -> (f64, Vec<f64>) {
    let g: Vec<f64> = w.iter().zip(A).map(|(w, a)| w - a).collect();
    (0.5 * g.iter().map(|v| v * v).sum::<f64>(), g)
}

#[test]
fn polyak_step_is_one_half_on_the_quadratic() {
    let mut o = last_iterate(LearnerConfig::Polyak(Polyak::default()), 1.0);
    let mut w = vec![0.0; 3];
    let expected = [0.65625, 0.1640625, 0.041015625, 0.0102539062];
    for e in expected {
        let (f, g) = quad(&w);
        let info = o
            .step_with_loss(&mut [Param::new("w", &mut w, &g)], f)
            .expect("step");
        assert_eq!(info.group.lr_factor, 0.5);
        let (f1, _) = quad(&w);
        assert!((f1 - e).abs() < 1e-9, "{f1} vs {e}");
    }
    // Without the loss the step is refused and nothing moves.
    let before = w.clone();
    let (_, g) = quad(&w);
    assert!(matches!(
        o.step(&mut [Param::new("w", &mut w, &g)]),
        Err(StepError::LossRequired { .. })
    ));
    assert_eq!(w, before);
}

#[test]
fn polyak_zero_gradient_gives_zero_step_and_cap_holds() {
    let mut o = last_iterate(
        LearnerConfig::Polyak(Polyak {
            max_lr: 0.1,
            ..Default::default()
        }),
        1.0,
    );
    let mut w = A.to_vec();
    let g = vec![0.0; 3];
    let info = o
        .step_with_loss(&mut [Param::new("w", &mut w, &g)], 5.0)
        .expect("step");
    assert_eq!(info.group.lr_factor, 0.0);
    let mut w = vec![0.0; 3];
    let (_, g) = quad(&w);
    let info = o
        .step_with_loss(&mut [Param::new("w", &mut w, &g)], 1e6)
        .expect("step");
    assert_eq!(info.group.lr_factor, 0.1);
}

#[test]
fn adagrad_norm_golden_values() {
    let mut o = last_iterate(LearnerConfig::AdaGradNorm(AdaGradNorm { b0: 0.1 }), 1.0);
    let mut w = vec![0.0; 3];
    let expected = [
        0.834940648624,
        0.321083884829,
        0.130119451682,
        0.053744450622,
        0.022366543685,
    ];
    let mut last_factor = f64::INFINITY;
    for e in expected {
        let (_, g) = quad(&w);
        let info = o.step(&mut [Param::new("w", &mut w, &g)]).expect("step");
        assert!(info.group.lr_factor <= last_factor && info.group.lr_factor <= 1.0 / 0.1);
        last_factor = info.group.lr_factor;
        let (f, _) = quad(&w);
        assert!((f - e).abs() < 1e-11, "{f} vs {e}");
    }
}

#[test]
fn cocob_golden_iterates() {
    let mut o = last_iterate(LearnerConfig::Cocob(Cocob::default()), 1.0);
    o.add_param_to(0, "v", &[1]).expect("new");
    let mut w = vec![0.0];
    let expected = [
        0.01,
        0.0202,
        0.030906,
        0.04244424,
        0.055177512,
        0.06952366512,
    ];
    let mut wa = vec![0.0; 3];
    for e in expected {
        let g = vec![if w[0] > 1.0 { 1.0 } else { -1.0 }];
        let (_, ga) = quad(&wa);
        o.step(&mut [Param::new("v", &mut w, &g), Param::new("w", &mut wa, &ga)])
            .expect("step");
        assert!((w[0] - e).abs() < 1e-12, "{} vs {e}", w[0]);
    }
}
