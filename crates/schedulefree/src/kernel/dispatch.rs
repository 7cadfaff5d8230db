//! One per-block loop, compiled once per learner slot count and instruction set, and the
//! run-time choice between the compiled variants. The update kernel and the learner's
//! pre-pass both go through here, so each is written once as a generic block function.

use rayon::prelude::*;

use super::isa::Isa;
use super::{CHUNK, PARALLEL_MIN_LEN};

/// A loop over one block of a tensor ([`super::CHUNK`] elements at most) whose inner lane
/// loop is generic over the number of learner slots, so that every slot count the crate's
/// learners use is compiled with its slot arrays in registers.
///
/// The slices are separate arguments, not one tuple: only references passed as arguments
/// carry the no-alias facts the vectoriser needs (in an aggregate they are lost, and the lane
/// loops of some slot counts ran 1.6× slower).
pub(crate) trait BlockOp<T> {
    /// What one block returns.
    type Out;
    /// The learner slot counts to compile [`BlockOp::block`] for (of 0, 1, 2, 4 and 5: the
    /// learner's [`crate::learner::Learner::SLOT_COUNTS`]); others run
    /// [`BlockOp::block_dyn`].
    const SLOT_COUNTS: &'static [usize];
    /// The learner's slot count.
    fn n_learner(&self) -> usize;
    /// The block with exactly `NL` learner slots; inlined into each instruction-set variant.
    fn block<const NL: usize>(&self, p: &mut [T], g: &[T], st: &mut [T], want: Want) -> Self::Out;
    /// The block with the slot count known only at run time: one element at a time, the same
    /// operations in the same order (and so the same bits) as [`BlockOp::block`].
    fn block_dyn(&self, isa: Isa, p: &mut [T], g: &[T], st: &mut [T], want: Want) -> Self::Out;
}

/// What a block takes on the way: (`Σu²` of the directions, the gradient sums).
pub(crate) type Want = (bool, bool);

/// Run one block of `op` on the variant for its slot count and instruction set `isa` (which
/// the CPU must have: [`Isa::detect`]).
#[inline]
pub(crate) fn run_block<T, B: BlockOp<T>>(
    op: &B,
    isa: Isa,
    (p, g, st): (&mut [T], &[T], &mut [T]),
    want: Want,
) -> B::Out {
    // The guards are constants, so the variants of undeclared counts are never instantiated.
    match op.n_learner() {
        0 if const { compiled(B::SLOT_COUNTS, 0) } => on_isa::<T, B, 0>(op, isa, p, g, st, want),
        1 if const { compiled(B::SLOT_COUNTS, 1) } => on_isa::<T, B, 1>(op, isa, p, g, st, want),
        2 if const { compiled(B::SLOT_COUNTS, 2) } => on_isa::<T, B, 2>(op, isa, p, g, st, want),
        4 if const { compiled(B::SLOT_COUNTS, 4) } => on_isa::<T, B, 4>(op, isa, p, g, st, want),
        5 if const { compiled(B::SLOT_COUNTS, 5) } => on_isa::<T, B, 5>(op, isa, p, g, st, want),
        _ => op.block_dyn(isa, p, g, st, want),
    }
}

/// Whether `counts` holds `n`.
const fn compiled(counts: &[usize], n: usize) -> bool {
    let mut i = 0;
    while i < counts.len() {
        if counts[i] == n {
            return true;
        }
        i += 1;
    }
    false
}

#[allow(unsafe_code)]
#[inline(always)]
fn on_isa<T, B: BlockOp<T>, const NL: usize>(
    op: &B,
    isa: Isa,
    p: &mut [T],
    g: &[T],
    st: &mut [T],
    want: Want,
) -> B::Out {
    match isa {
        // SAFETY: `Isa::detect` returns these only where the CPU has the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::<T, B, NL>(op, p, g, st, want) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::<T, B, NL>(op, p, g, st, want) },
        Isa::Generic => op.block::<NL>(p, g, st, want),
    }
}

/// [`BlockOp::block`] compiled with AVX-512F (512-bit vectors).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512<T, B: BlockOp<T>, const NL: usize>(
    op: &B,
    p: &mut [T],
    g: &[T],
    st: &mut [T],
    want: Want,
) -> B::Out {
    op.block::<NL>(p, g, st, want)
}

/// [`BlockOp::block`] compiled with AVX2 (256-bit vectors).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<T, B: BlockOp<T>, const NL: usize>(
    op: &B,
    p: &mut [T],
    g: &[T],
    st: &mut [T],
    want: Want,
) -> B::Out {
    op.block::<NL>(p, g, st, want)
}

/// Call `block(b, value, gradient, state)` on every block `b` of a tensor with `ns` state
/// slots per element ([`super::SlotLayout`]: block `b`'s state is its `ns` slot runs, empty
/// when `ns = 0`), writing the result to `out[b]`: in order for tensors shorter than
/// [`PARALLEL_MIN_LEN`], across rayon's threads otherwise. `out` holds at least
/// `len.div_ceil(CHUNK)` entries; returns the part it filled.
pub(crate) fn for_each_block<'o, T: Send + Sync, R: Send>(
    (p, g, st): (&mut [T], &[T], &mut [T]),
    ns: usize,
    out: &'o mut [R],
    block: impl Fn(usize, &mut [T], &[T], &mut [T]) -> R + Sync,
) -> &'o [R] {
    let out = &mut out[..p.len().div_ceil(CHUNK)];
    let st_chunk = (CHUNK * ns).max(1);
    if p.len() < PARALLEL_MIN_LEN {
        let mut st_blocks = st.chunks_mut(st_chunk);
        let blocks = p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)).zip(out.iter_mut());
        for (b, ((p, g), r)) in blocks.enumerate() {
            let s = if ns == 0 {
                &mut []
            } else {
                st_blocks.next().expect("state sized with the tensor")
            };
            *r = block(b, p, g, s);
        }
    } else if ns == 0 {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(out.par_iter_mut())
            .enumerate()
            .for_each(|(b, ((p, g), r))| *r = block(b, p, g, &mut []));
    } else {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(st.par_chunks_mut(st_chunk))
            .zip(out.par_iter_mut())
            .enumerate()
            .for_each(|(b, (((p, g), s), r))| *r = block(b, p, g, s));
    }
    out
}
