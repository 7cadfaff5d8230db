//! The fused update kernel: one monomorphised loop over each parameter's value, gradient and
//! blocked slot-major state ([`super::SlotLayout`]), in lane groups that the compiler
//! vectorises, compiled for the widest instruction set the CPU has ([`super::isa`]), and
//! split per block across threads for large tensors.

use super::dispatch::{BlockOp, Want, for_each_block, run_block};
use super::isa::Isa;
use super::reduce::chunk as grad_chunk;
use super::{BlockSums, CHUNK, MAX_SLOTS};
use crate::conversion::Conversion;
use crate::decay::DecayTerms;
use crate::element::Element;
use crate::learner::Learner;

/// Elements per lane group: a multiple of every vector width (16 f32 fill one AVX-512
/// register, two AVX2 ones). Each group's slots are copied into registers-sized local arrays,
/// so the element loop touches no memory that may alias and vectorises without checks.
const LANES: usize = 16;

/// Everything the fused loop needs for one tensor.
pub(crate) struct Kernel<'a, T, L: Learner, C: Conversion> {
    pub(crate) learner: &'a L,
    pub(crate) conversion: &'a C,
    pub(crate) ls: L::Scalars,
    pub(crate) cs: C::Scalars,
    pub(crate) decay: DecayTerms<T>,
    pub(crate) lr: T,
    pub(crate) n_learner: usize,
}

impl<T: Element, L: Learner, C: Conversion> Kernel<'_, T, L, C> {
    /// One element's update; returns the learner's direction (before any decay term).
    #[inline(always)]
    pub(crate) fn element(&self, p: &mut T, g: T, ls: &mut [T], cs: &mut [T]) -> T {
        let y = *p;
        let z = self.conversion.iterate(y, cs);
        let g = g + self.decay.l2 * y;
        let u = self.learner.direction(&self.ls, g, z, ls);
        let d = u + self.decay.at_y * y;
        self.conversion
            .update(&self.cs, self.lr, self.decay.shrink, p, cs, d);
        u
    }

    /// Run over one tensor. Returns, added over blocks in order (so the parallel and serial
    /// paths agree): `Σu²` of the directions with `diag` (else 0), and with `sums` the
    /// gradient sums and finiteness, the same bits as [`super::grad_sums`]. `chunks` holds
    /// `len.div_ceil(CHUNK)` entries; block `b`'s own sums are left in `chunks[b]`, with
    /// `after(b·CHUNK, value, state)` of the block, called right after its update while it is
    /// in cache, in `chunks[b].after`.
    pub(crate) fn run(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        chunks: &mut [BlockSums],
        want: Want,
        after: Option<&After<'_, T>>,
    ) -> BlockSums
    where
        Self: Sync,
    {
        self.run_on(Isa::detect(), p, g, st, chunks, want, after)
    }

    /// [`Kernel::run`] on instruction set `isa` (which the CPU must have).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_on(
        &self,
        isa: Isa,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        chunks: &mut [BlockSums],
        want: Want,
        after: Option<&After<'_, T>>,
    ) -> BlockSums
    where
        Self: Sync,
    {
        let ns = self.n_learner + C::SLOTS;
        let block = |b: usize, p: &mut [T], g: &[T], s: &mut [T]| {
            let mut sums = run_block(self, isa, (&mut *p, g, &mut *s), want);
            if let Some(f) = after {
                sums.after = f(b * CHUNK, p, s);
            }
            sums
        };
        for_each_block((p, g, st), ns, chunks, block)
            .iter()
            .fold(BlockSums::default(), BlockSums::then)
    }
}

/// Work done on a block right after its update (see [`Kernel::run`]): called with the
/// block's first element index, its values and its state.
pub(crate) type After<'a, T> = dyn Fn(usize, &mut [T], &mut [T]) -> [f64; 2] + Sync + 'a;

