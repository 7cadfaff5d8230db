//! Resume is bit-exact: N steps == N/2 steps, save, load into a fresh optimizer and model,
//! N/2 steps — through optimizer files and through checkpoints, in train and eval mode.
#![allow(clippy::unwrap_used)]

use crate::common::{Mlp, assert_bits_eq, f32s, sf_adamw, temp_dir};
use candle_core::{DType, Device};
use schedulefree::PresetConfig;
use schedulefree_candle::{
    CandleAdapterError, MODEL_FILE, OPTIMIZER_FILE, ScheduleFreeOptimizer, TRAIN_POINT_FILE,
};

const N: usize = 16;

/// The reference run: N uninterrupted steps.
fn straight(config: &PresetConfig) -> (Mlp, ScheduleFreeOptimizer) {
    let mlp = Mlp::new(21);
    let mut opt = ScheduleFreeOptimizer::from_varmap(&mlp.varmap, config.clone()).unwrap();
    for b in 0..N {
        opt.try_step(&mlp.grads(b)).unwrap();
    }
    (mlp, opt)
}

fn first_half(config: &PresetConfig) -> (Mlp, ScheduleFreeOptimizer) {
    let mlp = Mlp::new(21);
    let mut opt = ScheduleFreeOptimizer::from_varmap(&mlp.varmap, config.clone()).unwrap();
    for b in 0..N / 2 {
        opt.try_step(&mlp.grads(b)).unwrap();
    }
    (mlp, opt)
}

fn second_half(mlp: &Mlp, opt: &mut ScheduleFreeOptimizer) {
    for b in N / 2..N {
        opt.try_step(&mlp.grads(b)).unwrap();
    }
}

fn assert_same_run(
    a: (&Mlp, &ScheduleFreeOptimizer),
    b: (&Mlp, &ScheduleFreeOptimizer),
    what: &str,
) {
    assert_bits_eq(&a.0.values(), &b.0.values(), what);
    assert_eq!(
        a.1.state().unwrap(),
        b.1.state().unwrap(),
        "{what}: optimizer state"
    );
    assert_eq!(a.1.step_info(), b.1.step_info(), "{what}: step info");
}

#[test]
fn optimizer_file_resume_is_bit_exact() {
    let config = sf_adamw();
    let (ref_mlp, ref_opt) = straight(&config);
    let (mlp, opt) = first_half(&config);
    let path = temp_dir("resume-file").join("opt.safetensors");
    opt.save(&path).unwrap();
    drop(opt);
    // Fresh model with other weights; copy y over, as a user restores the model separately.
    let mlp2 = Mlp::new(99);
    mlp2.copy_from(&mlp);
    let mut opt2 = ScheduleFreeOptimizer::from_varmap(&mlp2.varmap, config).unwrap();
    opt2.load(&path).unwrap();
    second_half(&mlp2, &mut opt2);
    assert_same_run(
        (&ref_mlp, &ref_opt),
        (&mlp2, &opt2),
        "resumed from the optimizer file",
    );
}

#[test]
fn train_mode_checkpoint_resume_is_bit_exact_and_exports_x() {
    let config = sf_adamw();
    let (ref_mlp, ref_opt) = straight(&config);
    let (mlp, opt) = first_half(&config);
    let dir = temp_dir("resume-train");
    let x: Vec<Vec<f32>> = opt
        .eval_point()
        .unwrap()
        .iter()
        .map(|(_, t)| f32s(t))
        .collect();
    opt.save_checkpoint(&mlp.varmap, &dir).unwrap();
    assert!(dir.join(TRAIN_POINT_FILE).exists());
    // The model file is a plain VarMap file at x.
    let mut inference = Mlp::new(5);
    inference.varmap.load(dir.join(MODEL_FILE)).unwrap();
    assert_bits_eq(&inference.values(), &x, "model file at x");

    let mlp2 = Mlp::new(77);
    let mut opt2 = ScheduleFreeOptimizer::from_varmap(&mlp2.varmap, config).unwrap();
    opt2.load_checkpoint(&mlp2.varmap, &dir).unwrap();
    assert_bits_eq(&mlp2.values(), &mlp.values(), "vars at y after load");
    second_half(&mlp2, &mut opt2);
    assert_same_run(
        (&ref_mlp, &ref_opt),
        (&mlp2, &opt2),
        "resumed from a train-mode checkpoint",
    );
}

#[test]
fn eval_mode_checkpoint_resumes_like_pytorch_eval_then_train() {
    let config = sf_adamw();
    // Reference: N/2 steps, eval(), train(), N/2 steps, without saving.
    let (ref_mlp, mut ref_opt) = first_half(&config);
    ref_opt.eval().unwrap();
    ref_opt.train().unwrap();
    second_half(&ref_mlp, &mut ref_opt);

    let (mlp, mut opt) = first_half(&config);
    opt.eval().unwrap();
    let dir = temp_dir("resume-eval");
    // A stale train point from an earlier save must not be used.
    std::fs::write(dir.join(TRAIN_POINT_FILE), b"stale").unwrap();
    opt.save_checkpoint(&mlp.varmap, &dir).unwrap();
    assert!(!dir.join(TRAIN_POINT_FILE).exists());

    let mlp2 = Mlp::new(78);
    let mut opt2 = ScheduleFreeOptimizer::from_varmap(&mlp2.varmap, config).unwrap();
    opt2.load_checkpoint(&mlp2.varmap, &dir).unwrap();
    assert!(!opt2.is_train_mode());
    assert!(matches!(
        opt2.try_step(&mlp2.grads(0)),
        Err(CandleAdapterError::Step(
            schedulefree::StepError::EvalMode { .. }
        ))
    ));
    opt2.train().unwrap();
    second_half(&mlp2, &mut opt2);
    assert_same_run(
        (&ref_mlp, &ref_opt),
        (&mlp2, &opt2),
        "resumed from an eval-mode checkpoint",
    );
}

