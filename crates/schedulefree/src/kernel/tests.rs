//! The compiled variants of the kernel agree bit for bit: every instruction set this CPU has
//! against the portable one, and the vector lane loop against the one-element-at-a-time
//! path, for every learner × conversion, f32 and f64, over lengths around the lane width,
//! with subnormals, ±0, huge values and non-finite gradients.

use proptest::prelude::*;

use super::dispatch::BlockOp;
use super::fused::Kernel;
use super::isa::Isa;
use super::prepass::Prepass;
use super::reduce::chunk_isa;
use super::{BlockSums, CHUNK, SlotLayout, grad_sums};
use crate::conversion::{
    AveragingState, Conversion, Ema, LastIterate, PolyakAverage, PrimalAverage, ScheduleFree,
    ScheduleFreeReference, WeightedLastIterate,
};
use crate::decay::{DecayScalars, DecayTerms};
use crate::element::Element;
use crate::learner::{
    AdaGradNorm, Adam, BiasCorrection, Cocob, GroupState, Learner, MAX_PREPASS, Polyak, Prodigy,
    RAdam, Sgd, StepIndex,
};

/// A value drawn from the awkward corners of the format as well as the ordinary range.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -2.0f64..2.0,
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(1e-40), // subnormal in f32
        1 => Just(-3e-39),
        1 => Just(1e30),
    ]
}

/// Equal bits, or both NaN (NaN payloads may differ between instruction sets).
fn same<T: Element>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || x.f64().to_bits() == y.f64().to_bits())
}

#[derive(Debug)]
struct Case {
    p: Vec<f64>,
    g: Vec<f64>,
    st: Vec<f64>,
    decay: DecayScalars,
    k: u64,
}

/// Run one composition on every path and compare with the portable lane loop.
fn check<T: Element, L: Learner, C: Conversion>(l: &L, c: &C, case: &Case) -> Result<(), String> {
    let n = case.p.len();
    let nl = l.slot_names().len();
    // An undeclared count would run the slow one-element path in production.
    if !L::SLOT_COUNTS.contains(&nl) {
        return Err(format!("{} has {nl} slots, undeclared", l.name()));
    }
    let ns = nl + C::SLOTS;
    let mut gs = GroupState::default();
    l.init_group_state(&mut gs);
    let lr = 0.3;
    let mut avg = AveragingState::default();
    for k in 0..case.k {
        c.scalars(&mut avg, lr, k);
    }
    let (cs, _) = c.scalars(&mut avg, lr, case.k);
    let kernel = Kernel {
        learner: l,
        conversion: c,
        ls: l.scalars(
            StepIndex {
                group: case.k,
                param: case.k,
            },
            lr,
            &gs,
        ),
        cs,
        decay: DecayTerms::of(case.decay),
        lr: T::of(lr),
        n_learner: nl,
    };
    let p0: Vec<T> = case.p.iter().map(|v| T::of(*v)).collect();
    let g: Vec<T> = case.g.iter().map(|v| T::of(*v)).collect();
    let st0: Vec<T> = case
        .st
        .iter()
        .cycle()
        .take(n * ns)
        .map(|v| T::of(*v))
        .collect();
    let mut chunks = vec![BlockSums::default(); n.div_ceil(CHUNK)];
    // The gradient sums the reduction pass takes, which the update must reproduce.
    let (grad, finite) = grad_sums(&g, &mut chunks);
    let run = |isa: Isa, chunks: &mut [BlockSums]| {
        let (mut p, mut st) = (p0.clone(), st0.clone());
        let b = kernel.run_on(isa, &mut p, &g, &mut st, chunks, (true, true), None);
        (p, st, b)
    };
    let sums = |b: &BlockSums| [b.u_sq, b.grad.l1, b.grad.l2_sq];
    let what = || format!("{} + {}", l.name(), c.name());
    let (p_ref, st_ref, b_ref) = run(Isa::Generic, &mut chunks);
    if !same(&sums(&b_ref)[1..], &[grad.l1, grad.l2_sq]) || b_ref.finite != finite {
        return Err(format!(
            "update's gradient sums differ from the reduction's: {}",
            what()
        ));
    }
    for isa in Isa::available() {
        let (p, st, b) = run(isa, &mut chunks);
        let agree = same(&p, &p_ref) && same(&st, &st_ref) && same(&sums(&b), &sums(&b_ref));
        if !agree || b.finite != finite {
            return Err(format!(
                "{isa:?} differs from the portable loop: {}",
                what()
            ));
        }
    }
    // The one-element-at-a-time path (learners whose slot count is not compiled in).
    let (mut p, mut st) = (p0.clone(), st0.clone());
    let mut b = BlockSums::default();
    let mut st_blocks = st.chunks_mut((CHUNK * ns).max(1));
    for (p, g) in p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)) {
        let s = if ns == 0 {
            &mut [][..]
        } else {
            st_blocks.next().expect("sized")
        };
        b = b.then(&kernel.block_dyn(Isa::Generic, p, g, s, (true, true)));
    }
    if !same(&p, &p_ref) || !same(&st, &st_ref) || !same(&sums(&b), &sums(&b_ref)) {
        return Err(format!("element path differs: {}", what()));
    }
    // The recorded element program, replayed one element at a time.
    let program = crate::program::update_program(&kernel).map_err(|e| e.to_string())?;
    let (mut p, mut st) = (p0.clone(), st0.clone());
    let mut regs = Vec::new();
    let mut failed = None;
    SlotLayout { len: n, n: ns }.for_each_mut(&mut st, |i, e| {
        if let Err(err) = program.apply(&mut p[i], g[i], e, &mut regs) {
            failed = Some(err);
        }
    });
    if let Some(e) = failed {
        return Err(e.to_string());
    }
    if !same(&p, &p_ref) || !same(&st, &st_ref) {
        return Err(format!("element program differs: {}", what()));
    }
    check_prepass(&kernel, &p0, &g, &st0).map_err(|e| format!("{e}: {}", what()))
}

