//! Typed errors, never panics (DESIGN.md §5): invalid hyperparameters are refused at
//! construction by every preset (proptest over arbitrary `f64`, NaN and ±inf included); call
//! errors (`step` in eval mode, unknown / duplicate names, length mismatches, a missing
//! parameter in a mode switch) are typed and change nothing.

use proptest::prelude::*;
use schedulefree::learner::{Adam, RAdam, Sgd};
use schedulefree::presets::{self, AdamWScheduleFreeOptimizer};
use schedulefree::schedule::Constant;
use schedulefree::{
    AdamW, AdamWScheduleFree, AdamWScheduleFreePaper, AdamWScheduleFreeReference, ConfigError,
    DynOptimizer, GroupConfig, OptimizerState, Param, ParamError, RAdamScheduleFree,
    ScheduleFreeWrapper, SgdScheduleFree, SgdScheduleFreeReference, StepError,
};

// ---------------------------------------------------------------------------------------
// Hyperparameter validation.
// ---------------------------------------------------------------------------------------

/// Arbitrary `f64`, with the boundaries and the non-finite values drawn often.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => -0.5..1.5_f64,
        1 => any::<f64>(),
        1 => prop_oneof![
            Just(0.0), Just(-0.0), Just(1.0), Just(-1.0), Just(f64::NAN), Just(f64::INFINITY),
            Just(f64::NEG_INFINITY), Just(f64::MIN_POSITIVE), Just(1.0 - f64::EPSILON / 2.0),
            Just(1.0 + f64::EPSILON), Just(f64::MAX), Just(-f64::MIN_POSITIVE),
        ],
    ]
}

fn nonneg(v: f64) -> bool {
    v >= 0.0 && v.is_finite()
}
/// `decoupling_c ≥ 0`, and off when the interpolation `β` is 1 (no averaging step otherwise).
fn decoupling(c: f64, beta: f64) -> bool {
    nonneg(c) && (c == 0.0 || beta < 1.0)
}
/// `(0, 1]`: the Schedule-Free interpolation β.
fn sf_beta(v: f64) -> bool {
    v > 0.0 && v <= 1.0
}
/// `[0, 1)`: Adam's moment decays, SGD momentum.
fn decay(v: f64) -> bool {
    (0.0..1.0).contains(&v)
}
/// `[0, 16]`: averaging exponents (bounded so that the weight sum stays finite).
fn exponent(v: f64) -> bool {
    (0.0..=16.0).contains(&v)
}
/// RAdam's β2: a decay, and with the silent phase rectifiable (`ρ_∞ > 4 ⇔ β2 > 0.6`).
fn radam_beta2(v: f64, silent: bool) -> bool {
    decay(v) && (!silent || v > 0.6)
}
fn eps_ok(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}

