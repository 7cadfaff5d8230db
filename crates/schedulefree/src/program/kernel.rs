//! Recording the programs of one parameter tensor: the fused kernel's element update, the
//! state created at a parameter's first gradient, and the eval point `x`.

use super::trace::{Trace, record};
use super::{ElementProgram, Op, ProgramError};
use crate::conversion::Conversion;
use crate::decay::DecayTerms;
use crate::element::Element;
use crate::kernel::{Kernel, MAX_SLOTS};
use crate::learner::Learner;

/// Inputs `Value`, `Grad` and `ns` slots.
fn inputs<T: Element>(ns: usize) -> (Trace<T>, Trace<T>, [Trace<T>; MAX_SLOTS]) {
    let p = Trace::input(Op::Value);
    let g = Trace::input(Op::Grad);
    let mut e = [Trace::Const(T::zero()); MAX_SLOTS];
    for (j, s) in e.iter_mut().enumerate().take(ns) {
        *s = Trace::input(Op::Slot(j));
    }
    (p, g, e)
}

fn nodes<T: Element>(e: &[Trace<T>]) -> Vec<usize> {
    e.iter().map(|s| s.node()).collect()
}

/// The element update `kernel` runs, with its scalars as constants.
///
/// # Errors
/// [`ProgramError::Untraceable`] for formulas a program cannot express.
pub(crate) fn update_program<T: Element, L: Learner, C: Conversion>(
    kernel: &Kernel<'_, T, L, C>,
) -> Result<ElementProgram, ProgramError> {
    let ns = kernel.n_learner + C::SLOTS;
    let traced = Kernel {
        learner: kernel.learner,
        conversion: kernel.conversion,
        ls: kernel.ls,
        cs: kernel.cs,
        decay: DecayTerms {
            l2: Trace::Const(kernel.decay.l2),
            at_y: Trace::Const(kernel.decay.at_y),
            shrink: Trace::Const(kernel.decay.shrink),
        },
        lr: Trace::Const(kernel.lr),
        n_learner: kernel.n_learner,
    };
    let (ops, (value, slots, d)) = record(|| {
        let (mut p, g, mut e) = inputs::<T>(ns);
        let (ls, cs) = e.split_at_mut(kernel.n_learner);
        let d = traced.element(&mut p, g, ls, &mut cs[..C::SLOTS]);
        (p.node(), nodes(&e[..ns]), d.node())
    })?;
    Ok(ElementProgram::new(
        T::DTYPE,
        ns,
        &ops,
        value,
        &slots,
        Some(d),
    ))
}

/// The state a parameter gets at its first gradient (every slot starts at 0, then the
/// conversion and the learner initialise theirs from the value), as the host update creates
/// it. The program reads [`Op::Value`] only; its value output is the value unchanged.
///
/// # Errors
/// [`ProgramError::Untraceable`] for formulas a program cannot express.
pub(crate) fn init_program<T: Element, L: Learner, C: Conversion>(
    learner: &L,
    conversion: &C,
) -> Result<ElementProgram, ProgramError> {
    let nl = learner.slot_names().len();
    let ns = nl + C::SLOTS;
    let (ops, (value, slots)) = record(|| {
        let p = Trace::<T>::input(Op::Value);
        let mut e = [Trace::Const(T::zero()); MAX_SLOTS];
        let (ls, cs) = e.split_at_mut(nl);
        conversion.init_slots(p, &mut cs[..C::SLOTS]);
        learner.init_slots(p, ls);
        (p.node(), nodes(&e[..ns]))
    })?;
    Ok(ElementProgram::new(T::DTYPE, ns, &ops, value, &slots, None))
}

/// The eval point `x` of a training-mode element (the value output; slots unchanged).
///
/// # Errors
/// [`ProgramError::Untraceable`] for formulas a program cannot express.
pub(crate) fn eval_program<T: Element, C: Conversion>(
    conversion: &C,
    n_learner: usize,
) -> Result<ElementProgram, ProgramError> {
    let ns = n_learner + C::SLOTS;
    let (ops, (value, slots)) = record(|| {
        let (p, _, e) = inputs::<T>(ns);
        let x = conversion.eval_value(p, &e[n_learner..ns]);
        (x.node(), nodes(&e[..ns]))
    })?;
    Ok(ElementProgram::new(T::DTYPE, ns, &ops, value, &slots, None))
}

/// The in-place mode switch of one element: train → eval ([`Conversion::to_eval`]: the
/// buffer then holds `x`) or eval → train ([`Conversion::to_train`]), value and slots.
///
/// # Errors
/// [`ProgramError::Untraceable`] for formulas that cannot be recorded.
pub(crate) fn mode_program<T: Element, C: Conversion>(
    conversion: &C,
    n_learner: usize,
    to_train: bool,
) -> Result<ElementProgram, ProgramError> {
    let ns = n_learner + C::SLOTS;
    let (ops, (value, slots)) = record(|| {
        let (mut p, _, mut e) = inputs::<T>(ns);
        let cs = &mut e[n_learner..ns];
        if to_train {
            conversion.to_train(&mut p, cs);
        } else {
            conversion.to_eval(&mut p, cs);
        }
        (p.node(), nodes(&e[..ns]))
    })?;
    Ok(ElementProgram::new(T::DTYPE, ns, &ops, value, &slots, None))
}

/// The learner's pre-pass over one element ([`Learner::prepass_factors`]) with this step's
/// learner scalars `ls` as constants: value and slots unchanged, and the
/// [`Learner::PREPASS_LEN`] terms as [`ElementProgram::terms`].
///
/// # Errors
/// [`ProgramError::Untraceable`] for formulas a program cannot express.
pub(crate) fn prepass_program<T: Element, L: Learner, C: Conversion>(
    learner: &L,
    conversion: &C,
    ls: &L::Scalars,
) -> Result<ElementProgram, ProgramError> {
    let nl = learner.slot_names().len();
    let ns = nl + C::SLOTS;
    let (ops, (value, slots, terms)) = record(|| {
        let (p, g, e) = inputs::<T>(ns);
        let z = conversion.iterate(p, &e[nl..ns]);
        let f = learner.prepass_factors(ls, g, z, p, &e[..nl]);
        let terms: Vec<(usize, usize)> = f[..L::PREPASS_LEN]
            .iter()
            .map(|&(a, b)| (a.node(), b.node()))
            .collect();
        (p.node(), nodes(&e[..ns]), terms)
    })?;
    Ok(ElementProgram::with_terms(
        T::DTYPE,
        ns,
        &ops,
        (value, &slots, None),
        &terms,
    ))
}
