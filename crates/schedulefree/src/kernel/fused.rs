//! The fused update kernel: one monomorphised loop over each parameter's (value, gradient,
//! interleaved state), chunked across threads for large tensors.

use rayon::prelude::*;

use super::{CHUNK, GradSums, PARALLEL_MIN_LEN};
use crate::conversion::Conversion;
use crate::decay::DecayTerms;
use crate::element::Element;
use crate::learner::Learner;

/// Everything the fused loop needs for one tensor.
pub(crate) struct Kernel<'a, T, L: Learner, C: Conversion> {
    pub(crate) learner: &'a L,
    pub(crate) conversion: &'a C,
    pub(crate) ls: L::Scalars,
    pub(crate) cs: C::Scalars,
    pub(crate) decay: DecayTerms<T>,
    pub(crate) lr: T,
    pub(crate) n_learner: usize,
    pub(crate) n_slots: usize,
}

impl<T: Element, L: Learner, C: Conversion> Kernel<'_, T, L, C> {
    /// One element's update; returns the learner's direction (before any decay term).
    #[inline(always)]
    fn element(&self, p: &mut T, g: T, slots: &mut [T]) -> T {
        let (ls, cs) = slots.split_at_mut(self.n_learner);
        let y = *p;
        let z = self.conversion.iterate(y, cs);
        let g = g + self.decay.l2 * y;
        let u = self.learner.direction(&self.ls, g, z, ls);
        let d = u + self.decay.at_y * y;
        self.conversion
            .update(&self.cs, self.lr, self.decay.shrink, p, cs, d);
        u
    }

    /// The loop for exactly `N` slots per element: a compile-time chunk width lets the
    /// compiler drop bounds checks and keep the state of one element in registers. With
    /// `DIAG` it also returns `Σu²` of the directions (in `f64`), else 0.
    #[inline(always)]
    fn serial_n<const N: usize, const DIAG: bool>(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
    ) -> f64 {
        let mut acc = 0.0;
        let mut add = |u: T| {
            if DIAG {
                acc += u.f64() * u.f64();
            }
        };
        if N == 0 {
            for (p, g) in p.iter_mut().zip(g) {
                add(self.element(p, *g, &mut []));
            }
        } else {
            for ((p, g), s) in p.iter_mut().zip(g).zip(st.chunks_exact_mut(N)) {
                add(self.element(p, *g, s));
            }
        }
        acc
    }

    fn serial<const DIAG: bool>(&self, p: &mut [T], g: &[T], st: &mut [T]) -> f64 {
        match self.n_slots {
            0 => self.serial_n::<0, DIAG>(p, g, st),
            1 => self.serial_n::<1, DIAG>(p, g, st),
            2 => self.serial_n::<2, DIAG>(p, g, st),
            3 => self.serial_n::<3, DIAG>(p, g, st),
            4 => self.serial_n::<4, DIAG>(p, g, st),
            5 => self.serial_n::<5, DIAG>(p, g, st),
            6 => self.serial_n::<6, DIAG>(p, g, st),
            n => {
                let mut acc = 0.0;
                for ((p, g), s) in p.iter_mut().zip(g).zip(st.chunks_exact_mut(n)) {
                    let u = self.element(p, *g, s);
                    if DIAG {
                        acc += u.f64() * u.f64();
                    }
                }
                acc
            }
        }
    }

    /// Run over one tensor; returns `Σu²` with `DIAG` (per-chunk sums added in order, so the
    /// parallel and serial paths agree), else 0. `chunks` holds `len.div_ceil(CHUNK)` entries.
    pub(crate) fn run<const DIAG: bool>(
        &self,
        p: &mut [T],
        g: &[T],
        st: &mut [T],
        chunks: &mut [(GradSums, bool)],
    ) -> f64
    where
        Self: Sync,
    {
        if p.len() < PARALLEL_MIN_LEN {
            if self.n_slots == 0 {
                return p
                    .chunks_mut(CHUNK)
                    .zip(g.chunks(CHUNK))
                    .map(|(p, g)| self.serial::<DIAG>(p, g, &mut []))
                    .sum();
            }
            return p
                .chunks_mut(CHUNK)
                .zip(g.chunks(CHUNK))
                .zip(st.chunks_mut(CHUNK * self.n_slots))
                .map(|((p, g), s)| self.serial::<DIAG>(p, g, s))
                .sum();
        }
        let chunks = &mut chunks[..p.len().div_ceil(CHUNK)];
        if self.n_slots == 0 {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(chunks.par_iter_mut())
                .for_each(|((p, g), c)| c.0.l2_sq = self.serial::<DIAG>(p, g, &mut []));
        } else {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(st.par_chunks_mut(CHUNK * self.n_slots))
                .zip(chunks.par_iter_mut())
                .for_each(|(((p, g), s), c)| c.0.l2_sq = self.serial::<DIAG>(p, g, s));
        }
        chunks.iter().map(|c| c.0.l2_sq).sum()
    }
}
