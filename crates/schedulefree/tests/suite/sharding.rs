//! Sharded parameters (`StepInputs::all_reduce`): one model's parameters split across two
//! optimizers stepping in two threads, whose global reductions (gradient norms, the non-finite
//! count, Prodigy's pre-pass sums, ScheduleFree+'s `⟨g, z − y⟩`, the loss) are summed through
//! channels, follow the trajectory of one optimizer holding every parameter.
//!
//! Bit-identical when each shard holds one tensor: the single optimizer adds per-tensor sums in
//! name order starting from 0, `(0 + s_a) + s_b = s_a + s_b`, exactly what the all-reduce
//! computes (and `x + y = y + x` in IEEE arithmetic, so both shards get the same bits). With
//! several tensors per shard the sums are reassociated, `((s_a1 + s_a2) + s_b1) + s_b2` against
//! `(s_a1 + s_a2) + (s_b1 + s_b2)`: one rounding of the global scalars (~1e-16 relative), which
//! the iterates inherit to about that size (≤ 1e-13 asserted).

use std::sync::mpsc::{Receiver, Sender, channel};

use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::conversion::AveragingWeights;
use schedulefree::decay::{AnyDecay, DecayConfig};
use schedulefree::learner::{AdaGradNorm, Polyak, Prodigy};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{Param, PresetConfig, ScheduleFreePlus, Skipped, StepInfo, StepInputs};

const STEPS: usize = 30;
/// The step at which one shard sees a NaN gradient (in the test that injects one).
const NAN_STEP: usize = 7;

/// One end of a two-party all-reduce over channels.
struct Peer {
    tx: Sender<Vec<f64>>,
    rx: Receiver<Vec<f64>>,
}

impl Peer {
    fn pair() -> (Peer, Peer) {
        let (tx0, rx1) = channel();
        let (tx1, rx0) = channel();
        (Peer { tx: tx0, rx: rx0 }, Peer { tx: tx1, rx: rx1 })
    }

    /// Element-wise sum with the other shard, in place (both get the same bits: addition of
    /// two values commutes exactly).
    fn all_reduce(&self, buf: &mut [f64]) {
        self.tx.send(buf.to_vec()).expect("peer alive");
        let other = self.rx.recv().expect("peer alive");
        assert_eq!(other.len(), buf.len(), "collective calls match");
        for (b, o) in buf.iter_mut().zip(other) {
            *b += o;
        }
    }
}

fn composed(learner: LearnerConfig, conversion: ConversionConfig) -> PresetConfig {
    PresetConfig::Composed(Composed {
        learner,
        conversion,
        decay: DecayConfig::standard(AnyDecay::DecoupledAtY),
        schedule: ScheduleConfig::Linear {
            warmup: 3,
            total: STEPS as u64,
            end: 0.0,
        },
        lr: 0.5,
        weight_decay: 0.01,
    })
}

fn cases() -> [(&'static str, PresetConfig); 5] {
    let sf = ConversionConfig::ScheduleFree {
        beta: 0.9,
        weights: AveragingWeights::default(),
        decoupling_c: 0.0,
    };
    [
        (
            "adagrad_norm",
            composed(
                LearnerConfig::AdaGradNorm(AdaGradNorm::default()),
                ConversionConfig::LastIterate,
            ),
        ),
        (
            "polyak",
            composed(LearnerConfig::Polyak(Polyak::default()), sf),
        ),
        (
            "prodigy",
            composed(
                LearnerConfig::Prodigy(Prodigy {
                    d0: 1e-3,
                    ..Default::default()
                }),
                ConversionConfig::LastIterate,
            ),
        ),
        (
            "prodigy_sf",
            composed(
                LearnerConfig::Prodigy(Prodigy {
                    betas: (0.0, 0.999),
                    d0: 1e-3,
                    ..Default::default()
                }),
                sf,
            ),
        ),
        (
            "schedule_free_plus",
            PresetConfig::ScheduleFreePlus(ScheduleFreePlus {
                weight_decay: 0.2,
                polyak_beta: 0.5,
                c_warmup: 2,
                sf_beta1_anneal_steps: 12,
                ..Default::default()
            }),
        ),
    ]
}

/// A parameter of the model: name and initial value.
#[derive(Clone)]
struct Tensor {
    name: &'static str,
    value: Vec<f64>,
}

fn model(split: bool) -> Vec<Tensor> {
    let t = |name, n: usize, s: f64| Tensor {
        name,
        value: (0..n).map(|i| ((i as f64 + s) * 1.3).sin()).collect(),
    };
    if split {
        vec![
            t("a1", 5, 0.0),
            t("a2", 3, 1.0),
            t("b1", 4, 2.0),
            t("b2", 6, 3.0),
        ]
    } else {
        vec![t("a", 6, 0.0), t("b", 4, 2.0)]
    }
}

/// Gradient of `½‖w − target‖²` plus deterministic noise, and the loss; NaN at [`NAN_STEP`]
/// when `poison`.
fn grad(t: &Tensor, step: usize, poison: bool) -> (Vec<f64>, f64) {
    let mut loss = 0.0;
    let g = t
        .value
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let r = w - (i as f64 * 0.4).cos();
            loss += 0.5 * r * r;
            if poison && step == NAN_STEP && i == 1 {
                f64::NAN
            } else {
                r + ((step * 5 + i) % 7) as f64 * 0.03 - 0.09
            }
        })
        .collect();
    (g, loss)
}

