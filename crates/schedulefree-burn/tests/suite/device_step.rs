//! The device-resident step (`DeviceOptimizer`) against the host path (`ModelOptimizer`) on
//! burn's flex backend, whose element ops are exact: the same gradients give the same bits
//! of `y` after every step and of `x` at the end, for every preset of the parity suite; the
//! skip on a non-finite gradient, the refusals, and learners that read the gradient norms
//! (summed in `f32` on the device, in `f64` on the host) to rounding.

use crate::common;

use crate::common::{Mlp, grads, max_rel_diff, mse, presets, same_bits, temp_dir, values};
use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor};
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy};
use schedulefree::learner::{AdaGradNorm, Prodigy};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{PresetConfig, Skipped, StepError};
use schedulefree_burn::{
    BurnAdapterError, DeviceOptimizer, ModelOptimizer, Placement, TagRules, TensorOptimizer,
    checkpoint_model_path, load_checkpoint, save_checkpoint,
};

const STEPS: usize = 10;
const DIMS: [usize; 4] = [4, 8, 8, 3];

/// Host and device runs from the same model; the largest relative difference of `y` over
/// the run and of `x` at the end (0 when bit-identical), and whether every step was
/// bit-identical.
fn run_both(preset: &PresetConfig) -> (f64, bool) {
    let device = Device::default().autodiff();
    let model = Mlp::new(&device, &DIMS);
    let (mut host_m, mut dev_m) = (model.clone(), model);
    let mut host = ModelOptimizer::new(preset.clone()).expect("valid");
    let mut dev = DeviceOptimizer::new(preset.clone()).expect("valid");
    let (mut worst, mut exact) = (0.0f64, true);
    for step in 0..STEPS {
        let (hg, dg) = (grads(&host_m, step, &device), grads(&dev_m, step, &device));
        let (h, hi) = host.step(host_m, hg).expect("host");
        let (d, di) = dev.step(dev_m, dg).expect("device");
        (host_m, dev_m) = (h, d);
        assert_eq!(hi.skipped, di.skipped);
        assert_eq!(hi.group.k, di.group.k);
        let (a, b) = (values(&host_m), values(&dev_m));
        worst = worst.max(max_rel_diff(&a, &b));
        exact &= same_bits(&a, &b);
    }
    let (a, b) = (
        values(&host.eval_module(&host_m).expect("host x")),
        values(&dev.eval_module(&dev_m).expect("device x")),
    );
    worst = worst.max(max_rel_diff(&a, &b));
    exact &= same_bits(&a, &b);
    (worst, exact)
}

#[test]
fn device_step_gives_the_host_paths_bits_on_flex() {
    for preset in presets() {
        let (worst, exact) = run_both(&preset);
        assert!(exact, "{preset:?}: max relative difference {worst:e}");
    }
}

fn composed(learner: LearnerConfig) -> PresetConfig {
    PresetConfig::Composed(Composed {
        learner,
        conversion: ConversionConfig::ScheduleFree {
            beta: 0.9,
            weights: Default::default(),
            decoupling_c: 0.0,
        },
        decay: DecayConfig::standard(AnyDecay::DecoupledAtY),
        schedule: ScheduleConfig::Constant {},
        lr: 0.05,
        weight_decay: 0.01,
    })
}

#[test]
fn learners_reading_gradient_norms_follow_to_rounding() {
    let (worst, _) = run_both(&composed(
        LearnerConfig::AdaGradNorm(AdaGradNorm::default()),
    ));
    assert!(worst <= 1e-5, "AdaGrad-Norm: {worst:e}");
}