/// `result` is Ok iff no field is invalid; an error names one of the invalid fields.
fn check<T: std::fmt::Debug>(
    result: Result<T, ConfigError>,
    fields: &[(&str, bool)],
) -> Result<(), TestCaseError> {
    let invalid: Vec<&str> = fields.iter().filter(|f| !f.1).map(|f| f.0).collect();
    match result {
        Ok(_) => prop_assert!(invalid.is_empty(), "accepted invalid {:?}", invalid),
        Err(ConfigError::OutOfRange {
            field,
            value,
            expected,
        }) => {
            prop_assert!(
                invalid.contains(&field),
                "error names `{}` = {} but invalid are {:?}",
                field,
                value,
                invalid
            );
            let msg = ConfigError::OutOfRange {
                field,
                value,
                expected,
            }
            .to_string();
            prop_assert!(msg.contains(field) && msg.contains(expected), "{}", msg);
        }
        Err(e) => prop_assert!(false, "unexpected error kind {:?} for {:?}", e, invalid),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn sgd_schedule_free_validates(lr in float(), m in float(), wd in float(), r in float(), p in float(), w in any::<u64>(), dc in float()) {
        let cfg = SgdScheduleFree { lr, momentum: m, weight_decay: wd, warmup_steps: w, r, weight_lr_power: p, decoupling_c: dc };
        let fields = [
            ("lr", nonneg(lr)), ("beta", sf_beta(m)), ("weight_decay", nonneg(wd)),
            ("r", exponent(r)), ("weight_lr_power", exponent(p)), ("decoupling_c", decoupling(dc, m)),
        ];
        check(cfg.build::<f64>(), &fields)?;
        check(cfg.build::<f32>(), &fields)?;
        check(SgdScheduleFreeReference(cfg).build::<f64>(), &fields)?;
    }

    #[test]
    fn adamw_schedule_free_validates(
        lr in float(), b0 in float(), b1 in float(), eps in float(), wd in float(), r in float(), p in float(), mu in float(),
        decay_at_z in any::<bool>(), dc in float(),
    ) {
        let cfg = AdamWScheduleFree {
            lr, betas: (b0, b1), eps, weight_decay: wd, warmup_steps: 3, r, weight_lr_power: p, inner_momentum: mu,
            decoupling_c: dc,
        };
        let fields = [
            ("lr", nonneg(lr)), ("beta", sf_beta(b0)), ("beta2", decay(b1)), ("eps", eps_ok(eps)),
            ("weight_decay", nonneg(wd)), ("r", exponent(r)), ("weight_lr_power", exponent(p)), ("beta1", decay(mu)),
            ("decoupling_c", decoupling(dc, b0)),
        ];
        check(cfg.build::<f64>(), &fields)?;
        check(cfg.build::<f32>(), &fields)?;
        check(AdamWScheduleFreePaper(cfg).build::<f64>(), &fields)?;
        check(AdamWScheduleFreeReference { config: cfg, decay_at_z }.build::<f64>(), &fields)?;
    }

    #[test]
    fn radam_schedule_free_validates(
        lr in float(), b0 in float(), b1 in float(), eps in float(), wd in float(), r in float(), p in float(),
        silent in any::<bool>(), dc in float(),
    ) {
        let cfg = RAdamScheduleFree {
            lr, betas: (b0, b1), eps, weight_decay: wd, r, weight_lr_power: p, silent_sgd_phase: silent,
            decoupling_c: dc,
        };
        let fields = [
            ("lr", nonneg(lr)), ("beta", sf_beta(b0)), ("beta2", radam_beta2(b1, silent)), ("eps", eps_ok(eps)),
            ("weight_decay", nonneg(wd)), ("r", exponent(r)), ("weight_lr_power", exponent(p)),
            ("decoupling_c", decoupling(dc, b0)),
        ];
        check(cfg.build::<f64>(), &fields)?;
    }

    #[test]
    fn wrapper_validates(
        lr in float(), m in float(), wd in float(), r in float(), p in float(), b2 in float(), eps in float(), dc in float(),
    ) {
        let cfg = ScheduleFreeWrapper { momentum: m, weight_decay_at_y: wd, r, weight_lr_power: p, decoupling_c: dc };
        let common = [("lr", nonneg(lr)), ("weight_decay", nonneg(wd)), ("r", exponent(r)), ("weight_lr_power", exponent(p)), ("decoupling_c", decoupling(dc, m))];
        let with = |beta: (&'static str, bool), extra: &[(&'static str, bool)]| -> Vec<(&'static str, bool)> {
            common.iter().copied().chain([beta]).chain(extra.iter().copied()).collect()
        };
        check(cfg.wrap::<f64, _>(Sgd::plain(), lr), &with(("beta", sf_beta(m)), &[]))?;
        // The reference form accepts β = 0 (Polyak averaging).
        check(cfg.wrap_reference::<f64, _>(Sgd::plain(), lr), &with(("beta", (0.0..=1.0).contains(&m)), &[]))?;
        let adam = Adam { beta1: 0.0, beta2: b2, eps, ..Default::default() };
        check(cfg.wrap::<f64, _>(adam, lr), &with(("beta", sf_beta(m)), &[("beta2", decay(b2)), ("eps", eps_ok(eps))]))?;
        let radam = RAdam { beta2: b2, eps, silent_sgd_phase: true };
        check(cfg.wrap::<f32, _>(radam, lr), &with(("beta", sf_beta(m)), &[("beta2", radam_beta2(b2, true)), ("eps", eps_ok(eps))]))?;
    }

    #[test]
    fn adamw_validates(lr in float(), b0 in float(), b1 in float(), eps in float(), wd in float()) {
        let cfg = AdamW { lr, betas: (b0, b1), eps, weight_decay: wd };
        let fields = [
            ("lr", nonneg(lr)), ("beta1", decay(b0)), ("beta2", decay(b1)), ("eps", eps_ok(eps)),
            ("weight_decay", nonneg(wd)),
        ];
        check(cfg.build::<f64, _>(Constant), &fields)?;
    }

    #[test]
    fn sgd_validates(lr in float(), m in float(), d in float(), wd in float()) {
        let cfg = presets::TorchSgd { lr, momentum: m, dampening: d, weight_decay: wd, nesterov: false };
        let fields = [
            ("lr", nonneg(lr)), ("momentum", decay(m)), ("dampening", (0.0..=1.0).contains(&d)),
            ("weight_decay", nonneg(wd)),
        ];
        check(cfg.build::<f64, _>(Constant), &fields)?;
    }

    /// Group configurations added or changed later are validated the same way.
    #[test]
    fn group_configs_validate(lr in float(), wd in float()) {
        let mut opt = SgdScheduleFree::default().build::<f64>().expect("valid");
        let fields = [("lr", nonneg(lr)), ("weight_decay", nonneg(wd))];
        let before = opt.group_config(0);
        check(opt.set_group_config(0, GroupConfig { lr, weight_decay: wd }), &fields)?;
        if !fields.iter().all(|f| f.1) {
            prop_assert_eq!(opt.group_config(0), before);
        }
        check(opt.add_group(GroupConfig { lr, weight_decay: wd }), &fields)?;
    }
}

