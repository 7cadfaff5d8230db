//! Corrected weight decay (AdamC / SGDC, ALGORITHMS.md §10.4): the per-step shrink factor of a
//! normalized parameter is `λ·γ_t²/γ_max` instead of AdamW's `λ·γ_t`; `γ_max` is the explicit
//! peak or the running maximum of the lr; an invalid peak is a `ConfigError`.

use proptest::prelude::*;
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::conversion::LastIterate;
use schedulefree::decay::{Corrected, DecayConfig, Decoupled, NormalizedPolicy};
use schedulefree::learner::Sgd;
use schedulefree::schedule::{Constant, Tabulated};
use schedulefree::{
    AdamC, AdamW, ConfigError, DynOptimizer, GroupConfig, Optimizer, Param, ParamTags, SgdC,
};

/// `1 − p_new/p_old` of one step with a zero gradient (Adam's direction is then exactly 0, so
/// only the decay moves the parameter), for every parameter.
fn shrink_factors(opt: &mut dyn DynOptimizer<f64>, names: &[&str]) -> Vec<f64> {
    let mut values: Vec<Vec<f64>> = names.iter().map(|_| vec![1.0, -2.0, 0.5]).collect();
    let zero = [0.0; 3];
    let mut params: Vec<Param<'_, f64>> = names
        .iter()
        .zip(values.iter_mut())
        .map(|(n, v)| Param::new(n, v, &zero))
        .collect();
    opt.step(&mut params).expect("step");
    values
        .iter()
        .map(|v| {
            let f = 1.0 - v[0] / 1.0;
            // Every element shrinks by the same factor.
            assert!((1.0 - v[1] / -2.0 - f).abs() < 1e-15 && (1.0 - v[2] / 0.5 - f).abs() < 1e-15);
            f
        })
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// The numbers: λ = 0.1, peak 1e-3; at lr 1e-3, 5e-4, 1e-4 AdamW shrinks by
/// 1e-4, 5e-5, 1e-5 per step and AdamC (normalized parameters) by 1e-4, 2.5e-5, 1e-6.
#[test]
fn adamc_shrink_factors_follow_the_squared_lr() {
    let lrs = [1e-3, 5e-4, 1e-4];
    let adamw_want = [1e-4, 5e-5, 1e-5];
    let adamc_want = [1e-4, 2.5e-5, 1e-6];
    for (i, &lr) in lrs.iter().enumerate() {
        // AdamC built at the peak, then the lr lowered as an external schedule would.
        let mut c = AdamC {
            lr: 1e-3,
            weight_decay: 0.1,
            ..Default::default()
        }
        .build::<f64, _>(Constant)
        .expect("config");
        c.add_param_tagged(0, "normalized", &[3], ParamTags::NORMALIZED)
            .expect("new");
        c.add_param_tagged(0, "plain", &[3], ParamTags::default())
            .expect("new");
        c.add_param_tagged(0, "bias", &[3], ParamTags::NO_DECAY)
            .expect("new");
        c.set_group_config(
            0,
            GroupConfig {
                lr,
                weight_decay: 0.1,
            },
        )
        .expect("valid");
        let f = shrink_factors(&mut c, &["normalized", "plain", "bias"]);
        assert!(
            rel(f[0], adamc_want[i]) < 1e-9,
            "AdamC at lr {lr}: {}",
            f[0]
        );
        assert!(
            rel(f[1], adamw_want[i]) < 1e-9,
            "untagged at lr {lr}: {}",
            f[1]
        );
        assert_eq!(f[2], 0.0, "no_decay");

        // torch-style AdamW (same decay, its own eps placement) shrinks like the untagged one.
        let mut w = AdamW {
            lr,
            weight_decay: 0.1,
            ..Default::default()
        }
        .build::<f64, _>(Constant)
        .expect("config");
        w.add_param("p", &[3]).expect("new");
        let f = shrink_factors(&mut w, &["p"]);
        assert!(
            rel(f[0], adamw_want[i]) < 1e-9,
            "AdamW at lr {lr}: {}",
            f[0]
        );
    }
}

/// The same numbers through the schedule (lr 1e-3 × [1, 0.5, 0.1]), and the diagnostics'
/// per-step decay factor `κ` reports them.
#[test]
fn adamc_shrink_factors_through_a_schedule_and_diagnostics() {
    let mut c = AdamC {
        lr: 1e-3,
        weight_decay: 0.1,
        ..Default::default()
    }
    .build::<f64, _>(Tabulated::new(vec![1.0, 0.5, 0.1]).expect("table"))
    .expect("config");
    c.add_param_tagged(0, "w", &[3], ParamTags::NORMALIZED)
        .expect("new");
    c.set_diagnostics(true);
    for want in [1e-4, 2.5e-5, 1e-6] {
        let f = shrink_factors(&mut c, &["w"]);
        assert!(rel(f[0], want) < 1e-9, "{} vs {want}", f[0]);
        let kappa = c.diagnostics()[0].kappa;
        // κ = 1 − shrink: exact to the rounding of `shrink` near 1 (~1e-16 absolute).
        assert!(rel(kappa, want) < 1e-9, "κ {kappa} vs {want}");
    }
}

fn sgd_corrected(peak_lr: Option<f64>, table: Vec<f64>) -> impl DynOptimizer<f64> {
    let mut o = Optimizer::<f64, _, _, _, _>::new(
        Sgd::plain(),
        LastIterate,
        Corrected {
            base: Decoupled,
            peak_lr,
        },
        Tabulated::new(table).expect("table"),
        GroupConfig {
            lr: 0.2,
            weight_decay: 0.5,
        },
    )
    .expect("config");
    o.add_param_tagged(0, "w", &[3], ParamTags::NORMALIZED)
        .expect("new");
    o
}

/// `peak_lr: None`: `γ_max` is the running maximum of the lr including the current step.
#[test]
fn corrected_without_peak_uses_the_running_maximum() {
    let table = vec![0.5, 1.0, 0.25, 0.75, 0.1];
    let mut o = sgd_corrected(None, table.clone());
    let (lr0, wd) = (0.2, 0.5);
    let mut running = 0.0_f64;
    for m in &table {
        let lr = lr0 * m;
        running = running.max(lr);
        let want = wd * lr * lr / running;
        let f = shrink_factors(&mut o, &["w"]);
        assert!(rel(f[0], want) < 1e-12, "lr {lr}: {} vs {want}", f[0]);
    }
    // An explicit peak replaces the running maximum (decay during the rise is reduced).
    let mut o = sgd_corrected(Some(0.2), table.clone());
    for m in &table {
        let lr = lr0 * m;
        let f = shrink_factors(&mut o, &["w"]);
        assert!(rel(f[0], wd * lr * lr / 0.2) < 1e-12);
    }
    // The same through the run-time configuration.
    let c = Composed {
        learner: LearnerConfig::Sgd(Sgd::plain()),
        conversion: ConversionConfig::LastIterate,
        decay: DecayConfig {
            base: schedulefree::decay::AnyDecay::Decoupled,
            normalized: NormalizedPolicy::Corrected { peak_lr: None },
        },
        schedule: schedulefree::schedule::ScheduleConfig::Tabulated {
            values: table.clone(),
        },
        lr: lr0,
        weight_decay: wd,
    };
    let mut o = c.build_dyn::<f64>().expect("config");
    o.add_param_tagged(0, "w", &[3], ParamTags::NORMALIZED)
        .expect("new");
    let mut running = 0.0_f64;
    for m in &table {
        let lr = lr0 * m;
        running = running.max(lr);
        let f = shrink_factors(o.as_mut(), &["w"]);
        assert!(rel(f[0], wd * lr * lr / running) < 1e-12);
    }
}

/// A first step at lr 0 under the running maximum: no decay and no 0/0.
#[test]
fn corrected_running_maximum_at_zero_lr_is_no_decay() {
    let mut o = sgd_corrected(None, vec![0.0, 1.0]);
    let f = shrink_factors(&mut o, &["w"]);
    assert_eq!(f[0], 0.0);
    let f = shrink_factors(&mut o, &["w"]);
    assert!(rel(f[0], 0.5 * 0.2) < 1e-12);
}

fn bad_peak() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e6..=0.0_f64,
        Just(0.0),
        Just(-0.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ]
}

