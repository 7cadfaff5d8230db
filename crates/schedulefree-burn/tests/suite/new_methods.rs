//! The tagged decay policies and the magnitude-based learners end to end through
//! `ModelOptimizer` on a LayerNorm MLP: AdamC's corrected decay, the hypersphere projection
//! (burn's `Linear` weight is `[d_input, d_output]`: output units are columns, axis 1), the
//! Polyak learner's loss, diagnostics, and bit-exact resume with tags, radii and learner state
//! restored from the saved state (ALGORITHMS.md §10.4, §10.5, §11, §12.3).

use std::collections::BTreeMap;

use crate::common::{matrix, same_bits, temp_dir, values};
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection, RadiusInit};
use schedulefree::learner::{AdaGradNorm, Adam, Polyak, Prodigy};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{AdamC, PresetConfig, StepError};
use schedulefree_burn::{
    BurnAdapterError, ModelOptimizer, TagRules, load_checkpoint, save_checkpoint, select_tags,
};

/// 4 → 8 → 8 → 3 with a LayerNorm after each hidden Linear.
#[derive(Module, Debug)]
struct LnMlp {
    fc1: Linear,
    ln1: LayerNorm,
    fc2: Linear,
    ln2: LayerNorm,
    head: Linear,
}

impl LnMlp {
    fn new(device: &Device) -> Self {
        LnMlp {
            fc1: LinearConfig::new(4, 8).init(device),
            ln1: LayerNormConfig::new(8).init(device),
            fc2: LinearConfig::new(8, 8).init(device),
            ln2: LayerNormConfig::new(8).init(device),
            head: LinearConfig::new(8, 3).init(device),
        }
    }
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = relu(self.ln1.forward(self.fc1.forward(x)));
        let h = relu(self.ln2.forward(self.fc2.forward(h)));
        self.head.forward(h)
    }
}

const PATHS: [&str; 10] = [
    "fc1.bias",
    "fc1.weight",
    "fc2.bias",
    "fc2.weight",
    "head.bias",
    "head.weight",
    "ln1.beta",
    "ln1.gamma",
    "ln2.beta",
    "ln2.gamma",
];

fn rules() -> TagRules {
    TagRules::standard()
        .normalized_layer_type("Linear", "weight")
        .exclude_path("head")
}

fn loss(m: &LnMlp, seed: usize, device: &Device) -> Tensor<1> {
    let x = matrix(6, 4, seed, device);
    let t = matrix(6, 3, seed + 1000, device);
    (m.forward(x) - t).powf_scalar(2.0).mean()
}

/// Gradients of batch `seed` and the loss value.
fn grads(m: &LnMlp, seed: usize, device: &Device) -> (GradientsParams, f64) {
    let l = loss(m, seed, device);
    let value = f64::from(l.clone().into_scalar::<f32>());
    (GradientsParams::from_grads(l.backward(), m), value)
}

/// A second `GradientsParams` with the same gradients (burn's is not `Clone`).
fn dup(g: &GradientsParams, m: &LnMlp) -> GradientsParams {
    struct Dup<'a>(&'a GradientsParams, GradientsParams);
    impl ModuleVisitor for Dup<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(t) = self.0.get::<D>(p.id) {
                self.1.register(p.id, t);
            }
        }
    }
    let mut c = Dup(g, GradientsParams::new());
    m.visit(&mut c);
    c.1
}

/// Norms of the columns of a row-major `[rows, cols]` matrix, in f64.
fn column_norms(w: &[f32], cols: usize) -> Vec<f64> {
    let mut sq = vec![0.0_f64; cols];
    for (i, v) in w.iter().enumerate() {
        sq[i % cols] += f64::from(*v) * f64::from(*v);
    }
    sq.into_iter().map(f64::sqrt).collect()
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs())
        .fold(0.0, f64::max)
}

fn composed(
    learner: LearnerConfig,
    conversion: ConversionConfig,
    decay: DecayConfig,
    lr: f64,
    weight_decay: f64,
) -> PresetConfig {
    PresetConfig::Composed(Composed {
        learner,
        conversion,
        decay,
        schedule: ScheduleConfig::Constant {},
        lr,
        weight_decay,
    })
}

fn schedule_free() -> ConversionConfig {
    ConversionConfig::ScheduleFree {
        beta: 0.9,
        weights: Default::default(),
        decoupling_c: 0.0,
    }
}

