//! Resume is bit-exact (DESIGN.md §4) for the learners with group state or per-element
//! statistics (AdaGrad-Norm, COCOB, Polyak, Prodigy) and for the decay policies of normalized
//! parameters (Corrected with and without a peak, Projected, NoDecay), in `f32` and `f64`:
//! `N` steps equal `N/2` steps, `save_json`, `load_json` into a freshly built optimizer
//! (parameters registered and passed in another order), `N/2` steps. State whose tags differ
//! from the registered ones is refused with a `StateError`.

use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::conversion::AveragingWeights;
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection};
use schedulefree::learner::{AdaGradNorm, Adam, Cocob, Polyak, Prodigy, Sgd};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{DynOptimizer, Element, OptimizerState, Param, ParamTags, StateError};

const N: usize = 24;
/// Registered names, shapes and tags: a normalized matrix, an ordinary vector, a no-decay bias.
const PARAMS: [(&str, &[usize], ParamTags); 3] = [
    ("norm", &[3, 4], ParamTags::NORMALIZED),
    (
        "plain",
        &[5],
        ParamTags {
            normalized: false,
            no_decay: false,
        },
    ),
    ("bias", &[2], ParamTags::NO_DECAY),
];

fn schedule_free() -> ConversionConfig {
    ConversionConfig::ScheduleFree {
        beta: 0.9,
        weights: AveragingWeights {
            r: 0.5,
            weight_lr_power: 2.0,
        },
        decoupling_c: 0.0,
    }
}

fn config(
    learner: LearnerConfig,
    conversion: ConversionConfig,
    normalized: NormalizedPolicy,
    lr: f64,
) -> Composed {
    Composed {
        learner,
        conversion,
        decay: DecayConfig {
            base: AnyDecay::DecoupledAtY,
            normalized,
        },
        schedule: ScheduleConfig::Linear {
            warmup: 3,
            total: N as u64 + 6,
            end: 0.1,
        },
        lr,
        weight_decay: 0.05,
    }
}

/// Every case: the new learners (under Schedule-Free, standard decay) and the new policies.
fn cases() -> Vec<(&'static str, Composed)> {
    let std = NormalizedPolicy::Standard;
    let adam = LearnerConfig::Adam(Adam::default());
    let last = ConversionConfig::LastIterate;
    vec![
        (
            "adagrad_norm",
            config(
                LearnerConfig::AdaGradNorm(AdaGradNorm::default()),
                schedule_free(),
                std,
                0.5,
            ),
        ),
        (
            "cocob",
            config(
                LearnerConfig::Cocob(Cocob::default()),
                schedule_free(),
                std,
                1.0,
            ),
        ),
        (
            "polyak",
            config(
                LearnerConfig::Polyak(Polyak::default()),
                schedule_free(),
                std,
                1.0,
            ),
        ),
        (
            "prodigy",
            config(
                LearnerConfig::Prodigy(Prodigy {
                    d0: 1e-3,
                    ..Default::default()
                }),
                last,
                std,
                1.0,
            ),
        ),
        (
            "prodigy_sf",
            config(
                LearnerConfig::Prodigy(Prodigy {
                    betas: (0.0, 0.999),
                    d0: 1e-3,
                    ..Default::default()
                }),
                schedule_free(),
                std,
                1.0,
            ),
        ),
        (
            "corrected_peak",
            config(
                adam,
                last,
                NormalizedPolicy::Corrected {
                    peak_lr: Some(0.05),
                },
                0.05,
            ),
        ),
        (
            "corrected_running_max",
            config(
                adam,
                last,
                NormalizedPolicy::Corrected { peak_lr: None },
                0.05,
            ),
        ),
        (
            "corrected_sf",
            config(
                LearnerConfig::Sgd(Sgd::plain()),
                schedule_free(),
                NormalizedPolicy::Corrected { peak_lr: None },
                0.3,
            ),
        ),
        (
            "projected",
            config(
                adam,
                last,
                NormalizedPolicy::Projected(Projection::default()),
                0.05,
            ),
        ),
        (
            "projected_sf",
            config(
                LearnerConfig::Sgd(Sgd::plain()),
                schedule_free(),
                NormalizedPolicy::Projected(Projection::default()),
                0.3,
            ),
        ),
        (
            "normalized_no_decay",
            config(adam, last, NormalizedPolicy::NoDecay, 0.05),
        ),
    ]
}

/// Build and register [`PARAMS`] in the given order.
fn build<T: Element>(c: &Composed, order: &[usize]) -> Box<dyn DynOptimizer<T>> {
    let mut o = c.build_dyn::<T>().expect("valid config");
    for &i in order {
        let (name, shape, tags) = PARAMS[i];
        o.add_param_tagged(0, name, shape, tags).expect("new name");
    }
    o
}

fn initial<T: Element>() -> Vec<Vec<T>> {
    PARAMS
        .iter()
        .enumerate()
        .map(|(p, (_, shape, _))| {
            let n: usize = shape.iter().product();
            (0..n)
                .map(|i| T::of(((p * 7 + i * 3) % 5) as f64 * 0.3 - 0.6))
                .collect()
        })
        .collect()
}