#[test]
fn a_non_finite_gradient_skips_the_step_on_the_device() {
    let device = Device::default().autodiff();
    let mut model = Mlp::new(&device, &DIMS);
    let mut dev = DeviceOptimizer::new(presets()[0].clone()).expect("valid");
    model = dev
        .step(model.clone(), grads(&model, 0, &device))
        .expect("step")
        .0;
    let before = values(&model);
    let z_before = dev.slot("layers.0.weight", "z").expect("state").into_data();
    // A NaN loss term poisons every gradient.
    let loss = mse(&model, 1, &device) * Tensor::<1>::from_floats([f32::NAN], &device);
    let g = GradientsParams::from_grads(loss.backward(), &model);
    let (after, info) = dev.step(model, g).expect("skipped, not refused");
    assert_eq!(info.skipped, Some(Skipped::NonFiniteGradient { index: 0 }));
    assert!(same_bits(&before, &values(&after)));
    assert_eq!(dev.core().step_count(), 1);
    let z_after = dev.slot("layers.0.weight", "z").expect("state").into_data();
    assert_eq!(z_before, z_after);
}

/// The projection of `normalized` rows (a row reduction) has no element program yet.
fn projected() -> PresetConfig {
    let mut p = composed(LearnerConfig::Adam(Default::default()));
    if let PresetConfig::Composed(c) = &mut p {
        c.decay = DecayConfig {
            base: AnyDecay::DecoupledAtY,
            normalized: NormalizedPolicy::Projected(Default::default()),
        };
    }
    p
}

fn normalized_first_layer() -> TagRules {
    TagRules::new().normalized_path("layers.0.weight")
}

/// Prodigy's pre-pass runs on the device: its sums (`f64` on flex, in burn's order) move `d`
/// from the host's by rounding only.
#[test]
fn prodigy_runs_on_the_device_and_follows_the_host_to_rounding() {
    let mut preset = composed(LearnerConfig::Prodigy(Prodigy {
        d0: 1e-3,
        ..Default::default()
    }));
    if let PresetConfig::Composed(c) = &mut preset {
        c.lr = 1.0; // Prodigy's customary lr: `d` grows within the run
    }
    let (worst, _) = run_both(&preset);
    assert!(worst <= 1e-5, "Prodigy: {worst:e}");
    // d grew, so the comparison covers the pre-pass.
    let device = Device::default().autodiff();
    let mut m = Mlp::new(&device, &DIMS);
    let mut dev = DeviceOptimizer::new(preset).expect("valid");
    for step in 0..STEPS {
        let g = grads(&m, step, &device);
        m = dev.step(m, g).expect("device").0;
    }
    let t = STEPS as i32;
    let bc = (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - 0.9f64.powi(t));
    let d = dev.core().group_info(0).expect("group").lr_factor / bc;
    assert!(d > 1.1e-3, "d = {d}");
}

#[test]
fn unsupported_methods_are_typed_errors() {
    let device = Device::default().autodiff();
    let model = Mlp::new(&device, &DIMS);
    let mut dev = DeviceOptimizer::new(projected())
        .expect("valid")
        .with_tag_rules(normalized_first_layer());
    let e = dev
        .step(model.clone(), grads(&model, 0, &device))
        .map(|_| ());
    assert!(
        matches!(e, Err(BurnAdapterError::Step(StepError::Program(_)))),
        "{e:?}"
    );
    assert_eq!(dev.core().step_count(), 0);
}

#[test]
fn other_float_dtypes_step_in_f32_as_on_the_host_path() {
    let device = Device::default().autodiff();
    for dtype in [DType::F64, DType::F16] {
        let model = Mlp::new(&device, &DIMS).map(&mut Cast(dtype));
        let (mut m, mut hm) = (model.clone(), model);
        let mut dev = DeviceOptimizer::new(presets()[0].clone()).expect("valid");
        let mut host = ModelOptimizer::new(presets()[0].clone()).expect("valid");
        for step in 0..3 {
            let g = GradientsParams::from_grads(mse_cast(&m, step, dtype, &device).backward(), &m);
            let hg =
                GradientsParams::from_grads(mse_cast(&hm, step, dtype, &device).backward(), &hm);
            m = dev.step(m, g).expect("device").0;
            hm = host.step(hm, hg).expect("host").0;
        }
        assert_eq!(m.layers[0].weight.val().dtype(), dtype, "the dtype is kept");
        assert!(same_bits(&values(&m), &values(&hm)), "{dtype:?}");
    }
}