/// The learner's pre-pass over the same inputs: every instruction set and the
/// one-element path give the portable lane loop's bits, which are within rounding of the
/// terms added one by one.
fn check_prepass<T: Element, L: Learner, C: Conversion>(
    kernel: &Kernel<'_, T, L, C>,
    p: &[T],
    g: &[T],
    st: &[T],
) -> Result<(), String> {
    let pass = Prepass {
        learner: kernel.learner,
        conversion: kernel.conversion,
        ls: kernel.ls,
        n_learner: kernel.n_learner,
    };
    // The pre-pass only reads its `&mut` arguments.
    let (mut p, mut st) = (p.to_vec(), st.to_vec());
    let mut chunks = vec![[0.0; MAX_PREPASS]; p.len().div_ceil(CHUNK)];
    let reference = pass.run_on(Isa::Generic, &mut p, g, &mut st, &mut chunks);
    for isa in Isa::available() {
        if !same(
            &pass.run_on(isa, &mut p, g, &mut st, &mut chunks),
            &reference,
        ) {
            return Err(format!(
                "pre-pass on {isa:?} differs from the portable loop"
            ));
        }
    }
    let ns = kernel.n_learner + C::SLOTS;
    // The recorded pre-pass program (for runtimes that hold the tensors elsewhere) gives
    // each element's terms bit for bit and writes nothing.
    let n_pre = L::PREPASS_LEN;
    let program =
        crate::program::prepass_program::<T, L, C>(kernel.learner, kernel.conversion, &kernel.ls)
            .map_err(|e| e.to_string())?;
    if program.terms().len() != n_pre {
        return Err("pre-pass program has another number of terms".into());
    }
    let mut regs = Vec::new();
    let mut program_ok = true;
    let mut blocks = [0.0; MAX_PREPASS];
    let (mut serial, mut magnitude) = ([0.0; MAX_PREPASS], [0.0; MAX_PREPASS]);
    let mut st_blocks = st.chunks_mut((CHUNK * ns).max(1));
    for (p, g) in p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)) {
        let s = if ns == 0 {
            &mut [][..]
        } else {
            st_blocks.next().expect("sized")
        };
        let b = pass.block_dyn(Isa::Generic, p, g, s, (false, false));
        blocks = std::array::from_fn(|j| blocks[j] + b[j]);
        // Term by term, in element order.
        let l = SlotLayout {
            len: p.len(),
            n: ns,
        };
        l.for_each(s, |i, e| {
            let z = kernel.conversion.iterate(p[i], &e[kernel.n_learner..]);
            let f =
                kernel
                    .learner
                    .prepass_factors(&kernel.ls, g[i], z, p[i], &e[..kernel.n_learner]);
            let t: [f64; MAX_PREPASS] = std::array::from_fn(|j| f[j].0.f64() * f[j].1.f64());
            let (mut v, mut e2) = (p[i], e.to_vec());
            let traced = program
                .apply(&mut v, g[i], &mut e2, &mut regs)
                .and_then(|_| program.term_values(&regs));
            program_ok &= traced.is_ok_and(|tv| same(&tv, &t[..n_pre]))
                && same(&[v], &[p[i]])
                && same(&e2, e);
            serial = std::array::from_fn(|j| serial[j] + t[j]);
            magnitude = std::array::from_fn(|j| magnitude[j] + t[j].abs());
        });
    }
    if !same(&blocks, &reference) {
        return Err("pre-pass one-element path differs".into());
    }
    if !program_ok {
        return Err("the recorded pre-pass program differs from the kernel's terms".into());
    }
    // Reordering a sum of m terms moves it by at most about m·ε·Σ|t|.
    let close = |(a, b, m): (f64, f64, f64)| !m.is_finite() || (a - b).abs() <= 1e-10 * m;
    if !(0..MAX_PREPASS).all(|j| close((reference[j], serial[j], magnitude[j]))) {
        return Err(format!("pre-pass {reference:?} vs term by term {serial:?}"));
    }
    Ok(())
}