fn projected(axis: usize) -> DecayConfig {
    DecayConfig {
        base: AnyDecay::Decoupled,
        normalized: NormalizedPolicy::Projected(Projection {
            axis,
            radius: RadiusInit::Initial,
            min_radius: 1e-3,
        }),
    }
}

fn adamc(weight_decay: f64) -> PresetConfig {
    PresetConfig::AdamC {
        config: AdamC {
            lr: 1e-2,
            weight_decay,
            ..Default::default()
        },
        schedule: ScheduleConfig::Linear {
            warmup: 2,
            total: 12,
            end: 0.1,
        },
    }
}

#[test]
fn adamc_corrects_normalized_weights_and_spares_no_decay_ones() {
    let device = Device::default().autodiff();
    let mut a = LnMlp::new(&device);
    let mut b = a.clone();
    let mut opt_a = ModelOptimizer::new(adamc(0.5))
        .expect("valid")
        .with_tag_rules(rules());
    let mut opt_b = ModelOptimizer::new(adamc(0.0))
        .expect("valid")
        .with_tag_rules(rules());
    opt_a.set_diagnostics(true);
    let first = f64::from(loss(&a, 0, &device).into_scalar::<f32>());
    // Both optimizers get the gradients of `a`, so parameters without decay must agree.
    for step in 0..12 {
        let (g, _) = grads(&a, step % 3, &device);
        let g2 = dup(&g, &a);
        a = opt_a.step(a, g).expect("step").0;
        b = opt_b.step(b, g2).expect("step").0;
        let lr = opt_a.group_info().expect("group").lr;
        let kappa: BTreeMap<String, f64> = opt_a
            .diagnostics()
            .into_iter()
            .map(|d| (d.name, d.kappa))
            .collect();
        // κ = λγ²/γ_max on normalized weights, λγ on the head, 0 on no-decay parameters.
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * y.abs();
        assert!(
            close(kappa["fc1.weight"], 0.5 * lr * lr / 1e-2),
            "step {step}: {}",
            kappa["fc1.weight"]
        );
        assert!(close(kappa["fc2.weight"], 0.5 * lr * lr / 1e-2));
        assert!(close(kappa["head.weight"], 0.5 * lr));
        for p in [
            "fc1.bias",
            "ln1.gamma",
            "ln1.beta",
            "ln2.gamma",
            "head.bias",
        ] {
            assert_eq!(kappa[p], 0.0, "{p}");
        }
    }
    let (va, vb) = (values(&a), values(&b));
    for p in select_tags(&a, &rules()).expect("readable") {
        let same = same_bits(
            &BTreeMap::from([(p.path.clone(), va[&p.path].clone())]),
            &BTreeMap::from([(p.path.clone(), vb[&p.path].clone())]),
        );
        assert_eq!(
            same, p.tags.no_decay,
            "{}: equal to the run without decay iff no_decay",
            p.path
        );
    }
    let last = f64::from(loss(&a, 0, &device).into_scalar::<f32>());
    assert!(last < first, "trains: {first} → {last}");
}

#[test]
fn projection_keeps_the_output_columns_of_burn_linear_weights() {
    let device = Device::default().autodiff();
    let start = LnMlp::new(&device);
    let init = values(&start);
    let run = |conversion: ConversionConfig, axis: usize| {
        let preset = composed(
            LearnerConfig::Adam(Adam::default()),
            conversion,
            projected(axis),
            2e-2,
            0.1,
        );
        let mut opt = ModelOptimizer::new(preset)
            .expect("valid")
            .with_tag_rules(rules());
        let mut m = start.clone();
        for step in 0..10 {
            let g = grads(&m, step, &device).0;
            m = opt.step(m, g).expect("step").0;
        }
        (m, opt)
    };
    for name in ["fc1.weight", "fc2.weight"] {
        let want = column_norms(&init[name], 8);
        // Last iterate: the module holds the projected iterate itself.
        let (m, opt) = run(ConversionConfig::LastIterate, 1);
        let got = column_norms(&values(&m)[name], 8);
        assert!(max_rel(&got, &want) < 1e-5, "{name}: {got:?} vs {want:?}");
        assert!(!same_bits(&values(&m), &init), "the weights moved");
        let radius = opt.state().expect("state").params[name]
            .radius
            .clone()
            .expect("radii are saved");
        assert!(
            max_rel(&radius, &want) < 1e-12,
            "radius = initial column norms"
        );
        // Schedule-Free: z lives on the spheres (the module holds y).
        let (_, opt) = run(schedule_free(), 1);
        let z = opt.core().state_buffer(name, "z").expect("z");
        assert!(
            max_rel(&column_norms(&z, 8), &want) < 1e-5,
            "{name}: z columns"
        );
        // Rows (axis 0, PyTorch's layout) are the wrong axis for burn: columns drift.
        let (m, _) = run(ConversionConfig::LastIterate, 0);
        assert!(
            max_rel(&column_norms(&values(&m)[name], 8), &want) > 1e-3,
            "{name}: axis 0 keeps rows, not columns"
        );
    }
    // The head is not tagged: decayed and not projected.
    let (m, _) = run(ConversionConfig::LastIterate, 1);
    assert!(
        max_rel(
            &column_norms(&values(&m)["head.weight"], 3),
            &column_norms(&init["head.weight"], 3)
        ) > 1e-3
    );
}