#[test]
fn unsupported_combinations_are_typed() {
    // A momentum learner inside the Schedule-Free wrapper.
    let err = ScheduleFreeWrapper::default()
        .wrap::<f64, _>(Adam::default(), 0.1)
        .expect_err("β1 = 0.9 has momentum");
    assert!(
        matches!(&err, ConfigError::Unsupported(m) if m.contains("momentum")),
        "{err}"
    );
    let err = ScheduleFreeWrapper::default()
        .wrap::<f64, _>(
            Sgd {
                momentum: 0.9,
                dampening: 0.0,
                nesterov: false,
            },
            0.1,
        )
        .expect_err("momentum");
    assert!(matches!(err, ConfigError::Unsupported(_)));
    // Nesterov without momentum.
    let err = presets::TorchSgd {
        nesterov: true,
        ..Default::default()
    }
    .build::<f64, _>(Constant)
    .expect_err("nesterov");
    assert!(matches!(err, ConfigError::Unsupported(_)));
    let mut opt = SgdScheduleFree::default().build::<f64>().expect("valid");
    let err = opt
        .set_group_config(
            3,
            GroupConfig {
                lr: 1.0,
                weight_decay: 0.0,
            },
        )
        .expect_err("no group 3");
    assert!(matches!(
        err,
        ConfigError::OutOfRange { field: "group", .. }
    ));
}

// ---------------------------------------------------------------------------------------
// Call errors: typed, and nothing changes.
// ---------------------------------------------------------------------------------------

