//! The adapter computes exactly what the core computes over `Vec<f32>` on the same
//! gradients: training point `y`, evaluation point `x` (pure, guard and mode switch), across a
//! save/load of the optimizer state, on the host path and on the device path (candle's CPU
//! element ops are exact, so the device path gives the core's bits too).
#![allow(clippy::unwrap_used)]

use crate::common::{CoreRun, Mlp, assert_bits_eq, f32s, f64s, sf_adamw, temp_dir};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use schedulefree::StepInfo;
use schedulefree::{AdamWScheduleFree, Param, PresetConfig, SgdScheduleFree};
use schedulefree_candle::{Placement, ScheduleFreeOptimizer};

/// `config` on `placement`'s path (the constructors choose the host path for CPU vars).
fn build(mlp: &Mlp, config: &PresetConfig, placement: Placement) -> ScheduleFreeOptimizer {
    let mut opt = ScheduleFreeOptimizer::from_varmap(&mlp.varmap, config.clone()).unwrap();
    assert_eq!(opt.placement(), Placement::Host);
    opt.set_placement(placement).unwrap();
    opt
}

/// The step info of both paths; the device path's gradient norms are sums taken in `f32`
/// on the device, the core's in `f64`: equal to rounding.
fn assert_info_eq(mut ours: StepInfo, theirs: StepInfo, what: &str) {
    for (a, b) in [
        (&mut ours.grad_l1, theirs.grad_l1),
        (&mut ours.grad_l2, theirs.grad_l2),
        (&mut ours.group.grad_l1, theirs.group.grad_l1),
        (&mut ours.group.grad_l2, theirs.group.grad_l2),
    ] {
        assert!((*a - b).abs() <= 1e-6 * b.abs(), "{what}: norm {a} vs {b}");
        *a = b;
    }
    assert_eq!(ours, theirs, "{what}");
}

fn check_parity(config: PresetConfig, test: &str) {
    for placement in [Placement::Host, Placement::Device] {
        check_parity_on(&config, &format!("{test}-{placement:?}"), placement);
    }
}

fn check_parity_on(config: &PresetConfig, test: &str, placement: Placement) {
    let config = config.clone();
    let mlp = Mlp::new(7);
    let mut core = CoreRun::new(&config, &mlp);
    let mut opt = build(&mlp, &config, placement);
    let path = temp_dir(test).join("opt.safetensors");
    for b in 0..12 {
        let grads = mlp.grads(b);
        let ours = opt.try_step(&grads).unwrap();
        let theirs = core.step(&mlp, &grads);
        assert_info_eq(ours, theirs, &format!("step info at step {b}"));
        assert_bits_eq(&mlp.values(), &core.bufs, &format!("y after step {b}"));
        let x: Vec<Vec<f32>> = opt
            .eval_point()
            .unwrap()
            .iter()
            .map(|(_, t)| f32s(t))
            .collect();
        assert_bits_eq(&x, &core.eval_point(), &format!("x after step {b}"));
        if b == 5 {
            // Save, then continue with a fresh optimizer over the same vars.
            opt.save(&path).unwrap();
            opt = build(&mlp, &config, placement);
            opt.load(&path).unwrap();
            assert_info_eq(opt.step_info().unwrap(), theirs, "step info after a load");
        }
    }
    if opt.has_modes() {
        let y0 = mlp.values();
        assert_ne!(
            y0,
            core.eval_point(),
            "x and y coincide: the test would not see a swap"
        );
        {
            let _g = opt.eval_guard().unwrap();
            assert_bits_eq(&mlp.values(), &core.eval_point(), "x inside the guard");
        }
        assert_bits_eq(&mlp.values(), &y0, "y after the guard");
        opt.eval().unwrap();
        core.switch(false);
        assert_bits_eq(&mlp.values(), &core.bufs, "x after eval()");
        opt.train().unwrap();
        core.switch(true);
        assert_bits_eq(&mlp.values(), &core.bufs, "y after train()");
    }
    // One more step after the mode round trip still agrees.
    let grads = mlp.grads(99);
    opt.try_step(&grads).unwrap();
    core.step(&mlp, &grads);
    assert_bits_eq(&mlp.values(), &core.bufs, "y after the last step");
}

#[test]
fn adamw_schedule_free_matches_the_core() {
    check_parity(sf_adamw(), "parity-sf-adamw");
}