#[test]
fn polyak_needs_the_loss() {
    let device = Device::default().autodiff();
    let preset = composed(
        LearnerConfig::Polyak(Polyak {
            f_min: 0.0,
            max_lr: 0.5,
            eps: 1e-8,
        }),
        schedule_free(),
        DecayConfig::default(),
        1.0,
        0.0,
    );
    let mut opt = ModelOptimizer::new(preset)
        .expect("valid")
        .with_tag_rules(rules());
    assert!(opt.core().needs_loss());
    let mut m = LnMlp::new(&device);
    let before = values(&m);
    match opt.step(m.clone(), grads(&m, 0, &device).0) {
        Err(BurnAdapterError::Step(StepError::LossRequired { learner })) => {
            assert_eq!(learner, "polyak")
        }
        other => panic!("expected LossRequired, got {:?}", other.map(|(_, i)| i)),
    }
    assert_eq!(opt.group_info().expect("group").k, 0, "no step taken");
    assert!(
        opt.state()
            .expect("state")
            .params
            .values()
            .all(|p| !p.has_state),
        "no state after the refused step"
    );
    let first = f64::from(loss(&m, 0, &device).into_scalar::<f32>());
    for step in 0..15 {
        let (g, f) = grads(&m, step % 2, &device);
        let info;
        (m, info) = opt.step_with_loss(m, g, f).expect("step with loss");
        assert!(
            info.group.lr_factor > 0.0 && info.group.lr_factor <= 0.5,
            "Polyak step {}",
            info.group.lr_factor
        );
    }
    assert!(!same_bits(&values(&m), &before));
    let last = f64::from(loss(&m, 0, &device).into_scalar::<f32>());
    assert!(last < first, "trains: {first} → {last}");
}

#[test]
fn diagnostics_list_every_stepped_path() {
    let device = Device::default().autodiff();
    let mut opt = ModelOptimizer::new(adamc(0.1))
        .expect("valid")
        .with_tag_rules(rules());
    let m = LnMlp::new(&device);
    let m = opt
        .step(m.clone(), grads(&m, 0, &device).0)
        .expect("step")
        .0;
    assert!(opt.diagnostics().is_empty(), "off by default");
    opt.set_diagnostics(true);
    opt.step(m.clone(), grads(&m, 1, &device).0).expect("step");
    let diags = opt.diagnostics();
    let mut names: Vec<&str> = diags.iter().map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, PATHS);
    for d in &diags {
        assert_eq!(Some(d.tags), opt.core().param_tags(&d.name), "{}", d.name);
        assert!(
            d.grad_norm > 0.0 && d.weight_norm.is_finite() && d.update_norm > 0.0,
            "{d:?}"
        );
        assert_eq!(d.step, 2);
    }
}

