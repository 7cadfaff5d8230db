//! Projection of normalized weights onto fixed-radius hyperspheres: the alternative to
//! corrected decay for scale-invariant layers (their loss does not depend on the weight
//! norm, so the norm can be fixed instead of balanced by decay).

use super::{Decay, DecayContext, DecayScalars};
use crate::conversion::Conversion;
use crate::element::Element;
use crate::error::{ConfigError, check};
use crate::kernel::SlotLayout;

/// Target radius of each row.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RadiusInit {
    /// `ρ_i` = the row's norm when the parameter gets its first gradient (its initialisation:
    /// `≈ 1` for `N(0, 1/fan_in)` rows), floored at `min_radius`.
    Initial,
    /// One radius `> 0` for every row.
    Constant(f64),
}

/// Per-row hypersphere projection of the parameters tagged `normalized`: after every update
/// the learner's iterate is rescaled row by row, `z_i ← ρ_i·z_i / max(‖z_i‖₂, tiny)`, so
/// `‖z_i‖ = ρ_i` always and `‖g_i‖/‖z_i‖` depends on neither `λ` nor the schedule (the angular
/// step is `≈ γ_t‖g_i‖/ρ_i ∝ γ_t`).
///
/// A "row" is the set of elements sharing one index along `axis` of the registered shape:
/// `axis = 0` for `[out, in]` matrices (PyTorch, candle `Linear`) and `[out, in, kh, kw]`
/// convolutions; `axis = 1` for burn's `Linear` weight `[in, out]`. Rows of norm 0 are
/// left at 0 (never NaN: `tiny = f64::MIN_POSITIVE`), and a row whose initial norm is below
/// `min_radius` gets radius `min_radius`, so it is projected there once a gradient moves it.
/// The radii are part of the saved state.
///
/// With Schedule-Free the learner (`z`) lives on the sphere; `x` is then a weighted average
/// of sphere points, so `‖x_i‖ ≤ ρ_i` (harmless for scale-invariant rows), and `y` moves with
/// `z` (see [`Conversion::set_iterate`]). The projection is exact reparametrisation only for
/// per-row invariance (BatchNorm-type); under a LayerNorm it also fixes relative row scales.
///
/// Cost: where rows are contiguous in memory (every dimension before `axis` has size 1, as
/// for `axis = 0`), each block of 16384 elements is projected right after its update while it
/// is still in cache, so the projection adds little memory traffic (rows cut by a block edge
/// are finished afterwards); otherwise (burn's `[in, out]` with `axis = 1`) it takes two more
/// passes over the iterate. A row's norm² is summed in `f64` over its piece in each block, in
/// order; a piece is summed element by element if it has at most 16 elements, otherwise in
/// 16 interleaved partial sums.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Projection {
    /// Axis that indexes rows (output units).
    pub axis: usize,
    /// How the radii are chosen.
    pub radius: RadiusInit,
    /// Floor `> 0` of initial radii.
    pub min_radius: f64,
}

impl Default for Projection {
    /// Rows along axis 0, radius from the initialisation, floor `1e-3`.
    fn default() -> Self {
        Projection {
            axis: 0,
            radius: RadiusInit::Initial,
            min_radius: 1e-3,
        }
    }
}

impl Projection {
    /// Validate `min_radius > 0` and a constant radius `> 0`, both finite.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            "min_radius",
            self.min_radius,
            self.min_radius > 0.0 && self.min_radius.is_finite(),
            "finite min_radius > 0",
        )?;
        if let RadiusInit::Constant(r) = self.radius {
            check("radius", r, r > 0.0 && r.is_finite(), "finite radius > 0")?;
        }
        Ok(())
    }

    /// `(rows, inner)` for `shape`: the number of rows along `axis` and the number of
    /// contiguous elements per row run; `None` if `axis` is out of range.
    pub fn layout(&self, shape: &[usize]) -> Option<(usize, usize)> {
        let rows = *shape.get(self.axis)?;
        Some((rows, shape[self.axis + 1..].iter().product()))
    }
}

