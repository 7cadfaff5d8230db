//! The learner's pre-pass over one tensor (Prodigy's `Σ g·(z₀ − z)` and `Σ|s|`): the same
//! lane groups as the update kernel, reading the state without writing it, with the sums
//! kept in 16 interleaved `f64` partial sums per block so that they vectorise too.

use super::MAX_SLOTS;
use super::dispatch::{BlockOp, Want, for_each_block, run_block};
use super::isa::Isa;
use crate::conversion::Conversion;
use crate::element::Element;
use crate::learner::{Learner, MAX_PREPASS};

/// Partial sums per block: element `i` of a block adds into partial sum `i % LANES`.
const LANES: usize = 16;

/// The pre-pass sums of a block or tensor.
pub(crate) type PrepassSums = [f64; MAX_PREPASS];

/// Everything the pre-pass needs for one tensor.
pub(crate) struct Prepass<'a, L: Learner, C: Conversion> {
    pub(crate) learner: &'a L,
    pub(crate) conversion: &'a C,
    pub(crate) ls: L::Scalars,
    pub(crate) n_learner: usize,
}

impl<L: Learner, C: Conversion> Prepass<'_, L, C> {
    /// The pre-pass sums of one tensor with state `st` ([`super::SlotLayout`]): per block in
    /// lane order, the blocks added in order (the same bits serially and across threads).
    /// Reads `p` and `st` only (they are `&mut` for the vectoriser's no-alias facts, see
    /// [`BlockOp`]). `chunks` holds `len.div_ceil(CHUNK)` entries.
    pub(crate) fn run<T: Element>(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        chunks: &mut [PrepassSums],
    ) -> PrepassSums
    where
        Self: Sync,
    {
        self.run_on(Isa::detect(), p, g, st, chunks)
    }

    /// [`Prepass::run`] on instruction set `isa` (which the CPU must have).
    pub(super) fn run_on<T: Element>(
        &self,
        isa: Isa,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        chunks: &mut [PrepassSums],
    ) -> PrepassSums
    where
        Self: Sync,
    {
        let ns = self.n_learner + C::SLOTS;
        let block =
            |_, p: &mut [T], g: &[T], s: &mut [T]| run_block(self, isa, (p, g, s), (false, false));
        for_each_block((p, g, st), ns, chunks, block)
            .iter()
            .fold([0.0; MAX_PREPASS], |a, b| {
                std::array::from_fn(|j| a[j] + b[j])
            })
    }

    /// One element's terms.
    #[inline(always)]
    fn element<T: Element>(&self, p: T, g: T, slots: &[T], nl: usize) -> PrepassSums {
        let z = self.conversion.iterate(p, &slots[nl..nl + C::SLOTS]);
        let f = self
            .learner
            .prepass_factors(&self.ls, g, z, p, &slots[..nl]);
        std::array::from_fn(|j| f[j].0.f64() * f[j].1.f64())
    }
}

/// The partial sums added in a fixed order.
#[inline(always)]
fn total(acc: &[[f64; LANES]; MAX_PREPASS]) -> PrepassSums {
    std::array::from_fn(|j| acc[j].iter().fold(0.0, |s, v| s + v))
}

impl<T: Element, L: Learner, C: Conversion> BlockOp<T> for Prepass<'_, L, C> {
    type Out = PrepassSums;
    // Learners without a pre-pass never run one: compile no vector loop for them.
    const SLOT_COUNTS: &'static [usize] = if L::PREPASS_LEN == 0 {
        &[]
    } else {
        L::SLOT_COUNTS
    };

    fn n_learner(&self) -> usize {
        self.n_learner
    }

    #[inline(always)]
    fn block<const NL: usize>(&self, p: &mut [T], g: &[T], st: &mut [T], _: Want) -> PrepassSums {
        let (n, ns) = (p.len(), NL + C::SLOTS);
        let n_pre = L::PREPASS_LEN;
        let mut runs: [&[T]; MAX_SLOTS] = [&[]; MAX_SLOTS];
        let mut rest: &[T] = st;
        for r in runs.iter_mut().take(ns) {
            (*r, rest) = rest.split_at(n);
        }
        let mut acc = [[0.0_f64; LANES]; MAX_PREPASS];
        let (pv, p_tail) = p.as_chunks::<LANES>();
        let (gv, g_tail) = g.as_chunks::<LANES>();
        for (q, (pl, gl)) in pv.iter().zip(gv).enumerate() {
            let mut s = [[T::zero(); LANES]; MAX_SLOTS];
            for (sj, r) in s.iter_mut().zip(runs.iter()).take(ns) {
                *sj = r.as_chunks::<LANES>().0[q];
            }
            for k in 0..LANES {
                let mut e = [T::zero(); MAX_SLOTS];
                for j in 0..ns {
                    e[j] = s[j][k];
                }
                let t = self.element(pl[k], gl[k], &e, NL);
                for j in 0..n_pre {
                    acc[j][k] += t[j];
                }
            }
        }
        let off = pv.len() * LANES;
        for (k, (p, g)) in p_tail.iter().zip(g_tail).enumerate() {
            let mut e = [T::zero(); MAX_SLOTS];
            for j in 0..ns {
                e[j] = runs[j][off + k];
            }
            let t = self.element(*p, *g, &e, NL);
            for j in 0..n_pre {
                acc[j][k] += t[j];
            }
        }
        total(&acc)
    }

    fn block_dyn(&self, _: Isa, p: &mut [T], g: &[T], st: &mut [T], _: Want) -> PrepassSums {
        let (n, nl) = (p.len(), self.n_learner);
        let ns = nl + C::SLOTS;
        let mut acc = [[0.0_f64; LANES]; MAX_PREPASS];
        for (i, (p, g)) in p.iter().zip(g).enumerate() {
            let mut e = [T::zero(); MAX_SLOTS];
            for (j, v) in e[..ns].iter_mut().enumerate() {
                *v = st[j * n + i];
            }
            let t = self.element(*p, *g, &e, nl);
            for j in 0..L::PREPASS_LEN {
                acc[j][i % LANES] += t[j];
            }
        }
        total(&acc)
    }
}