/// Presets whose state goes beyond per-element slots: projection radii, Prodigy's `d` and
/// `r`, AdaGrad-Norm's `b²`.
fn resume_presets() -> Vec<(&'static str, PresetConfig)> {
    let corrected = DecayConfig {
        base: AnyDecay::Decoupled,
        normalized: NormalizedPolicy::Corrected { peak_lr: None },
    };
    vec![
        (
            "projected",
            composed(
                LearnerConfig::Adam(Adam::default()),
                schedule_free(),
                projected(1),
                2e-2,
                0.1,
            ),
        ),
        (
            "prodigy",
            composed(
                LearnerConfig::Prodigy(Prodigy::default()),
                schedule_free(),
                corrected,
                1.0,
                0.01,
            ),
        ),
        (
            "adagrad_norm",
            PresetConfig::Composed(Composed {
                learner: LearnerConfig::AdaGradNorm(AdaGradNorm { b0: 0.1 }),
                conversion: ConversionConfig::LastIterate,
                decay: DecayConfig::standard(AnyDecay::Decoupled),
                schedule: ScheduleConfig::Cosine {
                    warmup: 2,
                    total: 12,
                    end: 0.0,
                },
                lr: 0.5,
                weight_decay: 0.01,
            }),
        ),
    ]
}

const STEPS: usize = 10;
const SAVE_AT: usize = 5;

fn train(
    m: LnMlp,
    opt: &mut ModelOptimizer,
    steps: std::ops::Range<usize>,
    device: &Device,
) -> LnMlp {
    steps.fold(m, |m, step| {
        let g = grads(&m, step, device).0;
        opt.step(m, g).expect("step").0
    })
}

#[test]
fn resume_of_the_new_learners_and_policies_is_bit_exact() {
    let device = Device::default().autodiff();
    for (name, preset) in resume_presets() {
        let start = LnMlp::new(&device);
        let mut opt = ModelOptimizer::new(preset.clone())
            .expect("valid")
            .with_tag_rules(rules());
        let want = train(start.clone(), &mut opt, 0..STEPS, &device);
        let (want_y, want_state) = (values(&want), opt.state().expect("state"));
        assert!(!same_bits(&want_y, &values(&start)), "{name}: trained");

        let mut opt = ModelOptimizer::new(preset.clone())
            .expect("valid")
            .with_tag_rules(rules());
        let half = train(start.clone(), &mut opt, 0..SAVE_AT, &device);
        let st = opt.state().expect("state");
        match name {
            "projected" => assert!(
                st.params["fc1.weight"].radius.is_some()
                    && st.params["head.weight"].radius.is_none()
            ),
            _ => assert!(
                !st.groups[0].learner_state.is_empty(),
                "{name}: learner state saved"
            ),
        }
        let tags: BTreeMap<&str, _> = PATHS
            .iter()
            .map(|p| (*p, opt.core().param_tags(p)))
            .collect();
        assert!(
            tags["fc1.weight"].is_some_and(|t| t.normalized)
                && tags["ln1.gamma"].is_some_and(|t| t.no_decay)
        );

        // ModelOptimizer::save / load into an optimizer built without tag rules.
        let dir = temp_dir(&format!("new-methods-{name}"));
        opt.save(&dir.join("opt.json")).expect("save");
        let mut loaded = ModelOptimizer::new(preset.clone()).expect("valid");
        loaded.load(&dir.join("opt.json")).expect("load");
        for p in PATHS {
            assert_eq!(
                loaded.core().param_tags(p),
                tags[p],
                "{name}: tags of {p} restored from the state"
            );
        }
        let resumed = train(half.clone(), &mut loaded, SAVE_AT..STEPS, &device);
        assert!(
            same_bits(&values(&resumed), &want_y),
            "{name}: save/load resume"
        );
        assert_eq!(
            loaded.state().expect("state"),
            want_state,
            "{name}: save/load state"
        );

        // Checkpoint into a fresh model (other weights and ids) and a fresh optimizer.
        save_checkpoint(&half, &opt, &dir.join("ckpt")).expect("save checkpoint");
        let mut fresh_opt = ModelOptimizer::new(preset.clone()).expect("valid");
        let fresh = load_checkpoint(LnMlp::new(&device), &mut fresh_opt, &dir.join("ckpt"))
            .expect("load checkpoint");
        assert!(
            same_bits(&values(&fresh), &values(&half)),
            "{name}: y restored"
        );
        let resumed = train(fresh, &mut fresh_opt, SAVE_AT..STEPS, &device);
        assert!(
            same_bits(&values(&resumed), &want_y),
            "{name}: checkpoint resume"
        );
        assert_eq!(
            fresh_opt.state().expect("state"),
            want_state,
            "{name}: checkpoint state"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
