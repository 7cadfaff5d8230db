//! Recording itself: what it refuses, what it keeps, and the init and eval programs against
//! the formulas they record. (The update program is checked against the fused kernel, bit
//! for bit, for every learner × conversion in `kernel::tests`.)

use num_traits::Float;

use super::trace::{Trace, record};
use super::{ElementProgram, Op, ProgramError, eval_program, init_program};
use crate::conversion::{
    Conversion, Ema, LastIterate, PolyakAverage, PrimalAverage, ScheduleFree,
    ScheduleFreeReference, WeightedLastIterate,
};
use crate::element::{Dtype, Element};
use crate::learner::{AdaGradNorm, Adam, Cocob, Learner, Prodigy, Sgd};

#[test]
fn comparing_element_values_is_refused() {
    let r = record(|| {
        let a = Trace::<f32>::input(Op::Value);
        let b = Trace::<f32>::input(Op::Grad);
        a < b
    });
    assert_eq!(
        r.err(),
        Some(ProgramError::Untraceable {
            what: "a comparison"
        })
    );
    let r = record(|| Trace::<f64>::input(Op::Value).exp().node());
    assert_eq!(r.err(), Some(ProgramError::Untraceable { what: "exp" }));
    // Methods num-traits would build from other operations are refused too, and fold with
    // the type's own bits.
    let r = record(|| Trace::<f32>::input(Op::Value).to_degrees().node());
    assert_eq!(
        r.err(),
        Some(ProgramError::Untraceable { what: "to_degrees" })
    );
    let folded = record(|| match Trace::<f32>::of(0.7).to_degrees() {
        Trace::Const(c) => c.to_bits(),
        Trace::Node(_) => 0,
    });
    assert_eq!(folded.expect("constants").1, 0.7f32.to_degrees().to_bits());
    // The tape is free again afterwards, and constants still compare.
    let (ops, lt) = record(|| Trace::<f32>::of(0.25) < Trace::of(0.5)).expect("constants");
    assert!(lt && ops.is_empty());
}

#[test]
fn a_recording_inside_a_recording_is_refused() {
    let inner = record(|| record(|| ()).map(|_| ()));
    assert!(matches!(
        inner,
        Ok((_, Err(ProgramError::Untraceable { .. })))
    ));
}

#[test]
fn constants_fold_in_the_element_type_and_dead_nodes_go() {
    let (ops, (out, _dead)) = record(|| {
        // 0.1 and 0.2 rounded to f32, then added in f32: not the f64 sum rounded.
        let c = Trace::<f32>::of(0.1) + Trace::of(0.2);
        let p = Trace::<f32>::input(Op::Value);
        let unused = (p * p).node();
        ((p + c).node(), unused)
    })
    .expect("traceable");
    let program = ElementProgram::new(Dtype::F32, 0, &ops, out, &[], None);
    let c = f64::from(0.1f32 + 0.2f32);
    assert_eq!(program.ops(), &[Op::Value, Op::Const(c), Op::Add(0, 1)]);
    assert_eq!(program.value_out(), 2);
}

#[test]
fn apply_refuses_other_types_and_slot_counts_and_changes_nothing() {
    let program = eval_program::<f32, _>(&ScheduleFree::default(), 1).expect("traceable");
    let (mut p, mut slots, mut regs) = (1.0f64, [2.0f64, 3.0], Vec::new());
    let e = program.apply(&mut p, 0.5, &mut slots, &mut regs);
    assert!(matches!(e, Err(ProgramError::Dtype { .. })));
    let (mut p32, mut s32) = (1.0f32, [2.0f32]);
    let e = program.apply(&mut p32, 0.5, &mut s32, &mut Vec::new());
    assert_eq!(
        e,
        Err(ProgramError::Slots {
            expected: 2,
            found: 1
        })
    );
    assert_eq!((p, slots, p32, s32), (1.0, [2.0, 3.0], 1.0, [2.0]));
}

/// The init and eval programs against the formulas, for one learner and conversion.
fn check<T: Element, L: Learner, C: Conversion>(l: &L, c: &C) {
    let nl = l.slot_names().len();
    let ns = nl + C::SLOTS;
    let init = init_program::<T, _, _>(l, c).expect("traceable");
    let eval = eval_program::<T, C>(c, nl).expect("traceable");
    let mut regs = Vec::new();
    for v in [0.0, -0.0, 1.5, -3e-39, 1e30, 0.1] {
        let v = T::of(v);
        let mut expected = vec![T::zero(); ns];
        let (ls, cs) = expected.split_at_mut(nl);
        c.init_slots(v, cs);
        l.init_slots(v, ls);
        let (mut p, mut slots) = (v, vec![T::of(7.0); ns]);
        init.apply(&mut p, T::of(9.0), &mut slots, &mut regs)
            .expect("sizes");
        let bits = |s: &[T]| s.iter().map(|x| x.f64().to_bits()).collect::<Vec<_>>();
        assert_eq!(
            (p.f64().to_bits(), bits(&slots)),
            (v.f64().to_bits(), bits(&expected))
        );
        let x = c.eval_value(v, &slots[nl..]);
        let mut y = v;
        eval.apply(&mut y, T::zero(), &mut slots, &mut regs)
            .expect("sizes");
        assert_eq!(
            y.f64().to_bits(),
            x.f64().to_bits(),
            "{} + {}",
            l.name(),
            c.name()
        );
        assert_eq!(bits(&slots), bits(&expected));
        // The mode switch both ways, from a state with distinct slot values.
        let state: Vec<T> = (0..ns).map(|j| T::of(0.25 * j as f64 - 0.6)).collect();
        for to_train in [false, true] {
            let (mut p, mut s) = (v, state.clone());
            let (mut q, mut r) = (v, state.clone());
            if to_train {
                c.to_train(&mut q, &mut r[nl..]);
            } else {
                c.to_eval(&mut q, &mut r[nl..]);
            }
            let mode = super::mode_program::<T, C>(c, nl, to_train).expect("traceable");
            mode.apply(&mut p, T::zero(), &mut s, &mut regs)
                .expect("sizes");
            let what = format!("{} + {}, to_train {to_train}", l.name(), c.name());
            assert_eq!(p.f64().to_bits(), q.f64().to_bits(), "{what}");
            assert_eq!(bits(&s), bits(&r), "{what}");
        }
    }
}

