//! The tagged decay policies and the magnitude-based learners end to end on a candle
//! LayerNorm MLP: AdamC's corrected decay, the hypersphere projection (candle's `Linear`
//! weight is `[out, in]`: output units are rows, axis 0), the Polyak learner's loss,
//! diagnostics, and bit-exact resume with tags, radii and learner state restored from the
//! saved state (ALGORITHMS.md §10.4, §10.5, §11, §12.3).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use crate::common::{assert_bits_eq, batch, f32s, temp_dir};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{LayerNorm, Linear, Module, Optimizer, VarBuilder, VarMap, layer_norm, linear};
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection, RadiusInit};
use schedulefree::learner::{AdaGradNorm, Adam, Polyak, Prodigy};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{AdamC, PresetConfig, StepError};
use schedulefree_candle::{
    CandleAdapterError, ScheduleFreeOptimizer, TagRules, seeded_init, select_tags,
};

/// 3 → 8 → 8 → 2 with a LayerNorm after each hidden Linear.
struct LnMlp {
    varmap: VarMap,
    fc1: Linear,
    ln1: LayerNorm,
    fc2: Linear,
    ln2: LayerNorm,
    head: Linear,
}

impl LnMlp {
    fn new(seed: u64) -> Self {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let m = LnMlp {
            fc1: linear(3, 8, vb.pp("fc1")).unwrap(),
            ln1: layer_norm(8, 1e-5, vb.pp("ln1")).unwrap(),
            fc2: linear(8, 8, vb.pp("fc2")).unwrap(),
            ln2: layer_norm(8, 1e-5, vb.pp("ln2")).unwrap(),
            head: linear(8, 2, vb.pp("head")).unwrap(),
            varmap,
        };
        seeded_init(&m.varmap, seed).unwrap();
        m
    }

    /// Mean squared error on batch `b` of the shared fixed data.
    fn loss(&self, b: usize) -> Tensor {
        let (x, y) = batch(b);
        let h = norm(&self.ln1, &self.fc1.forward(&x).unwrap())
            .relu()
            .unwrap();
        let h = norm(&self.ln2, &self.fc2.forward(&h).unwrap())
            .relu()
            .unwrap();
        candle_nn::loss::mse(&self.head.forward(&h).unwrap(), &y).unwrap()
    }

    fn loss_value(&self, b: usize) -> f32 {
        self.loss(b).to_scalar::<f32>().unwrap()
    }