/// Decay policy `base` for ordinary parameters, no decay and a [`Projection`] for parameters
/// tagged `normalized` (decay is radial and would be undone by the projection).
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param, ParamTags};
/// use schedulefree::{conversion::LastIterate, learner::Sgd, schedule::Constant};
/// use schedulefree::decay::{Decoupled, Projected};
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Sgd::plain(),
///     LastIterate,
///     Projected { base: Decoupled, projection: Default::default() },
///     Constant,
///     GroupConfig { lr: 0.1, weight_decay: 0.5 },
/// )?;
/// opt.add_param_tagged(0, "w", &[2, 2], ParamTags::NORMALIZED)?;
/// let mut w = vec![3.0, 4.0, 0.6, 0.8];
/// let g = vec![1.0, 0.0, 0.0, 1.0];
/// opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// // No decay on the normalized matrix; each row (axis 0) keeps its initial norm, 5 and 1.
/// assert!(((w[0] * w[0] + w[1] * w[1]).sqrt() - 5.0).abs() < 1e-12);
/// assert!(((w[2] * w[2] + w[3] * w[3]).sqrt() - 1.0).abs() < 1e-12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Projected<B> {
    /// Policy of the parameters not tagged `normalized`.
    pub base: B,
    /// The projection of the normalized ones.
    pub projection: Projection,
}

impl<B: Decay> Decay for Projected<B> {
    fn name(&self) -> &'static str {
        "projected"
    }
    fn scalars(&self, ctx: DecayContext) -> DecayScalars {
        if ctx.normalized {
            DecayScalars::NONE
        } else {
            self.base.scalars(ctx)
        }
    }
    fn validate(&self) -> Result<(), ConfigError> {
        self.projection.validate()?;
        self.base.validate()
    }
    fn projection(&self) -> Option<Projection> {
        Some(self.projection)
    }
}

/// Row `(i / inner) % rows` of element `i`.
#[inline(always)]
fn row_of(i: usize, rows: usize, inner: usize) -> usize {
    (i / inner) % rows
}

/// Radii for `values` laid out as `(rows, inner)` ([`Projection::layout`]).
pub(crate) fn init_radius<T: Element>(
    p: &Projection,
    (rows, inner): (usize, usize),
    values: &[T],
) -> Vec<f64> {
    match p.radius {
        RadiusInit::Constant(r) => vec![r; rows],
        RadiusInit::Initial => {
            let mut sq = vec![0.0; rows];
            for (i, v) in values.iter().enumerate() {
                sq[row_of(i, rows, inner)] += v.f64() * v.f64();
            }
            sq.into_iter().map(|s| s.sqrt().max(p.min_radius)).collect()
        }
    }
}

/// Project the learner's iterate of every row onto its sphere, right after the update with
/// conversion scalars `sc`. `scratch` holds `rows` values (row norms²). Two passes over the
/// tensor, for any layout of the rows (tensors with contiguous rows take
/// [`super::BlockProjection`] instead).
#[allow(clippy::too_many_arguments)]
pub(crate) fn project_rows<T: Element, C: Conversion>(
    conv: &C,
    sc: &C::Scalars,
    (rows, inner): (usize, usize),
    radius: &[f64],
    p: &mut [T],
    state: &mut [T],
    (n_learner, layout): (usize, SlotLayout),
    scratch: &mut [f64],
) {
    scratch.fill(0.0);
    let mut row = Rows::new(rows, inner);
    layout.for_each(state, |i, st| {
        let z = conv.iterate(p[i], &st[n_learner..]).f64();
        scratch[row.next()] += z * z;
    });
    for (s, r) in scratch.iter_mut().zip(radius) {
        *s = r / s.sqrt().max(f64::MIN_POSITIVE);
    }
    let mut row = Rows::new(rows, inner);
    layout.for_each_mut(state, |i, st| {
        let cs = &mut st[n_learner..];
        let z = conv.iterate(p[i], cs);
        let z_new = T::of(z.f64() * scratch[row.next()]);
        conv.set_iterate(sc, &mut p[i], cs, z_new);
    });
}

/// [`row_of`] for `i = 0, 1, 2, …` in turn, by counting instead of dividing.
struct Rows {
    rows: usize,
    inner: usize,
    row: usize,
    at: usize,
}

impl Rows {
    fn new(rows: usize, inner: usize) -> Self {
        Rows {
            rows,
            inner,
            row: 0,
            at: 0,
        }
    }
    /// The row of the next element.
    #[inline]
    fn next(&mut self) -> usize {
        let r = self.row;
        self.at += 1;
        if self.at == self.inner {
            self.at = 0;
            self.row += 1;
            if self.row == self.rows {
                self.row = 0;
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rows_match_divided_rows() {
        for (rows, inner) in [(1, 1), (1, 9), (4, 1), (3, 5), (7, 2)] {
            let mut counted = Rows::new(rows, inner);
            for i in 0..rows * inner * 3 {
                assert_eq!(
                    counted.next(),
                    row_of(i, rows, inner),
                    "{rows}×{inner}, i = {i}"
                );
            }
        }
    }
}