/// One step of the closed loop `g = w − target + noise(step)` on every parameter, passed in
/// `order`; the loss `½‖w − target‖²` goes to learners that need it.
fn step<T: Element>(o: &mut dyn DynOptimizer<T>, w: &mut [Vec<T>], t: usize, order: &[usize]) {
    let target = |p: usize, i: usize| ((p + i) as f64 * 0.7).sin();
    let mut loss = 0.0;
    let grads: Vec<Vec<T>> = w
        .iter()
        .enumerate()
        .map(|(p, v)| {
            v.iter()
                .enumerate()
                .map(|(i, x)| {
                    let r = x.f64() - target(p, i);
                    loss += 0.5 * r * r;
                    T::of(r + ((t * 7 + i * 13 + p) % 11) as f64 * 0.01 - 0.05)
                })
                .collect()
        })
        .collect();
    let mut slots: Vec<Option<&mut Vec<T>>> = w.iter_mut().map(Some).collect();
    let mut params: Vec<Param<'_, T>> = order
        .iter()
        .map(|&p| Param::new(PARAMS[p].0, slots[p].take().expect("once"), &grads[p]))
        .collect();
    let info = if o.needs_loss() {
        o.step_with_loss(&mut params, loss)
    } else {
        o.step(&mut params)
    }
    .expect("step");
    assert!(info.skipped.is_none());
}

fn bits<T: Element>(w: &[Vec<T>]) -> Vec<Vec<u64>> {
    w.iter()
        .map(|v| v.iter().map(|x| x.f64().to_bits()).collect())
        .collect()
}

fn state_path(name: &str, dtype: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("resume-new-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(format!("{name}-{dtype}.json"))
}

fn resume_is_bit_exact<T: Element>(name: &str, c: &Composed) {
    let straight: [usize; 3] = [0, 1, 2];
    let shuffled: [usize; 3] = [2, 0, 1];

    let mut full = build::<T>(c, &straight);
    let mut wf = initial::<T>();
    for t in 0..N {
        step(full.as_mut(), &mut wf, t, &straight);
    }

    let mut first = build::<T>(c, &straight);
    let mut w = initial::<T>();
    for t in 0..N / 2 {
        step(first.as_mut(), &mut w, t, &straight);
    }
    let path = state_path(name, &format!("{:?}", T::DTYPE));
    first.state().save_json(&path).expect("save");
    drop(first);
    let loaded = OptimizerState::load_json(&path).expect("load");
    let mut resumed = build::<T>(c, &[1, 2, 0]);
    resumed.load_state(&loaded).expect("matching state");
    for t in N / 2..N {
        step(resumed.as_mut(), &mut w, t, &shuffled);
    }
    assert_eq!(bits(&w), bits(&wf), "{name} {:?}: parameters", T::DTYPE);
    let (a, b) = (full.state(), resumed.state());
    assert_eq!(
        serde_json::to_string(&a).expect("json"),
        serde_json::to_string(&b).expect("json"),
        "{name} {:?}: optimizer state",
        T::DTYPE
    );
    // The run did something the resume had to carry over.
    assert!(
        bits(&w) != bits(&initial::<T>()),
        "{name}: parameters moved"
    );
    if matches!(c.decay.normalized, NormalizedPolicy::Projected(_)) {
        assert_eq!(
            a.params["norm"].radius.as_ref().map(Vec::len),
            Some(3),
            "{name}: radii saved"
        );
    }
    if !a.groups[0].learner_state.is_empty() {
        assert_eq!(a.groups[0].learner_state, b.groups[0].learner_state);
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn new_learners_and_policies_resume_bit_exactly_f64() {
    for (name, c) in cases() {
        resume_is_bit_exact::<f64>(name, &c);
    }
}

#[test]
fn new_learners_and_policies_resume_bit_exactly_f32() {
    for (name, c) in cases() {
        resume_is_bit_exact::<f32>(name, &c);
    }
}

/// State saved with `norm` tagged normalized does not load into an optimizer where it is not
/// (its decay, projection radii and slots would mean something else); nothing changes.
#[test]
fn state_with_other_tags_is_refused() {
    for (name, c) in cases() {
        let order = [0, 1, 2];
        let mut o = build::<f64>(&c, &order);
        let mut w = initial::<f64>();
        for t in 0..3 {
            step(o.as_mut(), &mut w, t, &order);
        }
        let saved = o.state();

        let mut other = c.build_dyn::<f64>().expect("config");
        for (i, (n, shape, tags)) in PARAMS.iter().enumerate() {
            let tags = if i == 0 { ParamTags::default() } else { *tags };
            other.add_param_tagged(0, n, shape, tags).expect("new");
        }
        let before = serde_json::to_string(&other.state()).expect("json");
        let e = other.load_state(&saved).expect_err("tags differ");
        match &e {
            StateError::Param { name: p, what } => {
                assert_eq!(p, "norm", "{name}");
                assert!(what.contains("tags"), "{name}: {what}");
            }
            other => panic!("{name}: expected StateError::Param, got {other:?}"),
        }
        assert_eq!(
            serde_json::to_string(&other.state()).expect("json"),
            before,
            "{name}: unchanged"
        );

        // Re-tagging to match makes the same state load.
        other
            .set_param_tags("norm", ParamTags::NORMALIZED)
            .expect("tags");
        other.load_state(&saved).expect("tags match now");
    }
}