fn every_conversion<T: Element, L: Learner>(l: &L) {
    check::<T, _, _>(l, &LastIterate);
    check::<T, _, _>(l, &ScheduleFree::default());
    check::<T, _, _>(l, &ScheduleFreeReference::default());
    check::<T, _, _>(l, &PolyakAverage::default());
    check::<T, _, _>(l, &Ema::default());
    check::<T, _, _>(l, &PrimalAverage::default());
    check::<T, _, _>(
        l,
        &WeightedLastIterate::new(vec![1.0, 2.0]).expect("weights"),
    );
}

fn every_learner<T: Element>() {
    every_conversion::<T, _>(&Sgd::default());
    every_conversion::<T, _>(&Adam::default());
    every_conversion::<T, _>(&Cocob::default());
    every_conversion::<T, _>(&Prodigy::default());
    every_conversion::<T, _>(&AdaGradNorm::default());
}

#[test]
fn init_eval_and_mode_programs_give_the_formulas_bits() {
    every_learner::<f32>();
    every_learner::<f64>();
}

#[test]
fn from_ops_checks_its_parts() {
    let ok = ElementProgram::from_ops(
        Dtype::F32,
        1,
        vec![Op::Value, Op::Slot(0), Op::Add(0, 1)],
        2,
        vec![1],
        None,
    );
    let program = ok.expect("well formed");
    let (mut v, mut s) = (1.5f32, [2.0f32]);
    program
        .apply(&mut v, 0.0, &mut s, &mut Vec::new())
        .expect("sizes");
    assert_eq!((v, s), (3.5, [2.0]));
    let malformed = |ops: Vec<Op>, value_out, slots_out: Vec<usize>| {
        matches!(
            ElementProgram::from_ops(Dtype::F32, 1, ops, value_out, slots_out, None),
            Err(ProgramError::Malformed { .. })
        )
    };
    assert!(malformed(vec![Op::Value, Op::Add(0, 1)], 1, vec![0]));
    assert!(malformed(vec![Op::Slot(1)], 0, vec![0]));
    assert!(malformed(vec![Op::Const(0.1)], 0, vec![0]));
    assert!(malformed(vec![Op::Value], 0, vec![]));
    assert!(malformed(vec![Op::Value], 1, vec![0]));
}

/// The host evaluation over whole buffers, as an evaluator for [`super::check_evaluator`].
fn host_evaluator<T: Element>(
    p: &ElementProgram,
    value: &[T],
    grad: Option<&[T]>,
    slots: &[Vec<T>],
) -> super::Evaluated<T> {
    let (mut value, mut slots) = (value.to_vec(), slots.to_vec());
    let (mut e, mut regs) = (vec![T::zero(); slots.len()], Vec::new());
    for i in 0..value.len() {
        for (v, s) in e.iter_mut().zip(&slots) {
            *v = s[i];
        }
        let g = grad.map_or(T::zero(), |g| g[i]);
        p.apply(&mut value[i], g, &mut e, &mut regs).expect("sizes");
        for (v, s) in e.iter().zip(&mut slots) {
            s[i] = *v;
        }
    }
    (value, slots)
}

#[test]
fn the_conformance_check_passes_the_host_and_catches_a_one_ulp_error() {
    let n = super::check_evaluator::<f32>(host_evaluator).expect("the host conforms");
    assert!(n > 300, "{n} programs");
    super::check_evaluator::<f64>(host_evaluator).expect("in f64 too");
    let off_by_one_ulp = |p: &ElementProgram, v: &[f32], g: Option<&[f32]>, s: &[Vec<f32>]| {
        let (v, mut s) = host_evaluator(p, v, g, s);
        if let Some(last) = s.last_mut() {
            last[5] = f32::from_bits(last[5].to_bits() + 1);
        }
        (v, s)
    };
    let e = super::check_evaluator::<f32>(off_by_one_ulp).expect_err("caught");
    assert!(e.contains("slot") && e.contains("element 5"), "{e}");
}