#[test]
fn checkpoint_files_of_different_saves_are_refused() {
    let config = sf_adamw();
    let (mlp, mut opt) = first_half(&config);
    let (a, b) = (temp_dir("resume-mix-a"), temp_dir("resume-mix-b"));
    opt.save_checkpoint(&mlp.varmap, &a).unwrap();
    opt.try_step(&mlp.grads(50)).unwrap();
    opt.save_checkpoint(&mlp.varmap, &b).unwrap();
    std::fs::copy(b.join(MODEL_FILE), a.join(MODEL_FILE)).unwrap();
    let mlp2 = Mlp::new(1);
    let mut opt2 = ScheduleFreeOptimizer::from_varmap(&mlp2.varmap, config).unwrap();
    let before = mlp2.values();
    let err = opt2.load_checkpoint(&mlp2.varmap, &a).unwrap_err();
    assert!(
        matches!(err, CandleAdapterError::CheckpointMismatch { .. }),
        "{err}"
    );
    assert_bits_eq(&mlp2.values(), &before, "vars untouched by a refused load");
    assert!(opt2.step_info().is_none());
    assert!(b.join(OPTIMIZER_FILE).exists());
}

#[test]
fn checkpoint_of_another_model_is_refused() {
    let config = sf_adamw();
    let (mlp, opt) = first_half(&config);
    let dir = temp_dir("resume-other-model");
    opt.save_checkpoint(&mlp.varmap, &dir).unwrap();
    // Same optimizer vars, plus one var the checkpoint does not have.
    let mlp2 = Mlp::new(1);
    let mut opt2 = ScheduleFreeOptimizer::from_varmap(&mlp2.varmap, config.clone()).unwrap();
    mlp2.varmap
        .get(
            2,
            "head.scale",
            candle_nn::init::ONE,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
    let err = opt2.load_checkpoint(&mlp2.varmap, &dir).unwrap_err();
    assert!(
        matches!(&err, CandleAdapterError::MissingTensor { name, .. } if name == "head.scale"),
        "{err}"
    );
    // An optimized var missing from the VarMap cannot be checkpointed.
    let other = Mlp::new(2);
    let err = opt2
        .save_checkpoint(&other.varmap, &temp_dir("resume-not-in-map"))
        .unwrap_err();
    assert!(
        matches!(err, CandleAdapterError::VarNotInVarMap { .. }),
        "{err}"
    );
}

#[test]
fn last_iterate_checkpoint_has_no_train_point_and_resumes() {
    let config: PresetConfig = serde_json::from_str(
        r#"{"method": "adamw", "config": {"lr": 0.02}, "schedule": {"kind": "linear", "warmup": 2, "total": 16}}"#,
    )
    .unwrap();
    let (ref_mlp, ref_opt) = straight(&config);
    let (mlp, opt) = first_half(&config);
    let dir = temp_dir("resume-adamw");
    opt.save_checkpoint(&mlp.varmap, &dir).unwrap();
    assert!(!dir.join(TRAIN_POINT_FILE).exists());
    let mlp2 = Mlp::new(3);
    let mut opt2 = ScheduleFreeOptimizer::from_varmap(&mlp2.varmap, config).unwrap();
    opt2.load_checkpoint(&mlp2.varmap, &dir).unwrap();
    second_half(&mlp2, &mut opt2);
    assert_same_run((&ref_mlp, &ref_opt), (&mlp2, &opt2), "last-iterate resume");
}

#[test]
fn checkpoint_resume_matches_state_by_varmap_name_whatever_the_var_order() {
    use candle_nn::Optimizer;
    let config = sf_adamw();
    let (ref_mlp, ref_opt) = straight(&config);
    // Saving run: positional names p0000.. in name order.
    let mlp = Mlp::new(21);
    let vars: Vec<_> = mlp.vars().into_iter().map(|(_, v)| v).collect();
    let mut opt = ScheduleFreeOptimizer::new(vars, config.clone()).unwrap();
    for b in 0..N / 2 {
        opt.try_step(&mlp.grads(b)).unwrap();
    }
    let dir = temp_dir("resume-order");
    opt.save_checkpoint(&mlp.varmap, &dir).unwrap();
    // Resuming run: the same positional names now point at other vars.
    let mlp2 = Mlp::new(8);
    let mut vars2: Vec<_> = mlp2.vars().into_iter().map(|(_, v)| v).collect();
    vars2.reverse();
    let mut opt2 = ScheduleFreeOptimizer::new(vars2, config).unwrap();
    opt2.load_checkpoint(&mlp2.varmap, &dir).unwrap();
    second_half(&mlp2, &mut opt2);
    assert_bits_eq(
        &ref_mlp.values(),
        &mlp2.values(),
        "vars after a reordered resume",
    );
    let x_ref: Vec<Vec<f32>> = ref_opt
        .eval_point()
        .unwrap()
        .iter()
        .map(|(_, t)| f32s(t))
        .collect();
    let mut x2: Vec<(String, Vec<f32>)> = opt2
        .eval_point()
        .unwrap()
        .iter()
        .map(|(n, t)| (n.clone(), f32s(t)))
        .collect();
    x2.reverse(); // p0003..p0000 = name order of the VarMap
    assert_bits_eq(
        &x_ref,
        &x2.into_iter().map(|(_, x)| x).collect::<Vec<_>>(),
        "x after a reordered resume",
    );
}