/// A stepped SF-AdamW with params "a" [3] and "b" [2, 2], and its buffers.
fn stepped() -> (AdamWScheduleFreeOptimizer<f64>, Vec<f64>, Vec<f64>) {
    let mut opt = AdamWScheduleFree {
        lr: 0.1,
        inner_momentum: 0.9,
        ..Default::default()
    }
    .build::<f64>()
    .expect("valid");
    opt.add_param("a", &[3]).expect("new");
    opt.add_param("b", &[2, 2]).expect("new");
    let (mut a, mut b) = (vec![1.0, 2.0, 3.0], vec![0.5; 4]);
    for k in 0..3 {
        let (ga, gb) = (vec![k as f64 - 1.0; 3], vec![0.25; 4]);
        opt.step(&mut [Param::new("a", &mut a, &ga), Param::new("b", &mut b, &gb)])
            .expect("train");
    }
    (opt, a, b)
}

type Snapshot = (
    OptimizerState,
    Option<schedulefree::GroupStepInfo>,
    bool,
    u64,
    Vec<u64>,
    Vec<u64>,
);

fn snapshot(opt: &AdamWScheduleFreeOptimizer<f64>, a: &[f64], b: &[f64]) -> Snapshot {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect();
    (
        opt.state(),
        opt.group_info(0),
        opt.is_train_mode(),
        opt.step_count(),
        bits(a),
        bits(b),
    )
}

#[test]
fn step_in_eval_mode_says_to_call_train() {
    let (mut opt, mut a, mut b) = stepped();
    opt.eval(&mut [Param::no_grad("a", &mut a), Param::no_grad("b", &mut b)])
        .expect("all passed");
    let before = snapshot(&opt, &a, &b);
    let (ga, gb) = (vec![1.0; 3], vec![1.0; 4]);
    let err = opt
        .step(&mut [Param::new("a", &mut a, &ga), Param::new("b", &mut b, &gb)])
        .expect_err("eval mode");
    assert_eq!(err, StepError::EvalMode { group: 0 });
    let msg = err.to_string();
    assert!(msg.contains("train("), "{msg}");
    assert_eq!(snapshot(&opt, &a, &b), before);
    // Also through the trait object.
    let dyn_opt: &mut dyn DynOptimizer<f64> = &mut opt;
    assert!(matches!(
        dyn_opt.step(&mut [Param::new("a", &mut a, &ga)]),
        Err(StepError::EvalMode { .. })
    ));
}