/// Run `tensors` on one optimizer; `peer` (if any) is this shard's end of the all-reduce. The loss passed
/// is the global one (all-reduced). Returns the final values and every step's info.
fn run(
    c: &PresetConfig,
    mut tensors: Vec<Tensor>,
    mut peer: Option<&mut Peer>,
    poison: bool,
) -> (Vec<Tensor>, Vec<StepInfo>) {
    let mut o = c.build_dyn::<f64>().expect("config");
    for t in &tensors {
        o.add_param_to(0, t.name, &[t.value.len()]).expect("new");
    }
    let mut infos = Vec::new();
    for step in 0..STEPS {
        let gl: Vec<(Vec<f64>, f64)> = tensors.iter().map(|t| grad(t, step, poison)).collect();
        let mut loss = [gl.iter().map(|(_, l)| l).sum::<f64>()];
        if let Some(p) = peer.as_deref_mut() {
            p.all_reduce(&mut loss);
        }
        let mut params: Vec<Param<'_, f64>> = tensors
            .iter_mut()
            .zip(&gl)
            .map(|(t, (g, _))| Param::new(t.name, &mut t.value, g))
            .collect();
        // `&mut Peer` is `Send` (a `Receiver` is not `Sync`), as the hook must be.
        let sharded = peer.is_some();
        let mut hook_peer = peer.as_deref_mut();
        let mut hook = move |buf: &mut [f64]| {
            if let Some(p) = hook_peer.as_deref_mut() {
                p.all_reduce(buf)
            }
        };
        let inputs = StepInputs {
            loss: o.needs_loss().then_some(loss[0]),
            all_reduce: sharded.then_some(&mut hook as &mut (dyn FnMut(&mut [f64]) + Send)),
        };
        infos.push(o.step_with(&mut params, inputs).expect("step"));
    }
    (tensors, infos)
}

/// The model on one optimizer, and split in two halves (first half of the tensors on shard 0)
/// running in two threads; shard 0 gets a NaN gradient at [`NAN_STEP`] when `poison`.
#[allow(clippy::type_complexity)]
fn single_and_sharded(
    c: &PresetConfig,
    split: bool,
    poison: bool,
) -> (
    (Vec<Tensor>, Vec<StepInfo>),
    [(Vec<Tensor>, Vec<StepInfo>); 2],
) {
    let all = model(split);
    let single = run(c, all.clone(), None, poison);
    let (first, second) = all.split_at(all.len() / 2);
    let (first, second) = (first.to_vec(), second.to_vec());
    let (mut p0, mut p1) = Peer::pair();
    let (s0, s1) = std::thread::scope(|s| {
        let h0 = s.spawn(move || run(c, first, Some(&mut p0), poison));
        let h1 = s.spawn(move || run(c, second, Some(&mut p1), false));
        (h0.join().expect("shard 0"), h1.join().expect("shard 1"))
    });
    (single, [s0, s1])
}

fn values(t: &[Tensor]) -> Vec<f64> {
    t.iter().flat_map(|t| t.value.clone()).collect()
}

#[test]
fn one_tensor_per_shard_is_bit_identical_to_one_optimizer() {
    for (name, c) in cases() {
        let ((single, si), [(a, ai), (b, bi)]) = single_and_sharded(&c, false, false);
        let sharded: Vec<f64> = values(&a).into_iter().chain(values(&b)).collect();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        assert_eq!(bits(&sharded), bits(&values(&single)), "{name}");
        for ((s, a), b) in si.iter().zip(&ai).zip(&bi) {
            // Both shards take the single optimizer's scalar decisions (lr factor, lr, norms).
            assert_eq!(s.group.lr.to_bits(), a.group.lr.to_bits(), "{name}");
            assert_eq!(a.group, b.group, "{name}");
            assert_eq!(
                s.group.grad_l2.to_bits(),
                a.group.grad_l2.to_bits(),
                "{name}"
            );
        }
        assert!(
            si.iter()
                .any(|s| s.group.lr_factor != si[0].group.lr_factor),
            "{name}: adaptive"
        );
    }
}

