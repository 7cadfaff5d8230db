//! Evaluation at x: the guard restores y bit for bit; PyTorch-style mode switches.
#![allow(clippy::unwrap_used)]

use crate::common::{Mlp, assert_bits_eq, f32s, sf_adamw};
use schedulefree::StepError;
use schedulefree_candle::{CandleAdapterError, ScheduleFreeOptimizer};

fn trained() -> (Mlp, ScheduleFreeOptimizer) {
    let mlp = Mlp::new(4);
    let mut opt = ScheduleFreeOptimizer::from_varmap(&mlp.varmap, sf_adamw()).unwrap();
    for b in 0..6 {
        opt.try_step(&mlp.grads(b)).unwrap();
    }
    (mlp, opt)
}

#[test]
fn guard_evaluates_at_x_and_restores_y_bit_for_bit() {
    let (mlp, mut opt) = trained();
    let y = mlp.values();
    let x: Vec<Vec<f32>> = opt
        .eval_point()
        .unwrap()
        .iter()
        .map(|(_, t)| f32s(t))
        .collect();
    assert_ne!(x, y);
    let loss_y = mlp.loss(0).to_scalar::<f32>().unwrap();
    let loss_x = {
        let guard = opt.eval_guard().unwrap();
        assert_bits_eq(&mlp.values(), &x, "vars inside the guard");
        assert!(guard.optimizer().is_train_mode());
        mlp.loss(0).to_scalar::<f32>().unwrap()
    };
    assert_ne!(loss_x, loss_y, "the model computed at x inside the guard");
    assert_bits_eq(&mlp.values(), &y, "y after drop");
    // Explicit restore, and training continues normally.
    let guard = opt.eval_guard().unwrap();
    guard.restore().unwrap();
    assert_bits_eq(&mlp.values(), &y, "y after restore()");
    opt.try_step(&mlp.grads(7)).unwrap();
}

#[test]
fn before_any_step_the_guard_changes_nothing() {
    let mlp = Mlp::new(4);
    let mut opt = ScheduleFreeOptimizer::from_varmap(&mlp.varmap, sf_adamw()).unwrap();
    let y = mlp.values();
    let _g = opt.eval_guard().unwrap();
    assert_bits_eq(&mlp.values(), &y, "no state, no x");
}

#[test]
fn eval_and_train_are_idempotent_and_step_in_eval_mode_is_refused() {
    let (mlp, mut opt) = trained();
    let x: Vec<Vec<f32>> = opt
        .eval_point()
        .unwrap()
        .iter()
        .map(|(_, t)| f32s(t))
        .collect();
    opt.eval().unwrap();
    opt.eval().unwrap();
    assert!(!opt.is_train_mode());
    assert_bits_eq(&mlp.values(), &x, "vars at x in eval mode");
    let before = mlp.values();
    let err = opt.try_step(&mlp.grads(0)).unwrap_err();
    assert!(
        matches!(err, CandleAdapterError::Step(StepError::EvalMode { .. })),
        "{err}"
    );
    assert_bits_eq(&mlp.values(), &before, "a refused step changes nothing");
    // In eval mode the guard and eval_point leave the vars (already at x) alone.
    {
        let _g = opt.eval_guard().unwrap();
        assert_bits_eq(&mlp.values(), &x, "guard in eval mode");
    }
    let ex: Vec<Vec<f32>> = opt
        .eval_point()
        .unwrap()
        .iter()
        .map(|(_, t)| f32s(t))
        .collect();
    assert_bits_eq(&ex, &x, "eval_point in eval mode");
    opt.train().unwrap();
    let y = mlp.values();
    opt.train().unwrap();
    assert_bits_eq(&mlp.values(), &y, "second train() is a no-op");
    opt.try_step(&mlp.grads(1)).unwrap();
}