#[test]
fn bad_calls_are_typed_and_change_nothing() {
    let (mut opt, mut a, mut b) = stepped();
    let before = snapshot(&opt, &a, &b);
    let (ga, gb) = (vec![1.0; 3], vec![1.0; 4]);
    let mut other = vec![0.0; 3];

    // Unknown name (after a valid one, so that a partial update would show).
    let err = opt
        .step(&mut [
            Param::new("a", &mut a, &ga),
            Param::new("nope", &mut other, &ga),
        ])
        .expect_err("unknown");
    assert_eq!(err, StepError::UnknownParameter("nope".into()));
    assert!(err.to_string().contains("add_param"), "{err}");
    assert_eq!(snapshot(&opt, &a, &b), before);

    // The same name twice in one call.
    let err = opt
        .step(&mut [
            Param::new("a", &mut a, &ga),
            Param::new("b", &mut b, &gb),
            Param::new("a", &mut other, &ga),
        ])
        .expect_err("duplicate");
    assert_eq!(err, StepError::DuplicateParameter("a".into()));
    assert_eq!(snapshot(&opt, &a, &b), before);

    // Length mismatches: value, then gradient.
    let mut short = vec![0.0; 3];
    let err = opt
        .step(&mut [
            Param::new("a", &mut a, &ga),
            Param::new("b", &mut short, &ga),
        ])
        .expect_err("value length");
    assert_eq!(
        err,
        StepError::LengthMismatch {
            name: "b".into(),
            what: "value",
            got: 3,
            expected: 4
        }
    );
    let err = opt
        .step(&mut [Param::new("a", &mut a, &ga), Param::new("b", &mut b, &ga)])
        .expect_err("grad length");
    assert_eq!(
        err,
        StepError::LengthMismatch {
            name: "b".into(),
            what: "grad",
            got: 3,
            expected: 4
        }
    );
    assert!(err.to_string().contains("grad"), "{err}");
    assert_eq!(snapshot(&opt, &a, &b), before);

    // The same errors from the mode switches.
    assert_eq!(
        opt.eval(&mut [
            Param::no_grad("a", &mut a),
            Param::no_grad("b", &mut b),
            Param::no_grad("x", &mut other)
        ]),
        Err(StepError::UnknownParameter("x".into()))
    );
    assert_eq!(
        opt.eval(&mut [Param::no_grad("a", &mut a), Param::no_grad("b", &mut short)]),
        Err(StepError::LengthMismatch {
            name: "b".into(),
            what: "value",
            got: 3,
            expected: 4
        })
    );
    assert_eq!(
        opt.train(&mut [Param::no_grad("b", &mut b), Param::no_grad("b", &mut short)]),
        Err(StepError::DuplicateParameter("b".into()))
    );
    assert_eq!(snapshot(&opt, &a, &b), before);

    // eval_params_into and eval_guard.
    let mut out = vec![0.0; 2];
    assert!(matches!(
        opt.eval_params_into("a", &a, &mut out),
        Err(StepError::LengthMismatch { what: "out", .. })
    ));
    assert!(matches!(
        opt.eval_params_into("a", &b, &mut out),
        Err(StepError::LengthMismatch { what: "value", .. })
    ));
    assert_eq!(
        opt.eval_params_into("zz", &a, &mut out),
        Err(StepError::UnknownParameter("zz".into()))
    );
    assert!(matches!(
        opt.eval_guard(&mut [Param::no_grad("a", &mut a), Param::no_grad("b", &mut short)])
            .map(|_| ()),
        Err(StepError::LengthMismatch { .. })
    ));
    assert!(matches!(
        opt.eval_guard(&mut [Param::no_grad("q", &mut short)])
            .map(|_| ()),
        Err(StepError::UnknownParameter(_))
    ));
    assert_eq!(snapshot(&opt, &a, &b), before);

    // After all that, the optimizer steps exactly like an untouched twin.
    let (mut twin, mut ta, mut tb) = stepped();
    opt.step(&mut [Param::new("a", &mut a, &ga), Param::new("b", &mut b, &gb)])
        .expect("train");
    twin.step(&mut [Param::new("a", &mut ta, &ga), Param::new("b", &mut tb, &gb)])
        .expect("train");
    assert_eq!(snapshot(&opt, &a, &b), snapshot(&twin, &ta, &tb));
}

#[test]
fn mode_switch_with_a_stepped_parameter_missing() {
    let (mut opt, mut a, mut b) = stepped();
    let before = snapshot(&opt, &a, &b);
    let err = opt
        .eval(&mut [Param::no_grad("a", &mut a)])
        .expect_err("b is missing");
    assert_eq!(err, StepError::MissingParameter("b".into()));
    assert!(err.to_string().contains("`b`"), "{err}");
    assert_eq!(
        snapshot(&opt, &a, &b),
        before,
        "no buffer switched, mode unchanged"
    );
    assert!(opt.is_train_mode());
    opt.eval(&mut [Param::no_grad("b", &mut b), Param::no_grad("a", &mut a)])
        .expect("all passed");
    let before = snapshot(&opt, &a, &b);
    assert_eq!(
        opt.train(&mut [Param::no_grad("b", &mut b)]),
        Err(StepError::MissingParameter("a".into()))
    );
    assert_eq!(snapshot(&opt, &a, &b), before);
    assert!(!opt.is_train_mode());
}

#[test]
fn registration_errors_are_typed() {
    let mut opt = SgdScheduleFree::default().build::<f32>().expect("valid");
    opt.add_param("w", &[2]).expect("new");
    assert_eq!(
        opt.add_param("w", &[3]),
        Err(ParamError::Duplicate("w".into()))
    );
    assert_eq!(
        opt.add_param_to(1, "v", &[3]),
        Err(ParamError::NoSuchGroup {
            group: 1,
            groups: 1
        })
    );
    let g = opt
        .add_group(GroupConfig {
            lr: 0.5,
            weight_decay: 0.0,
        })
        .expect("valid");
    assert_eq!(g, 1);
    opt.add_param_to(1, "v", &[3]).expect("group 1 exists now");
}