#[test]
fn several_tensors_per_shard_agree_to_rounding() {
    for (name, c) in cases() {
        let ((single, _), [(a, _), (b, _)]) = single_and_sharded(&c, true, false);
        let sharded: Vec<f64> = values(&a).into_iter().chain(values(&b)).collect();
        let worst = sharded
            .iter()
            .zip(values(&single))
            .map(|(x, y)| (x - y).abs() / y.abs().max(1e-3))
            .fold(0.0_f64, f64::max);
        println!("{name}: sharded vs single, worst relative difference {worst:e}");
        assert!(worst <= 1e-13, "{name}: {worst:e}");
    }
}

/// A NaN gradient on shard 0 skips the step on both shards (shard 1 learns it through the
/// all-reduce), exactly as one optimizer skips it; the runs continue identically.
#[test]
fn non_finite_gradient_on_one_shard_skips_the_step_on_both() {
    for (name, c) in cases() {
        let ((single, si), [(a, ai), (b, bi)]) = single_and_sharded(&c, false, true);
        assert_eq!(
            si[NAN_STEP].skipped,
            Some(Skipped::NonFiniteGradient { index: 0 }),
            "{name}"
        );
        assert_eq!(
            ai[NAN_STEP].skipped,
            Some(Skipped::NonFiniteGradient { index: 0 }),
            "{name}"
        );
        assert_eq!(
            bi[NAN_STEP].skipped,
            Some(Skipped::NonFiniteGradientElsewhere),
            "{name}"
        );
        for infos in [&si, &ai, &bi] {
            assert_eq!(
                infos.iter().filter(|i| i.skipped.is_some()).count(),
                1,
                "{name}"
            );
            assert_eq!(
                infos[STEPS - 1].group.k,
                STEPS as u64 - 1,
                "{name}: the skipped step did not count"
            );
        }
        let sharded: Vec<f64> = values(&a).into_iter().chain(values(&b)).collect();
        assert_eq!(sharded, values(&single), "{name}");
        assert!(sharded.iter().all(|v| v.is_finite()), "{name}");
    }
}

/// Shards that pass their local losses still agree: a NaN loss on shard 0 skips the step on
/// shard 1 too (the non-finite count of the all-reduce includes the loss).
#[test]
fn non_finite_local_loss_on_one_shard_skips_the_step_on_both() {
    let (mut p0, mut p1) = Peer::pair();
    let shard = |peer: &mut Peer, nan_at: Option<usize>| {
        let mut o = schedulefree::SgdScheduleFree::default()
            .build::<f64>()
            .expect("config");
        o.add_param("w", &[2]).expect("new");
        let mut w = vec![1.0, -1.0];
        let mut skipped = Vec::new();
        for step in 0..5 {
            let g = w.clone();
            let loss = if nan_at == Some(step) { f64::NAN } else { 0.5 };
            // A moved `&mut Peer` is `Send` (a `Receiver` is not `Sync`), as the hook must be.
            let p = &mut *peer;
            let mut hook = move |buf: &mut [f64]| p.all_reduce(buf);
            let info = o
                .step_with(
                    &mut [Param::new("w", &mut w, &g)],
                    StepInputs {
                        loss: Some(loss),
                        all_reduce: Some(&mut hook),
                    },
                )
                .expect("step");
            skipped.push(info.skipped);
        }
        (skipped, o.group_info(0).expect("group").skipped_steps)
    };
    let (a, b) = std::thread::scope(|s| {
        let h0 = s.spawn(|| shard(&mut p0, Some(2)));
        let h1 = s.spawn(|| shard(&mut p1, None));
        (h0.join().expect("shard 0"), h1.join().expect("shard 1"))
    });
    assert_eq!(a.0[2], Some(Skipped::NonFiniteLoss));
    assert_eq!(b.0[2], Some(Skipped::NonFiniteGradientElsewhere));
    assert_eq!((a.1, b.1), (1, 1));
    assert!(a.0.iter().chain(&b.0).filter(|s| s.is_some()).count() == 2);
}