fn every_conversion<T: Element, L: Learner>(l: &L, case: &Case) -> Result<(), String> {
    check::<T, _, _>(l, &LastIterate, case)?;
    check::<T, _, _>(l, &ScheduleFree::default(), case)?;
    check::<T, _, _>(l, &ScheduleFreeReference::default(), case)?;
    check::<T, _, _>(l, &PolyakAverage::default(), case)?;
    check::<T, _, _>(l, &Ema::default(), case)?;
    check::<T, _, _>(l, &PrimalAverage::default(), case)?;
    let w = WeightedLastIterate::new(vec![1.0, 2.0, 3.0, 4.0]).map_err(|e| e.to_string())?;
    check::<T, _, _>(l, &w, case)
}

fn every_composition<T: Element>(case: &Case) -> Result<(), String> {
    every_conversion::<T, _>(&Sgd::default(), case)?;
    let momentum = Sgd {
        momentum: 0.9,
        nesterov: true,
        ..Sgd::default()
    };
    every_conversion::<T, _>(&momentum, case)?;
    for bias_correction in [
        BiasCorrection::Denominator,
        BiasCorrection::LearningRate,
        BiasCorrection::EpsBeforeCorrection,
    ] {
        for beta1 in [0.0, 0.9] {
            let adam = Adam {
                beta1,
                bias_correction,
                ..Adam::default()
            };
            every_conversion::<T, _>(&adam, case)?;
        }
    }
    every_conversion::<T, _>(&RAdam::default(), case)?;
    every_conversion::<T, _>(&AdaGradNorm::default(), case)?;
    every_conversion::<T, _>(&Cocob::default(), case)?;
    every_conversion::<T, _>(&Polyak::default(), case)?;
    every_conversion::<T, _>(&Prodigy::default(), case)
}