struct Cast(DType);

impl burn::module::ModuleMapper for Cast {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        p.map(|t| Tensor::from_inner(t.inner().cast(dtype)).require_grad())
    }
}

fn mse_cast(m: &Mlp, seed: usize, dtype: DType, device: &Device) -> Tensor<1> {
    let x = common::matrix(6, DIMS[0], seed, device).cast(dtype);
    m.forward(x).powf_scalar(2.0).mean()
}

#[test]
fn saved_state_resumes_bit_exactly_in_either_optimizer() {
    let device = Device::default().autodiff();
    let preset = presets()[0].clone();
    let dir = temp_dir("device-resume");
    let start = Mlp::new(&device, &DIMS);
    let mut dev = DeviceOptimizer::new(preset.clone()).expect("valid");
    let mut host = ModelOptimizer::new(preset.clone()).expect("valid");
    let (mut m, mut hm) = (start.clone(), start);
    let mut saved = None;
    for step in 0..8 {
        if step == 4 {
            dev.save(&dir.join("device.json")).expect("saves");
            host.save(&dir.join("host.json")).expect("saves");
            saved = Some(m.clone());
        }
        let (g, hg) = (grads(&m, step, &device), grads(&hm, step, &device));
        m = dev.step(m, g).expect("step").0;
        hm = host.step(hm, hg).expect("step").0;
    }
    let saved = saved.expect("saved at step 4");
    let resume_device = |file: &str| {
        let mut r = DeviceOptimizer::new(preset.clone()).expect("valid");
        r.load(&dir.join(file)).expect("loads");
        let mut rm = saved.clone();
        for step in 4..8 {
            let g = grads(&rm, step, &device);
            rm = r.step(rm, g).expect("step").0;
        }
        (values(&rm), values(&r.eval_module(&rm).expect("x")))
    };
    let x = values(&dev.eval_module(&m).expect("x"));
    for file in ["device.json", "host.json"] {
        let (y, rx) = resume_device(file);
        assert!(same_bits(&y, &values(&m)), "y after resuming from {file}");
        assert!(same_bits(&rx, &x), "x after resuming from {file}");
    }
    // The device file on the host path.
    let mut r = ModelOptimizer::new(preset).expect("valid");
    r.load(&dir.join("device.json")).expect("loads");
    let mut rm = saved;
    for step in 4..8 {
        let g = grads(&rm, step, &device);
        rm = r.step(rm, g).expect("step").0;
    }
    assert!(same_bits(&values(&rm), &values(&hm)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mismatched_modules_and_states_are_typed_errors() {
    let device = Device::default().autodiff();
    let model = Mlp::new(&device, &DIMS);
    let mut dev = DeviceOptimizer::new(presets()[0].clone()).expect("valid");
    let g = grads(&model, 0, &device);
    let model = dev.step(model, g).expect("step").0;
    // Another architecture at x.
    let other = Mlp::new(&device, &[5, 8, 8, 3]);
    assert!(matches!(
        dev.eval_module(&other),
        Err(BurnAdapterError::Shape { .. })
    ));
    // The core's own state has no slot buffers: neither optimizer takes it as a checkpoint.
    let core_state = dev.core().state();
    let mut host = ModelOptimizer::new(presets()[0].clone()).expect("valid");
    assert!(matches!(
        host.load_state(&core_state),
        Err(BurnAdapterError::StateWithoutSlots { .. })
    ));
    let mut fresh = DeviceOptimizer::new(presets()[0].clone()).expect("valid");
    assert!(matches!(
        fresh.load_state(&core_state),
        Err(BurnAdapterError::StateWithoutSlots { .. })
    ));
    // What `state()` gives loads in both.
    let full = dev.state().expect("slots read back");
    host.load_state(&full).expect("host path");
    fresh.load_state(&full).expect("device path");
    drop(model);
}

#[test]
fn a_tensor_state_of_another_shape_is_a_recorded_error() {
    use burn::optim::Optimizer;
    let device = Device::default();
    let opt = TensorOptimizer::new(presets()[0].clone()).expect("valid");
    let t4 = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], &device);
    let (_, state) = opt.step(1e-3, t4.clone(), t4.clone(), None);
    assert!(state.is_some() && opt.take_error().is_none());
    let t5 = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0], &device);
    let (out, kept) = opt.step(1e-3, t5.clone(), t5.clone(), state);
    assert_eq!(out.into_data(), t5.into_data(), "the tensor is unchanged");
    assert!(kept.is_some(), "the state is handed back");
    assert!(matches!(
        opt.take_error(),
        Some(BurnAdapterError::Shape { .. })
    ));
}