#[test]
fn sgd_schedule_free_and_reference_forms_match_the_core() {
    let sgd = SgdScheduleFree {
        lr: 0.2,
        warmup_steps: 2,
        weight_decay: 1e-3,
        ..Default::default()
    };
    check_parity(PresetConfig::SgdScheduleFree(sgd), "parity-sf-sgd");
    check_parity(
        PresetConfig::SgdScheduleFreeReference(sgd),
        "parity-sf-sgd-ref",
    );
    let adam = AdamWScheduleFree {
        lr: 0.03,
        inner_momentum: 0.9,
        ..Default::default()
    };
    check_parity(
        PresetConfig::AdamWScheduleFreePaper(adam),
        "parity-sf-adamw-paper",
    );
}

#[test]
fn adamw_last_iterate_preset_matches_the_core() {
    let config: PresetConfig = serde_json::from_str(
        r#"{"method": "adamw", "config": {"lr": 0.02, "weight_decay": 0.1},
            "schedule": {"kind": "cosine", "warmup": 2, "total": 20, "end": 0.0}}"#,
    )
    .unwrap();
    let mut opt = ScheduleFreeOptimizer::from_varmap(&Mlp::new(1).varmap, config.clone()).unwrap();
    assert!(!opt.has_modes());
    assert!(opt.eval_guard().is_ok());
    check_parity(config, "parity-adamw");
}

#[test]
fn vars_without_a_gradient_are_not_moved_and_get_no_state() {
    let mlp = Mlp::new(3);
    let unused = mlp
        .varmap
        .get(4, "unused", candle_nn::init::ONE, DType::F32, &Device::Cpu)
        .unwrap();
    let mut opt = ScheduleFreeOptimizer::from_varmap(&mlp.varmap, sf_adamw()).unwrap();
    for b in 0..3 {
        opt.try_step(&mlp.grads(b)).unwrap();
    }
    assert_eq!(f32s(&unused), vec![1.0; 4]);
    let st = opt.state().unwrap();
    assert!(!st.params["unused"].has_state);
    assert!(st.params["l1.weight"].has_state);
    // Mode switches and guards leave it alone too.
    opt.eval().unwrap();
    opt.train().unwrap();
    assert_eq!(f32s(&unused), vec![1.0; 4]);
}

#[test]
fn trait_constructor_names_vars_in_order_and_steps_like_the_core() {
    let mlp = Mlp::new(5);
    let vars: Vec<Var> = mlp.vars().into_iter().map(|(_, v)| v).collect();
    let mut opt = <ScheduleFreeOptimizer as Optimizer>::new(vars.clone(), sf_adamw()).unwrap();
    let names: Vec<&str> = opt.vars().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["p0000", "p0001", "p0002", "p0003"]);
    for ((_, a), b) in opt.vars().iter().zip(&vars) {
        assert_eq!(a.id(), b.id());
    }
    let mut core = CoreRun::new(&sf_adamw(), &mlp);
    for b in 0..4 {
        let grads = mlp.grads(b);
        opt.step(&grads).unwrap();
        core.step(&mlp, &grads);
    }
    assert_bits_eq(&mlp.values(), &core.bufs, "y");
    assert_eq!(opt.learning_rate(), 0.05);
}

#[test]
fn f64_vars_run_on_the_f64_core() {
    for placement in [Placement::Host, Placement::Device] {
        f64_parity(placement);
    }
}

fn f64_parity(placement: Placement) {
    let w = Var::from_tensor(&Tensor::new(&[1.0f64, -2.0, 0.5], &Device::Cpu).unwrap()).unwrap();
    let target = Tensor::new(&[0.25f64, 0.5, -1.0], &Device::Cpu).unwrap();
    let config = sf_adamw();
    let mut opt = ScheduleFreeOptimizer::from_vars(vec![w.clone()], config.clone()).unwrap();
    opt.set_placement(placement).unwrap();
    assert_eq!(opt.dtype(), DType::F64);
    let mut core = config.build_dyn::<f64>().unwrap();
    core.add_param_to(0, "p0000", &[3]).unwrap();
    let mut y = f64s(&w);
    for _ in 0..10 {
        let loss = w
            .as_tensor()
            .sub(&target)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let g = f64s(grads.get(&w).unwrap());
        opt.try_step(&grads).unwrap();
        core.step(&mut [Param::new("p0000", &mut y, &g)]).unwrap();
        assert_eq!(f64s(&w), y);
    }
    let mut x = vec![0.0; 3];
    core.eval_params_into("p0000", &y, &mut x).unwrap();
    assert_eq!(f64s(&opt.eval_point().unwrap()[0].1), x);
}
