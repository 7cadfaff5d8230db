//! Construction rules, learning-rate control and seeded initialisation.
#![allow(clippy::unwrap_used)]

use crate::common;

use crate::common::{Mlp, f32s, sf_adamw};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use schedulefree::{ConfigError, PresetConfig};
use schedulefree_candle::{CandleAdapterError, ScheduleFreeOptimizer, seeded_init};

fn var(dtype: DType) -> Var {
    Var::zeros(3, dtype, &Device::Cpu).unwrap()
}

#[test]
fn dtypes_duplicates_and_bad_configs_are_typed_errors() {
    let err = ScheduleFreeOptimizer::from_vars(vec![var(DType::BF16)], sf_adamw()).unwrap_err();
    assert!(
        matches!(
            err,
            CandleAdapterError::UnsupportedDtype {
                dtype: DType::BF16,
                ..
            }
        ),
        "{err}"
    );
    let err = ScheduleFreeOptimizer::from_vars(vec![var(DType::F32), var(DType::F64)], sf_adamw())
        .unwrap_err();
    assert!(
        matches!(err, CandleAdapterError::MixedDtypes { .. }),
        "{err}"
    );
    let v = var(DType::F32);
    let err = ScheduleFreeOptimizer::from_vars(vec![v.clone(), v], sf_adamw()).unwrap_err();
    assert!(
        matches!(err, CandleAdapterError::DuplicateVar { .. }),
        "{err}"
    );
    let bad: PresetConfig =
        serde_json::from_str(r#"{"method": "adamw_schedule_free", "lr": -1.0}"#).unwrap();
    let err = ScheduleFreeOptimizer::from_vars(vec![var(DType::F32)], bad.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            CandleAdapterError::Config(ConfigError::OutOfRange { .. })
        ),
        "{err}"
    );
    // The trait constructor reports the same message through candle's error.
    let msg = <ScheduleFreeOptimizer as Optimizer>::new(vec![var(DType::F32)], bad)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("lr"), "{msg}");
    // Integer vars are skipped, as candle's optimizers do; no vars is fine.
    let opt = ScheduleFreeOptimizer::from_vars(vec![var(DType::U32), var(DType::F32)], sf_adamw())
        .unwrap();
    assert_eq!(opt.vars().len(), 1);
    assert!(<ScheduleFreeOptimizer as Optimizer>::empty(sf_adamw()).is_ok());
}

#[test]
fn set_learning_rate_changes_the_peak_lr_and_a_bad_one_fails_the_next_step() {
    let mlp = Mlp::new(0);
    let mut opt = ScheduleFreeOptimizer::from_varmap(&mlp.varmap, sf_adamw()).unwrap();
    opt.set_learning_rate(0.01);
    assert_eq!(opt.learning_rate(), 0.01);
    let info = opt.try_step(&mlp.grads(0)).unwrap();
    // Warmup of 3 steps: the first update uses lr · 1/3.
    assert!(
        (info.group.lr - 0.01 / 3.0).abs() < 1e-15,
        "{}",
        info.group.lr
    );
    opt.set_learning_rate(f64::NAN);
    assert_eq!(opt.learning_rate(), 0.01);
    let before = mlp.values();
    let err = opt.step(&mlp.grads(1)).unwrap_err();
    assert!(err.to_string().contains("lr"), "{err}");
    assert_eq!(mlp.values(), before);
    opt.step(&mlp.grads(1)).unwrap();
}

#[test]
fn non_finite_gradients_skip_the_step() {
    let w = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap()).unwrap();
    let mut opt = ScheduleFreeOptimizer::from_vars(vec![w.clone()], sf_adamw()).unwrap();
    let loss = w
        .as_tensor()
        .sqrt()
        .unwrap()
        .sum_all()
        .unwrap()
        .affine(f64::INFINITY, 0.0)
        .unwrap();
    let info = opt.try_step(&loss.backward().unwrap()).unwrap();
    assert!(info.skipped.is_some());
    assert_eq!(f32s(&w), [1.0, 2.0]);
}

#[test]
fn seeded_init_is_deterministic_and_follows_the_layer_rules() {
    let a = Mlp::new(42);
    let b = Mlp::new(42);
    let c = Mlp::new(43);
    assert_eq!(a.values(), b.values());
    assert_ne!(a.values(), c.values());
    let v: Vec<(String, Vec<f32>)> = a.vars().iter().map(|(n, v)| (n.clone(), f32s(v))).collect();
    // Sorted: l1.bias, l1.weight (5x3), l2.bias, l2.weight (2x5).
    let bound = |name: &str| match name {
        "l1.weight" => (6.0f32 / 3.0).sqrt(),
        "l2.weight" => (6.0f32 / 5.0).sqrt(),
        "l1.bias" => 1.0 / 3.0f32.sqrt(),
        _ => 1.0 / 5.0f32.sqrt(),
    };
    for (name, vals) in &v {
        let b = bound(name);
        assert!(vals.iter().all(|x| x.abs() <= b), "{name} exceeds {b}");
        // Spread over most of the range (not all zero, not a constant).
        let max = vals.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(max > 0.3 * b, "{name}: max |value| {max} vs bound {b}");
    }
    // Vars without a weight sibling (norm scales) keep their values; f64 vars are drawn too.
    let m = Mlp::with_dtype(42, DType::F64);
    let scale = m
        .varmap
        .get(
            4,
            "norm.weight",
            candle_nn::init::ONE,
            DType::F64,
            &Device::Cpu,
        )
        .unwrap();
    seeded_init(&m.varmap, 42).unwrap();
    assert_eq!(common::f64s(&scale), [1.0; 4]);
    let w64 = common::f64s(&m.vars()[1].1);
    let w32: Vec<f64> = v[1].1.iter().map(|&x| f64::from(x)).collect();
    for (p, q) in w64.iter().zip(&w32) {
        assert!(
            (p - q).abs() < 1e-6,
            "same draws in both dtypes: {p} vs {q}"
        );
    }
}