impl<T: Element, L: Learner, C: Conversion> BlockOp<T> for Kernel<'_, T, L, C> {
    type Out = BlockSums;
    const SLOT_COUNTS: &'static [usize] = L::SLOT_COUNTS;

    fn n_learner(&self) -> usize {
        self.n_learner
    }

    /// One block (at most [`CHUNK`] elements; `st` holds its slots one after another) with
    /// exactly `NL` learner slots. With `diag` returns `Σu²` of the directions in `f64`
    /// (added in element order), else 0; with `sums` the block's gradient sums and
    /// finiteness, taken first (so the update reads the gradient from cache) exactly as
    /// [`super::grad_sums`] takes them.
    #[inline(always)]
    fn block<const NL: usize>(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        (diag, sums): Want,
    ) -> BlockSums {
        let mut out = BlockSums::default();
        if sums {
            (out.grad, out.finite) = grad_chunk(g);
        }
        let n = p.len();
        let ns = NL + C::SLOTS;
        let mut runs: [&mut [T]; MAX_SLOTS] = Default::default();
        let mut rest = st;
        for r in runs.iter_mut().take(ns) {
            let (a, b) = std::mem::take(&mut rest).split_at_mut(n);
            *r = a;
            rest = b;
        }
        let mut acc = 0.0;
        let (pv, p_tail) = p.as_chunks_mut::<LANES>();
        let (gv, g_tail) = g.as_chunks::<LANES>();
        // Slot j of lane k sits at s[j][k]: copied in and out whole, so the lane loop below
        // only touches these arrays. Made once: zeroing the unused slots on every lane group
        // cost more stores than the update itself.
        let mut s = [[T::zero(); LANES]; MAX_SLOTS];
        for (q, (pl, gl)) in pv.iter_mut().zip(gv).enumerate() {
            for (sj, r) in s.iter_mut().zip(runs.iter()).take(ns) {
                *sj = r.as_chunks::<LANES>().0[q];
            }
            let mut u = [T::zero(); LANES];
            for k in 0..LANES {
                let mut e = [T::zero(); MAX_SLOTS];
                for j in 0..ns {
                    e[j] = s[j][k];
                }
                let (ls, cs) = e.split_at_mut(NL);
                u[k] = self.element(&mut pl[k], gl[k], ls, &mut cs[..C::SLOTS]);
                for j in 0..ns {
                    s[j][k] = e[j];
                }
            }
            for (sj, r) in s.iter().zip(runs.iter_mut()).take(ns) {
                r.as_chunks_mut::<LANES>().0[q] = *sj;
            }
            if diag {
                for v in u {
                    acc += v.f64() * v.f64();
                }
            }
        }
        let off = pv.len() * LANES;
        for (i, (p, g)) in (off..).zip(p_tail.iter_mut().zip(g_tail)) {
            let mut e = [T::zero(); MAX_SLOTS];
            for j in 0..ns {
                e[j] = runs[j][i];
            }
            let (ls, cs) = e.split_at_mut(NL);
            let u = self.element(p, *g, ls, &mut cs[..C::SLOTS]);
            for j in 0..ns {
                runs[j][i] = e[j];
            }
            if diag {
                acc += u.f64() * u.f64();
            }
        }
        out.u_sq = acc;
        out
    }

    /// [`BlockOp::block`] with the learner's slot count known only at run time: one element at
    /// a time, the same operations (and bits) in the same order.
    fn block_dyn(
        &self,
        isa: Isa,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        (diag, sums): Want,
    ) -> BlockSums {
        let mut out = BlockSums::default();
        if sums {
            (out.grad, out.finite) = super::reduce::chunk_isa(isa, g);
        }
        let (n, nl) = (p.len(), self.n_learner);
        let ns = nl + C::SLOTS;
        for (i, (p, g)) in p.iter_mut().zip(g).enumerate() {
            let mut e = [T::zero(); MAX_SLOTS];
            for (j, v) in e[..ns].iter_mut().enumerate() {
                *v = st[j * n + i];
            }
            let (ls, cs) = e.split_at_mut(nl);
            let u = self.element(p, *g, ls, &mut cs[..C::SLOTS]);
            for (j, v) in e[..ns].iter().enumerate() {
                st[j * n + i] = *v;
            }
            if diag {
                out.u_sq += u.f64() * u.f64();
            }
        }
        out
    }
}