fn case() -> impl Strategy<Value = Case> {
    let len = prop_oneof![
        Just(0usize),
        Just(1),
        Just(15),
        Just(16),
        Just(17),
        Just(33),
        0usize..200,
        Just(CHUNK + 19),
    ];
    (len, any::<bool>(), 0u64..5).prop_flat_map(|(n, nonfinite, k)| {
        (
            prop::collection::vec(value(), n),
            prop::collection::vec(value(), n),
            prop::collection::vec(value().prop_map(f64::abs), 1..9),
            (0.0f64..0.1, 0.0f64..0.1, 0.9f64..=1.0),
            prop::sample::Index::arbitrary(),
        )
            .prop_map(move |(p, mut g, st, (l2, at_y, shrink), at)| {
                if nonfinite && !g.is_empty() {
                    let i = at.index(g.len());
                    g[i] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][i % 3];
                }
                let decay = DecayScalars { l2, at_y, shrink };
                Case { p, g, st, decay, k }
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_variant_gives_the_same_bits(case in case()) {
        every_composition::<f32>(&case).map_err(TestCaseError::fail)?;
        every_composition::<f64>(&case).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn gradient_sums_agree_across_threads_and_variants(
        g in prop::collection::vec(value(), 0..300),
        size in 0..3_usize,
    ) {
        // Short; serial over chunk pairs and a lone short chunk; split across threads.
        let len = [g.len(), 3 * CHUNK + 5, super::PARALLEL_MIN_LEN + 77][size];
        // Scaled per chunk, so that the two chunks of a pair never hold the same values.
        let g: Vec<f32> = g
            .iter()
            .cycle()
            .take(len)
            .enumerate()
            .map(|(i, v)| *v as f32 * (1 + i / CHUNK) as f32)
            .collect();
        let mut chunks = vec![BlockSums::default(); g.len().div_ceil(CHUNK)];
        let (sums, finite) = grad_sums(&g, &mut chunks);
        // In order over chunks on the portable variant: the reference bits.
        let mut reference = (0.0f64, 0.0f64);
        for (c, got) in g.chunks(CHUNK).zip(&chunks) {
            let (s, ok) = chunk_isa(Isa::Generic, c);
            prop_assert!(ok);
            // Each chunk's own sums, as the pair read left them.
            prop_assert_eq!((got.grad, got.finite), (s, true));
            reference = (reference.0 + s.l1, reference.1 + s.l2_sq);
            for isa in Isa::available() {
                prop_assert_eq!(chunk_isa(isa, c), (s, true));
            }
        }
        prop_assert!(finite);
        prop_assert_eq!((sums.l1.to_bits(), sums.l2_sq.to_bits()), (reference.0.to_bits(), reference.1.to_bits()));
        let exact: f64 = g.iter().map(|v| f64::from(*v) * f64::from(*v)).sum();
        prop_assert!((sums.l2_sq - exact).abs() <= 1e-9 * exact);
    }
}

/// A non-finite value anywhere (either chunk of a pair read in lockstep, a lone chunk, a
/// chunk's tail, serial or across threads) is found.
#[test]
fn gradient_sums_find_a_non_finite_value_anywhere() {
    for len in [3 * CHUNK + 5, super::PARALLEL_MIN_LEN + 77] {
        for at in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 3, len - 1] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut g = vec![0.25_f32; len];
                g[at] = bad;
                let mut chunks = vec![BlockSums::default(); len.div_ceil(CHUNK)];
                assert!(!grad_sums(&g, &mut chunks).1, "len {len}, at {at}, {bad}");
            }
        }
    }
}

/// A tensor long enough to be split across threads gives the pre-pass sums of its blocks
/// added in order.
#[test]
fn prepass_across_threads_adds_blocks_in_order() {
    let n = super::PARALLEL_MIN_LEN + 77;
    let p: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 2003) as f32 * 1e-3 - 1.0)
        .collect();
    let g: Vec<f32> = (0..n)
        .map(|i| ((i * 104_729) % 1999) as f32 * 1e-3 - 1.0)
        .collect();
    let (l, c) = (Prodigy::default(), ScheduleFree::default());
    let ns = l.slot_names().len() + ScheduleFree::SLOTS;
    let st: Vec<f32> = (0..n * ns)
        .map(|i| ((i * 31) % 997) as f32 * 1e-3)
        .collect();
    let mut gs = GroupState::default();
    l.init_group_state(&mut gs);
    let pass = Prepass {
        learner: &l,
        conversion: &c,
        ls: l.scalars(StepIndex { group: 3, param: 3 }, 0.5, &gs),
        n_learner: l.slot_names().len(),
    };
    let mut chunks = vec![[0.0; MAX_PREPASS]; n.div_ceil(CHUNK)];
    let (mut p, mut st) = (p, st);
    let parallel = pass.run(&mut p, &g, &mut st, &mut chunks);
    let mut serial = [0.0; MAX_PREPASS];
    for ((p, g), s) in p
        .chunks_mut(CHUNK)
        .zip(g.chunks(CHUNK))
        .zip(st.chunks_mut(CHUNK * ns))
    {
        let t = super::dispatch::run_block(&pass, Isa::detect(), (p, g, s), (false, false));
        serial = std::array::from_fn(|j| serial[j] + t[j]);
    }
    assert_eq!(parallel.map(f64::to_bits), serial.map(f64::to_bits));
    assert!(parallel[..2].iter().all(|v| *v != 0.0 && v.is_finite()));
}
