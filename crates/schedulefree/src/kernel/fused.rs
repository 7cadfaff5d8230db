//! The fused update kernel: one monomorphised loop over each parameter's value, gradient and
//! blocked slot-major state ([`super::SlotLayout`]), in lane groups that the compiler
//! vectorises, compiled for the widest instruction set the CPU has ([`super::isa`]), and
//! split per block across threads for large tensors.

use rayon::prelude::*;

use super::isa::Isa;
use super::reduce::chunk as grad_chunk;
use super::{BlockSums, CHUNK, MAX_SLOTS, PARALLEL_MIN_LEN};
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
    fn element(&self, p: &mut T, g: T, ls: &mut [T], cs: &mut [T]) -> T {
        let y = *p;
        let z = self.conversion.iterate(y, cs);
        let g = g + self.decay.l2 * y;
        let u = self.learner.direction(&self.ls, g, z, ls);
        let d = u + self.decay.at_y * y;
        self.conversion
            .update(&self.cs, self.lr, self.decay.shrink, p, cs, d);
        u
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
        for (q, (pl, gl)) in pv.iter_mut().zip(gv).enumerate() {
            // Slot j of lane k sits at s[j][k]: copied in and out whole, so the lane loop
            // below only touches these arrays.
            let mut s = [[T::zero(); LANES]; MAX_SLOTS];
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

    /// [`Kernel::block`] for the learner's slot count (the counts of the crate's learners
    /// are compiled for vectors; others take [`Kernel::block_dyn`]), for instruction set
    /// `isa`.
    fn block_any(&self, isa: Isa, p: &mut [T], g: &[T], st: &mut [T], want: Want) -> BlockSums {
        match self.n_learner {
            0 => self.block_isa::<0>(isa, p, g, st, want),
            1 => self.block_isa::<1>(isa, p, g, st, want),
            2 => self.block_isa::<2>(isa, p, g, st, want),
            4 => self.block_isa::<4>(isa, p, g, st, want),
            5 => self.block_isa::<5>(isa, p, g, st, want),
            _ => self.block_dyn(isa, p, g, st, want),
        }
    }

    /// [`Kernel::block`] with the learner's slot count known only at run time: one element at
    /// a time, the same operations (and bits) in the same order.
    pub(super) fn block_dyn(
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

    #[allow(unsafe_code)]
    #[inline(always)]
    fn block_isa<const NL: usize>(
        &self,
        isa: Isa,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        want: Want,
    ) -> BlockSums {
        match isa {
            // SAFETY: `Isa::detect` returns these only where the CPU has the features.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.block_avx512::<NL>(p, g, st, want) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.block_avx2::<NL>(p, g, st, want) },
            Isa::Generic => self.block::<NL>(p, g, st, want),
        }
    }

    /// [`Kernel::block`] compiled with AVX-512F (512-bit vectors).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn block_avx512<const NL: usize>(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        want: Want,
    ) -> BlockSums {
        self.block::<NL>(p, g, st, want)
    }

    /// [`Kernel::block`] compiled with AVX2 (256-bit vectors).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn block_avx2<const NL: usize>(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        want: Want,
    ) -> BlockSums {
        self.block::<NL>(p, g, st, want)
    }

    /// Run over one tensor. Returns, added over blocks in order (so the parallel and serial
    /// paths agree): `Σu²` of the directions with `diag` (else 0), and with `sums` the
    /// gradient sums and finiteness, the same bits as [`super::grad_sums`]. `chunks` holds
    /// `len.div_ceil(CHUNK)` entries.
    pub(crate) fn run(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        chunks: &mut [BlockSums],
        want: Want,
    ) -> BlockSums
    where
        Self: Sync,
    {
        self.run_on(Isa::detect(), p, g, st, chunks, want)
    }

    /// [`Kernel::run`] on instruction set `isa` (which the CPU must have).
    pub(super) fn run_on(
        &self,
        isa: Isa,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        chunks: &mut [BlockSums],
        want: Want,
    ) -> BlockSums
    where
        Self: Sync,
    {
        let ns = self.n_learner + C::SLOTS;
        // A block's state is CHUNK·ns values; with no slots every block's state is empty.
        let st_chunk = (CHUNK * ns).max(1);
        let mut empty: [T; 0] = [];
        if p.len() < PARALLEL_MIN_LEN {
            let mut total = BlockSums::default();
            let mut st_blocks = st.chunks_mut(st_chunk);
            for (p, g) in p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)) {
                let s = if ns == 0 {
                    &mut empty[..]
                } else {
                    st_blocks.next().expect("state sized with the tensor")
                };
                total = total.then(&self.block_any(isa, p, g, s, want));
            }
            return total;
        }
        let chunks = &mut chunks[..p.len().div_ceil(CHUNK)];
        if ns == 0 {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(chunks.par_iter_mut())
                .for_each(|((p, g), c)| *c = self.block_any(isa, p, g, &mut [], want));
        } else {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(st.par_chunks_mut(st_chunk))
                .zip(chunks.par_iter_mut())
                .for_each(|(((p, g), s), c)| *c = self.block_any(isa, p, g, s, want));
        }
        chunks.iter().fold(BlockSums::default(), BlockSums::then)
    }
}

/// What [`Kernel::run`] takes on the way: (`Σu²` of the directions, the gradient sums).
pub(crate) type Want = (bool, bool);
