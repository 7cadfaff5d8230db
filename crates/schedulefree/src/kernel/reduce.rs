//! The gradient reduction kernel: `Σ|g|`, `Σg²` and the finiteness check in one pass.

use rayon::prelude::*;

use super::isa::Isa;
use super::{CHUNK, PARALLEL_MIN_LEN};
use crate::element::Element;

/// Gradient sums of one reduction: `Σ|g|` and `Σg²`, accumulated in `f64`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct GradSums {
    pub(crate) l1: f64,
    pub(crate) l2_sq: f64,
}

/// What one block of a tensor (or a whole tensor, once added up) contributes to a step's
/// reductions: the gradient sums, whether every gradient value was finite, and `Σu²` of the
/// learner's directions (diagnostics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BlockSums {
    pub(crate) grad: GradSums,
    pub(crate) finite: bool,
    pub(crate) u_sq: f64,
    /// What the caller's follow-up on the block returned ([`crate::kernel::Kernel::run`]);
    /// not added by [`BlockSums::then`].
    pub(crate) after: [f64; 2],
}

impl Default for BlockSums {
    fn default() -> Self {
        BlockSums {
            grad: GradSums::default(),
            finite: true,
            u_sq: 0.0,
            after: [0.0; 2],
        }
    }
}

impl BlockSums {
    /// `self` then `b`, added in this order (the order fixes the bits).
    #[inline]
    pub(crate) fn then(self, b: &BlockSums) -> BlockSums {
        BlockSums {
            grad: GradSums {
                l1: self.grad.l1 + b.grad.l1,
                l2_sq: self.grad.l2_sq + b.grad.l2_sq,
            },
            finite: self.finite && b.finite,
            u_sq: self.u_sq + b.u_sq,
            after: [0.0; 2],
        }
    }
}

/// `Σ|g|` and `Σg²` of `g` in `f64`, and whether every value is finite, in one pass. The sums
/// are taken per [`CHUNK`] ([`LANES`] independent partial sums, so the compiler vectorises
/// them) and the chunk sums are added in order, so the parallel and serial paths give the same
/// bits (and the same as the fused update's [`crate::kernel::Kernel::run`] taking them on the
/// way). `chunks` must hold `len.div_ceil(CHUNK)` entries.
pub(crate) fn grad_sums<T: Element>(g: &[T], chunks: &mut [BlockSums]) -> (GradSums, bool) {
    let isa = Isa::detect();
    let block = |c: &[T]| {
        let (grad, finite) = chunk_isa(isa, c);
        BlockSums {
            grad,
            finite,
            ..BlockSums::default()
        }
    };
    let total = if g.len() >= PARALLEL_MIN_LEN {
        let sums = &mut chunks[..g.len().div_ceil(CHUNK)];
        g.par_chunks(CHUNK)
            .zip(sums.par_iter_mut())
            .for_each(|(c, s)| *s = block(c));
        sums.iter().fold(BlockSums::default(), BlockSums::then)
    } else {
        g.chunks(CHUNK)
            .map(block)
            .fold(BlockSums::default(), |a, s| a.then(&s))
    };
    (total.grad, total.finite)
}

/// Independent partial sums per chunk: enough f64 accumulators (four AVX-512 registers) to
/// hide the latency of vector addition.
const LANES: usize = 32;
/// Elements per piece of a chunk that the three accumulation loops run over in turn.
const L1_PIECE: usize = 1024;

/// The sums of one chunk (at most [`CHUNK`] values).
#[allow(clippy::eq_op)] // `v − v` is the finiteness test, not a mistake
#[inline(always)]
pub(super) fn chunk<T: Element>(c: &[T]) -> (GradSums, bool) {
    // `v − v` is 0 for finite `v` and NaN for ±inf/NaN: a branch-free finiteness check
    // that stays exact even where the f64 sums overflow (huge finite f64 gradients).
    let (mut l1, mut l2, mut nf) = ([0.0_f64; LANES], [0.0_f64; LANES], [T::zero(); LANES]);
    let (lanes, rest) = c.as_chunks::<LANES>();
    let mut tail = (GradSums::default(), T::zero());
    for &v in rest {
        let w = v.f64();
        tail = (
            GradSums {
                l1: tail.0.l1 + w.abs(),
                l2_sq: tail.0.l2_sq + w * w,
            },
            tail.1 + (v - v),
        );
    }
    // One loop per accumulator, so each becomes vector operations over the lanes (merged,
    // the compiler pairs the two sums of one lane instead), over L1-sized pieces so that only
    // the first loop reads memory. Each lane still adds its values in element order.
    for piece in lanes.chunks(L1_PIECE / LANES) {
        for l in piece {
            for k in 0..LANES {
                l1[k] += l[k].f64().abs();
            }
        }
        for l in piece {
            for k in 0..LANES {
                l2[k] += l[k].f64() * l[k].f64();
            }
        }
        for l in piece {
            for k in 0..LANES {
                nf[k] = nf[k] + (l[k] - l[k]);
            }
        }
    }
    let sums = GradSums {
        l1: l1.iter().fold(tail.0.l1, |s, &a| s + a),
        l2_sq: l2.iter().fold(tail.0.l2_sq, |s, &a| s + a),
    };
    (sums, nf.iter().fold(tail.1, |s, &a| s + a) == T::zero())
}

/// [`chunk`] compiled for `isa` ([`Isa`]: the same bits on every variant).
#[allow(unsafe_code)]
pub(super) fn chunk_isa<T: Element>(isa: Isa, c: &[T]) -> (GradSums, bool) {
    match isa {
        // SAFETY: `Isa::detect` returns these only where the CPU has the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { chunk_avx512(c) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { chunk_avx2(c) },
        Isa::Generic => chunk(c),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn chunk_avx512<T: Element>(c: &[T]) -> (GradSums, bool) {
    chunk(c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn chunk_avx2<T: Element>(c: &[T]) -> (GradSums, bool) {
    chunk(c)
}