fn is_peak_error(e: &ConfigError) -> bool {
    matches!(
        e,
        ConfigError::OutOfRange {
            field: "peak_lr",
            ..
        }
    )
}

proptest! {
    /// `peak_lr ≤ 0`, NaN or infinite is refused when the optimizer is built, by every
    /// constructor that takes one.
    #[test]
    fn invalid_peak_lr_is_a_config_error(peak in bad_peak()) {
        let e = AdamC { peak_lr: Some(peak), ..Default::default() }
            .build::<f64, _>(Constant)
            .expect_err("invalid peak");
        prop_assert!(is_peak_error(&e), "{e}");
        let e = SgdC { peak_lr: Some(peak), ..Default::default() }
            .build::<f32, _>(Constant)
            .expect_err("invalid peak");
        prop_assert!(is_peak_error(&e), "{e}");
        let e = Optimizer::<f64, _, _, _, _>::new(
            Sgd::plain(),
            LastIterate,
            Corrected { base: Decoupled, peak_lr: Some(peak) },
            Constant,
            GroupConfig { lr: 0.1, weight_decay: 0.1 },
        )
        .expect_err("invalid peak");
        prop_assert!(is_peak_error(&e), "{e}");
        let c = Composed {
            learner: LearnerConfig::Sgd(Sgd::plain()),
            conversion: ConversionConfig::LastIterate,
            decay: DecayConfig {
                base: schedulefree::decay::AnyDecay::Decoupled,
                normalized: NormalizedPolicy::Corrected { peak_lr: Some(peak) },
            },
            schedule: schedulefree::schedule::ScheduleConfig::Constant {},
            lr: 0.1,
            weight_decay: 0.1,
        };
        let e = c.build_dyn::<f64>().expect_err("invalid peak");
        prop_assert!(is_peak_error(&e), "{e}");
    }

    /// Any finite positive peak is accepted.
    #[test]
    fn positive_peak_lr_is_accepted(peak in 1e-12..1e6_f64) {
        let built = AdamC { peak_lr: Some(peak), ..Default::default() }.build::<f64, _>(Constant);
        prop_assert!(built.is_ok(), "peak {}", peak);
    }
}

/// AdamC's default peak is its `lr`, so `lr = 0` without an explicit peak is refused too.
#[test]
fn adamc_with_zero_lr_needs_an_explicit_peak() {
    let e = AdamC {
        lr: 0.0,
        ..Default::default()
    }
    .build::<f64, _>(Constant)
    .expect_err("peak 0");
    assert!(is_peak_error(&e), "{e}");
    assert!(
        AdamC {
            lr: 0.0,
            peak_lr: Some(1e-3),
            ..Default::default()
        }
        .build::<f64, _>(Constant)
        .is_ok()
    );
}