#[test]
fn overflowing_scalars_refuse_the_step_and_change_nothing() {
    // lr_max² overflows f64: c would be inf/inf = NaN.
    let mut opt = SgdScheduleFree {
        lr: 1e160,
        ..Default::default()
    }
    .build::<f64>()
    .expect("finite lr is valid");
    opt.add_param("w", &[1]).expect("name");
    let mut w = vec![1.0];
    let g = vec![1.0];
    let err = opt
        .step(&mut [Param::new("w", &mut w, &g)])
        .expect_err("overflow must be refused");
    assert!(
        matches!(err, StepError::NonFiniteScalar { group: 0, .. }),
        "{err:?}"
    );
    assert_eq!(w, vec![1.0]);
    assert_eq!(opt.step_count(), 0);
    assert!(opt.state_buffer("w", "z").is_none());
}

#[test]
fn impossible_group_scalars_in_a_checkpoint_are_refused() {
    let mut opt = SgdScheduleFree::default().build::<f64>().expect("config");
    opt.add_param("w", &[1]).expect("name");
    let mut w = vec![1.0];
    opt.step(&mut [Param::new("w", &mut w, &[0.5])])
        .expect("step");
    for (lr_max, weight_sum) in [
        (-5.0, 1.0),
        (1.0, f64::NAN),
        (1.0, -1.0),
        (f64::INFINITY, 1.0),
    ] {
        let mut st = opt.state();
        st.groups[0].lr_max = lr_max;
        st.groups[0].weight_sum = weight_sum;
        let mut fresh = SgdScheduleFree::default().build::<f64>().expect("config");
        fresh.add_param("w", &[1]).expect("name");
        let err = fresh.load_state(&st).expect_err("tampered scalars");
        assert!(
            matches!(err, schedulefree::StateError::Group { group: 0, .. }),
            "{err:?}"
        );
        assert_eq!(fresh.step_count(), 0);
    }
}

#[test]
fn radam_silent_phase_needs_a_rectifiable_beta2() {
    let err = RAdamScheduleFree {
        betas: (0.9, 0.5),
        ..Default::default()
    }
    .build::<f64>()
    .expect_err("never rectifies");
    assert!(
        matches!(err, ConfigError::OutOfRange { field: "beta2", .. }),
        "{err:?}"
    );
    RAdamScheduleFree {
        betas: (0.9, 0.5),
        silent_sgd_phase: false,
        ..Default::default()
    }
    .build::<f64>()
    .expect("without the silent phase it is plain SGD until rectifiable: valid");
}

#[test]
fn shape_overflow_is_a_typed_error() {
    let mut opt = SgdScheduleFree::default().build::<f32>().expect("config");
    let err = opt.add_param("w", &[usize::MAX, 2]).expect_err("overflow");
    assert!(
        matches!(err, schedulefree::ParamError::ShapeOverflow { .. }),
        "{err:?}"
    );
}

#[test]
fn eval_is_a_no_op_for_conversions_without_modes() {
    let mut opt = schedulefree::presets::AdamW::default()
        .build::<f64, _>(schedulefree::schedule::Constant)
        .expect("config");
    opt.add_param("w", &[1]).expect("name");
    let mut w = vec![1.0];
    opt.step(&mut [Param::new("w", &mut w, &[0.5])])
        .expect("step");
    let before = w.clone();
    opt.eval(&mut [Param::no_grad("w", &mut w)]).expect("eval");
    assert_eq!(w, before, "the last iterate is the returned point");
    opt.step(&mut [Param::new("w", &mut w, &[0.5])])
        .expect("a last-iterate optimizer stays trainable");
}