    fn vars(&self) -> Vec<(String, Var)> {
        let mut v: Vec<(String, Var)> = self
            .varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Values by name.
    fn values(&self) -> BTreeMap<String, Vec<f32>> {
        self.vars()
            .into_iter()
            .map(|(n, v)| (n, f32s(v.as_tensor())))
            .collect()
    }

    fn copy_from(&self, other: &LnMlp) {
        for ((_, a), (_, b)) in self.vars().iter().zip(other.vars()) {
            a.set(&b.as_tensor().copy().unwrap()).unwrap();
        }
    }

    /// `grads` (of another model of the same architecture) keyed by this model's vars.
    fn rekey(&self, other: &LnMlp, grads: &GradStore) -> GradStore {
        let mut g = GradStore::default();
        for ((_, mine), (_, theirs)) in self.vars().iter().zip(other.vars()) {
            if let Some(t) = grads.get(theirs.as_tensor()) {
                g.insert(mine.as_tensor(), t.copy().unwrap());
            }
        }
        g
    }
}

/// `ln` applied with candle's differentiable layer norm: `LayerNorm::forward` runs a fused
/// kernel without a backward pass on contiguous inputs (candle_nn 0.11.1), so no gradient
/// would reach the LayerNorm or the layers before it.
fn norm(ln: &LayerNorm, x: &Tensor) -> Tensor {
    candle_nn::ops::layer_norm_slow(x, ln.weight(), ln.bias().unwrap(), 1e-5).unwrap()
}

const NAMES: [&str; 10] = [
    "fc1.bias",
    "fc1.weight",
    "fc2.bias",
    "fc2.weight",
    "head.bias",
    "head.weight",
    "ln1.bias",
    "ln1.weight",
    "ln2.bias",
    "ln2.weight",
];

fn rules() -> TagRules {
    TagRules::standard()
        .normalized_regex(r"\.weight$")
        .unwrap()
        .exclude_path("head")
}

/// Norms of the rows of a row-major matrix with `cols` columns, in f64.
fn row_norms(w: &[f32], cols: usize) -> Vec<f64> {
    w.chunks(cols)
        .map(|r| {
            r.iter()
                .map(|v| f64::from(*v) * f64::from(*v))
                .sum::<f64>()
                .sqrt()
        })
        .collect()
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
    let a = LnMlp::new(3);
    let b = LnMlp::new(3);
    let mut opt_a =
        ScheduleFreeOptimizer::from_varmap_tagged(&a.varmap, adamc(0.5), &rules()).unwrap();
    let mut opt_b =
        ScheduleFreeOptimizer::from_varmap_tagged(&b.varmap, adamc(0.0), &rules()).unwrap();
    opt_a.set_diagnostics(true);
    let first = a.loss_value(0);
    // Both optimizers get the gradients of `a`, so vars without decay must agree.
    for step in 0..12 {
        let g = a.loss(step % 3).backward().unwrap();
        let info = opt_a.try_step(&g).unwrap();
        opt_b.try_step(&b.rekey(&a, &g)).unwrap();
        let lr = info.group.lr;
        let kappa: BTreeMap<String, f64> = opt_a
            .diagnostics()
            .into_iter()
            .map(|d| (d.name, d.kappa))
            .collect();
        // κ = λγ²/γ_max on normalized weights, λγ on the head, 0 on no-decay vars.
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * y.abs();
        assert!(
            close(kappa["fc1.weight"], 0.5 * lr * lr / 1e-2),
            "step {step}: {}",
            kappa["fc1.weight"]
        );
        assert!(close(kappa["fc2.weight"], 0.5 * lr * lr / 1e-2));
        assert!(close(kappa["head.weight"], 0.5 * lr));
        for n in [
            "fc1.bias",
            "ln1.weight",
            "ln1.bias",
            "ln2.weight",
            "head.bias",
        ] {
            assert_eq!(kappa[n], 0.0, "{n}");
        }
    }
    let (va, vb) = (a.values(), b.values());
    for v in select_tags(&a.varmap, &rules()).unwrap() {
        let same = va[&v.name]
            .iter()
            .zip(&vb[&v.name])
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert_eq!(
            same, v.tags.no_decay,
            "{}: equal to the run without decay iff no_decay",
            v.name
        );
    }
    let last = a.loss_value(0);
    assert!(last < first, "trains: {first} → {last}");
}

#[test]
fn projection_keeps_the_output_rows_of_candle_linear_weights() {
    let init = LnMlp::new(5).values();
    let run = |conversion: ConversionConfig, axis: usize| {
        let m = LnMlp::new(5);
        let preset = composed(
            LearnerConfig::Adam(Adam::default()),
            conversion,
            projected(axis),
            2e-2,
            0.1,
        );
        let mut opt =
            ScheduleFreeOptimizer::from_varmap_tagged(&m.varmap, preset, &rules()).unwrap();
        for step in 0..10 {
            opt.backward_step(&m.loss(step)).unwrap();
        }
        (m, opt)
    };
    for (name, cols) in [("fc1.weight", 3), ("fc2.weight", 8)] {
        let want = row_norms(&init[name], cols);
        // Last iterate: the vars hold the projected iterate itself.
        let (m, opt) = run(ConversionConfig::LastIterate, 0);
        let got = row_norms(&m.values()[name], cols);
        assert!(max_rel(&got, &want) < 1e-5, "{name}: {got:?} vs {want:?}");
        assert_ne!(m.values()[name], init[name], "{name} moved");
        let st = opt.state().unwrap();
        assert!(
            max_rel(st.params[name].radius.as_ref().unwrap(), &want) < 1e-12,
            "radius = initial row norms"
        );
        // Schedule-Free: z lives on the spheres (the vars hold y).
        let (_, opt) = run(schedule_free(), 0);
        let z: Vec<f32> = opt.state().unwrap().params[name].buffers["z"]
            .iter()
            .map(|v| *v as f32)
            .collect();
        assert!(
            max_rel(&row_norms(&z, cols), &want) < 1e-5,
            "{name}: z rows"
        );
        // Columns (axis 1, burn's layout) are the wrong axis for candle: rows drift.
        let (m, _) = run(ConversionConfig::LastIterate, 1);
        assert!(
            max_rel(&row_norms(&m.values()[name], cols), &want) > 1e-3,
            "{name}: axis 1 keeps columns, not rows"
        );
    }
    // The head is not tagged: decayed and not projected.
    let (m, _) = run(ConversionConfig::LastIterate, 0);
    assert!(
        max_rel(
            &row_norms(&m.values()["head.weight"], 8),
            &row_norms(&init["head.weight"], 8)
        ) > 1e-3
    );
}

#[test]
fn polyak_needs_the_loss() {
    let m = LnMlp::new(7);
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
    let mut opt = ScheduleFreeOptimizer::from_varmap_tagged(&m.varmap, preset, &rules()).unwrap();
    assert!(opt.needs_loss());
    let before = m.values();
    match opt.try_step(&m.loss(0).backward().unwrap()) {
        Err(CandleAdapterError::Step(StepError::LossRequired { learner })) => {
            assert_eq!(learner, "polyak")
        }
        other => panic!("expected LossRequired, got {other:?}"),
    }
    // candle's trait method reports it through candle's error.
    let msg = opt.backward_step(&m.loss(0)).unwrap_err().to_string();
    assert!(msg.contains("polyak"), "{msg}");
    // A loss with several elements is refused before anything runs.
    let (x, y) = batch(0);
    let per_example = (m
        .head
        .forward(&m.fc2.forward(&m.fc1.forward(&x).unwrap()).unwrap())
        .unwrap()
        - y)
        .unwrap()
        .sqr()
        .unwrap();
    match opt.backward_step_with_loss(&per_example) {
        Err(CandleAdapterError::LossShape { shape }) => assert_eq!(shape, [8, 2]),
        other => panic!("expected LossShape, got {other:?}"),
    }
    assert_eq!(m.values(), before, "nothing moved");
    assert_eq!(opt.step_info(), None);

    let first = m.loss_value(0);
    for step in 0..15 {
        let info = opt.backward_step_with_loss(&m.loss(step % 2)).unwrap();
        assert!(
            info.group.lr_factor > 0.0 && info.group.lr_factor <= 0.5,
            "Polyak step {}",
            info.group.lr_factor
        );
    }
    let g = m.loss(1).backward().unwrap();
    let info = opt.try_step_with_loss(&g, f64::NAN).unwrap();
    assert!(info.skipped.is_some(), "a non-finite loss skips the step");
    let last = m.loss_value(0);
    assert!(last < first, "trains: {first} → {last}");
}

#[test]
fn diagnostics_list_every_stepped_var() {
    let m = LnMlp::new(9);
    let mut opt =
        ScheduleFreeOptimizer::from_varmap_tagged(&m.varmap, adamc(0.1), &rules()).unwrap();
    opt.backward_step(&m.loss(0)).unwrap();
    assert!(opt.diagnostics().is_empty(), "off by default");
    opt.set_diagnostics(true);
    opt.backward_step(&m.loss(1)).unwrap();
    let diags = opt.diagnostics();
    let mut names: Vec<&str> = diags.iter().map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, NAMES);
    for d in &diags {
        assert_eq!(Some(d.tags), opt.param_tags(&d.name), "{}", d.name);
        assert!(
            d.grad_norm > 0.0 && d.weight_norm.is_finite() && d.update_norm > 0.0,
            "{d:?}"
        );
        assert_eq!(d.step, 2);
    }
    // Diagnostics stay on across a state load (which rebuilds the core).
    let st = opt.state().unwrap();
    opt.load_state(&st).unwrap();
    opt.backward_step(&m.loss(2)).unwrap();
    assert_eq!(opt.diagnostics().len(), NAMES.len());
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
                projected(0),
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

const N: usize = 10;

fn train(m: &LnMlp, opt: &mut ScheduleFreeOptimizer, steps: std::ops::Range<usize>) {
    for b in steps {
        opt.backward_step(&m.loss(b)).unwrap();
    }
}

fn bits(m: &LnMlp) -> Vec<Vec<f32>> {
    m.values().into_values().collect()
}

#[test]
fn resume_of_the_new_learners_and_policies_is_bit_exact() {
    for (name, preset) in resume_presets() {
        let want = LnMlp::new(11);
        let mut opt =
            ScheduleFreeOptimizer::from_varmap_tagged(&want.varmap, preset.clone(), &rules())
                .unwrap();
        train(&want, &mut opt, 0..N);
        let want_state = opt.state().unwrap();
        assert_ne!(bits(&want), bits(&LnMlp::new(11)), "{name}: trained");

        let half = LnMlp::new(11);
        let mut opt =
            ScheduleFreeOptimizer::from_varmap_tagged(&half.varmap, preset.clone(), &rules())
                .unwrap();
        train(&half, &mut opt, 0..N / 2);
        let st = opt.state().unwrap();
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
        let tags = opt.tags();
        assert!(tags.iter().any(|(_, t)| t.normalized) && tags.iter().any(|(_, t)| t.no_decay));

        // Optimizer file into an optimizer built without tags, over a copy of y.
        let dir = temp_dir(&format!("new-methods-{name}"));
        opt.save(&dir.join("opt.safetensors")).unwrap();
        let copy = LnMlp::new(99);
        copy.copy_from(&half);
        let mut loaded = ScheduleFreeOptimizer::from_varmap(&copy.varmap, preset.clone()).unwrap();
        loaded.load(&dir.join("opt.safetensors")).unwrap();
        assert_eq!(loaded.tags(), tags, "{name}: tags restored from the state");
        train(&copy, &mut loaded, N / 2..N);
        assert_bits_eq(
            &bits(&copy),
            &bits(&want),
            &format!("{name}: optimizer-file resume"),
        );
        assert_eq!(
            loaded.state().unwrap(),
            want_state,
            "{name}: optimizer-file state"
        );

        // Checkpoint into a fresh model (other weights) and an untagged optimizer.
        opt.save_checkpoint(&half.varmap, &dir.join("ckpt"))
            .unwrap();
        let fresh = LnMlp::new(77);
        let mut fresh_opt =
            ScheduleFreeOptimizer::from_varmap(&fresh.varmap, preset.clone()).unwrap();
        fresh_opt
            .load_checkpoint(&fresh.varmap, &dir.join("ckpt"))
            .unwrap();
        assert_eq!(
            fresh_opt.tags(),
            tags,
            "{name}: tags restored from the checkpoint"
        );
        assert_bits_eq(&bits(&fresh), &bits(&half), &format!("{name}: y restored"));
        train(&fresh, &mut fresh_opt, N / 2..N);
        assert_bits_eq(
            &bits(&fresh),
            &bits(&want),
            &format!("{name}: checkpoint resume"),
        );
        assert_eq!(
            fresh_opt.state().unwrap(),
            want_state,
            "{name}: checkpoint state"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_failed_load_changes_nothing() {
    let m = LnMlp::new(13);
    let preset = resume_presets().remove(0).1;
    let mut opt =
        ScheduleFreeOptimizer::from_varmap_tagged(&m.varmap, preset.clone(), &rules()).unwrap();
    train(&m, &mut opt, 0..3);
    let before = opt.state().unwrap();
    let mut bad = before.clone();
    // Radii for a var the projection does not cover (the head is not normalized).
    bad.params.get_mut("head.weight").unwrap().radius = Some(vec![1.0; 2]);
    assert!(matches!(
        opt.load_state(&bad),
        Err(CandleAdapterError::State(_))
    ));
    assert_eq!(opt.state().unwrap(), before);
    assert_eq!(
        opt.tags(),
        select_tags(&m.varmap, &rules())
            .unwrap()
            .into_iter()
            .map(|v| (v.name, v.tags))
            .collect::<Vec<_>>()
    );
    // f64 vars get the same tags.
    let vm = VarMap::new();
    let _ = linear(
        2,
        2,
        VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu).pp("fc"),
    )
    .unwrap();
    let opt = ScheduleFreeOptimizer::from_varmap_tagged(&vm, preset, &rules()).unwrap();
    assert_eq!(opt.dtype(), DType::F64);
    assert!(opt.param_tags("fc.weight").is_some_and(|t| t.normalized));
}
