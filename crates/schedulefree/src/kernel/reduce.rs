//! The gradient reduction kernel: `Σ|g|`, `Σg²` and the finiteness check in one pass.

use rayon::prelude::*;

use super::{CHUNK, PARALLEL_MIN_LEN};
use crate::element::Element;

/// Gradient sums of one reduction: `Σ|g|` and `Σg²`, accumulated in `f64`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct GradSums {
    pub(crate) l1: f64,
    pub(crate) l2_sq: f64,
}

/// `Σ|g|` and `Σg²` of `g` in `f64`, and whether every value is finite, in one pass. The sums
/// are taken per [`CHUNK`] (eight independent lanes, so the compiler vectorises them) and
/// the chunk sums are added in order, so the parallel and serial paths give the same bits.
/// `chunks` must hold `len.div_ceil(CHUNK)` entries.
#[allow(clippy::eq_op)] // `v − v` is the finiteness test, not a mistake
pub(crate) fn grad_sums<T: Element>(g: &[T], chunks: &mut [(GradSums, bool)]) -> (GradSums, bool) {
    fn chunk<T: Element>(c: &[T]) -> (GradSums, bool) {
        // `v − v` is 0 for finite `v` and NaN for ±inf/NaN: a branch-free finiteness check
        // that stays exact even where the f64 sums overflow (huge finite f64 gradients).
        let (mut l1, mut l2, mut nf) = ([0.0_f64; 8], [0.0_f64; 8], [T::zero(); 8]);
        let lanes = c.chunks_exact(8);
        let mut tail = (GradSums::default(), T::zero());
        for &v in lanes.remainder() {
            let w = v.f64();
            tail = (
                GradSums {
                    l1: tail.0.l1 + w.abs(),
                    l2_sq: tail.0.l2_sq + w * w,
                },
                tail.1 + (v - v),
            );
        }
        for l in lanes {
            for (((a, b), n), &v) in l1.iter_mut().zip(l2.iter_mut()).zip(nf.iter_mut()).zip(l) {
                let w = v.f64();
                *a += w.abs();
                *b += w * w;
                *n = *n + (v - v);
            }
        }
        let sums = GradSums {
            l1: l1.iter().fold(tail.0.l1, |s, &a| s + a),
            l2_sq: l2.iter().fold(tail.0.l2_sq, |s, &a| s + a),
        };
        (sums, nf.iter().fold(tail.1, |s, &a| s + a) == T::zero())
    }
    let add = |a: (GradSums, bool), s: &(GradSums, bool)| {
        (
            GradSums {
                l1: a.0.l1 + s.0.l1,
                l2_sq: a.0.l2_sq + s.0.l2_sq,
            },
            a.1 && s.1,
        )
    };
    let start = (GradSums::default(), true);
    if g.len() >= PARALLEL_MIN_LEN {
        let sums = &mut chunks[..g.len().div_ceil(CHUNK)];
        g.par_chunks(CHUNK)
            .zip(sums.par_iter_mut())
            .for_each(|(c, s)| *s = chunk(c));
        sums.iter().fold(start, add)
    } else {
        g.chunks(CHUNK).map(chunk).fold(start, |a, s| add(a, &s))
    }
}