#[test]
fn checkpoints_at_x_go_through_the_host_path_and_resume_exactly() {
    let device = Device::default().autodiff();
    let preset = presets()[0].clone();
    let dir = temp_dir("device-checkpoint");
    let mut m = Mlp::new(&device, &DIMS);
    let mut dev = DeviceOptimizer::new(preset.clone()).expect("valid");
    for step in 0..8 {
        if step == 4 {
            let host = dev.to_model_optimizer().expect("state read back");
            save_checkpoint(&m, &host, &dir).expect("saved");
            let x = values(&dev.eval_module(&m).expect("x"));
            let exported =
                Mlp::new(&device, &DIMS).load_file(checkpoint_model_path(&dir).expect("named"));
            assert!(same_bits(&values(&exported), &x), "the record holds x");
        }
        let g = grads(&m, step, &device);
        m = dev.step(m, g).expect("step").0;
    }
    let mut host = ModelOptimizer::new(preset.clone()).expect("valid");
    let mut rm = load_checkpoint(Mlp::new(&device, &DIMS), &mut host, &dir).expect("loads");
    let mut resumed = DeviceOptimizer::new(preset).expect("valid");
    resumed.load_from(&host).expect("takes the state");
    for step in 4..8 {
        let g = grads(&rm, step, &device);
        rm = resumed.step(rm, g).expect("step").0;
    }
    assert!(same_bits(&values(&rm), &values(&m)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn set_lr_acts_as_on_the_host_path() {
    let device = Device::default().autodiff();
    let model = Mlp::new(&device, &DIMS);
    let (mut m, mut hm) = (model.clone(), model);
    let mut dev = DeviceOptimizer::new(presets()[0].clone()).expect("valid");
    let mut host = ModelOptimizer::new(presets()[0].clone()).expect("valid");
    for step in 0..4 {
        let lr = 0.01 * (step + 1) as f64;
        dev.set_lr(lr).expect("valid lr");
        host.set_lr(lr).expect("valid lr");
        let (g, hg) = (grads(&m, step, &device), grads(&hm, step, &device));
        m = dev.step(m, g).expect("step").0;
        hm = host.step(hm, hg).expect("step").0;
    }
    assert_eq!(dev.group_config().map(|g| g.lr), Some(0.04));
    assert!(same_bits(&values(&m), &values(&hm)));
    assert!(matches!(dev.set_lr(-1.0), Err(BurnAdapterError::Config(_))));
}

/// `ModelOptimizer`'s placement: on flex `Auto` keeps the host path; a run that moves its
/// state host → device → host mid-training (with an lr change and a checkpoint in between)
/// gives the uninterrupted host run's bits, for every preset of the parity suite.
#[test]
fn model_optimizer_moves_its_state_between_paths_exactly() {
    let device = Device::default().autodiff();
    let dir = temp_dir("placement");
    for preset in presets() {
        let start = Mlp::new(&device, &DIMS);
        let mut host = ModelOptimizer::new(preset.clone()).expect("valid");
        let mut moved = ModelOptimizer::new(preset.clone()).expect("valid");
        assert_eq!(moved.placement(), Placement::Auto);
        let (mut hm, mut m) = (start.clone(), start);
        for step in 0..STEPS {
            let placement = match step {
                3..6 => Placement::Device,
                6..8 => Placement::Auto,
                _ => Placement::Host,
            };
            moved.set_placement(placement);
            if step == 4 {
                host.set_lr(0.005).expect("valid");
                moved.set_lr(0.005).expect("valid");
                save_checkpoint(&m, &moved, &dir).expect("saves from the device path");
                assert!(moved.on_device(), "saving leaves the state where it is");
            }
            let (hg, g) = (grads(&hm, step, &device), grads(&m, step, &device));
            hm = host.step(hm, hg).expect("host").0;
            m = moved.step(m, g).expect("moved").0;
            assert_eq!(moved.on_device(), placement == Placement::Device, "{step}");
            assert!(!host.on_device(), "Auto on flex is the host path");
            assert!(
                same_bits(&values(&hm), &values(&m)),
                "{preset:?} step {step}"
            );
        }
        assert_eq!(moved.group_config(), host.group_config());
        moved.set_placement(Placement::Device);
        let g = grads(&m, STEPS, &device);
        m = moved.step(m, g).expect("device").0;
        let g = grads(&hm, STEPS, &device);
        hm = host.step(hm, g).expect("host").0;
        let x = |o: &ModelOptimizer, m: &Mlp| values(&o.eval_module(m).expect("x"));
        assert!(same_bits(&x(&host, &hm), &x(&moved, &m)), "{preset:?}: x");
        // The slots read back are the host's (the record of the latest step's gradient norms
        // differs: summed in f32 on the device).
        let (hs, ms) = (
            host.state().expect("host"),
            moved.state().expect("read back"),
        );
        for (name, rec) in &hs.params {
            assert_eq!(rec.buffers, ms.params[name].buffers, "{preset:?}: {name}");
        }

        // The checkpoint written on the device path resumes on the host path.
        let mut resumed = ModelOptimizer::new(preset.clone()).expect("valid");
        let mut rm = load_checkpoint(Mlp::new(&device, &DIMS), &mut resumed, &dir).expect("loads");
        assert!(!resumed.on_device());
        let mut reference = ModelOptimizer::new(preset.clone()).expect("valid");
        let mut refm = Mlp::new(&device, &DIMS);
        for step in 0..4 {
            let g = grads(&refm, step, &device);
            refm = reference.step(refm, g).expect("reference").0;
        }
        reference.set_lr(0.005).expect("valid");
        for step in 4..6 {
            let (g, rg) = (grads(&rm, step, &device), grads(&refm, step, &device));
            rm = resumed.step(rm, g).expect("resumed").0;
            refm = reference.step(refm, rg).expect("reference").0;
        }
        assert!(
            same_bits(&values(&rm), &values(&refm)),
            "{preset:?}: resume"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn forcing_the_device_path_on_an_uncovered_preset_is_a_typed_error() {
    let device = Device::default().autodiff();
    let model = Mlp::new(&device, &DIMS);
    let mut opt = ModelOptimizer::new(projected())
        .expect("valid")
        .with_tag_rules(normalized_first_layer())
        .with_placement(Placement::Device);
    let e = opt
        .step(model.clone(), grads(&model, 0, &device))
        .map(|_| ());
    assert!(
        matches!(e, Err(BurnAdapterError::Step(StepError::Program(_)))),
        "{e:?}"
    );
    assert_eq!(opt.core().step_count(), 0);
    // Back on the host path it trains.
    opt.set_placement(Placement::Auto);
    opt.step(model.clone(), grads(&model, 0, &device))
        .expect("host path");
    assert!(!opt.on_device());
    assert_eq!(opt.core().step_count(), 1);
}
