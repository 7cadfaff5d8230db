//! Prodigy (Mishchenko & Defazio, arXiv 2306.06101, Algorithm 4 in its Adam form), as in
//! optax's `prodigy` (Mishchenko & Defazio, arXiv 2306.06101v4, Algorithm 4).

use super::adam::validate_betas;
use super::{GroupState, Learner, MAX_PREPASS, Reductions, StepIndex};
use crate::element::Element;
use crate::error::{ConfigError, check};

/// Prodigy: a D-Adaptation estimate `d` of the distance to a solution scales Adam. With the
/// group state `d` (starts at `d0`) and `r`, and `bc = sqrt(1 − β2^(k+1))/(1 − β1^(k+1))`,
/// the effective step is `dlr = d·lr·bc` (lr includes the schedule) and, per element,
/// `m ← β1·m + (1 − β1)·d·g`, `v ← β2·v + (1 − β2)·d²·g²`, `s ← β3·s + (dlr/d0)·d·g`,
/// direction `m / (sqrt(v) + d·eps)`. After the step
/// `r ← β3·r + (d/d0)·dlr·⟨g, z₀ − z⟩` and `d ← max(d, d_coef·r/‖s‖₁)`; both sums run over
/// the group in a pre-pass (one extra read of `g`, `z`, `s`, `z₀`). `z` is the learner's
/// iterate (the parameters for a last-iterate conversion, Schedule-Free's `z`). Decoupled
/// decay uses `dlr` as the lr, as optax.
///
/// `d` never decreases and stays `≥ d0`; with `d_coef = 0` this is Adam with lr `d0·lr`
/// (`tests/suite/magnitude.rs` checks both).
///
/// Slots: `["exp_avg", "exp_avg_sq", "s", "z0"]`. Group state: `["d", "r"]`.
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param};
/// use schedulefree::{conversion::ScheduleFree, decay::NoDecay, schedule::Constant};
/// use schedulefree::learner::Prodigy;
/// // Schedule-Free around it on ½‖w‖², from (1, −1).
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Prodigy { betas: (0.0, 0.999), ..Default::default() },
///     ScheduleFree::default(),
///     NoDecay,
///     Constant,
///     GroupConfig { lr: 1.0, weight_decay: 0.0 },
/// )?;
/// opt.add_param("w", &[2])?;
/// let mut w = vec![1.0, -1.0];
/// for _ in 0..500 {
///     let g = w.clone();
///     opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// }
/// let mut x = vec![0.0; 2];
/// opt.x_into("w", &w, &mut x)?;
/// assert!(x.iter().all(|v| v.abs() < 0.5), "{x:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prodigy {
    /// Adam's `(β1, β2)`, each in `[0, 1)`.
    pub betas: (f64, f64),
    /// `β3 ∈ [0, 1)` of the `s`/`r` averages; `None`: `sqrt(β2)`.
    pub beta3: Option<f64>,
    /// Denominator offset `ε > 0` (scaled by `d`).
    pub eps: f64,
    /// Initial estimate `d0 > 0`.
    pub d0: f64,
    /// Multiplier `≥ 0` of the estimate.
    pub d_coef: f64,
}

impl Default for Prodigy {
    /// optax defaults: betas (0.9, 0.999), `β3 = sqrt(β2)`, `eps = 1e-8`, `d0 = 1e-6`,
    /// `d_coef = 1`.
    fn default() -> Self {
        Prodigy {
            betas: (0.9, 0.999),
            beta3: None,
            eps: 1e-8,
            d0: 1e-6,
            d_coef: 1.0,
        }
    }
}

impl Prodigy {
    fn beta3(&self) -> f64 {
        self.beta3.unwrap_or_else(|| self.betas.1.sqrt())
    }
}

/// Per-step scalars of [`Prodigy`].
#[derive(Debug, Clone, Copy)]
pub struct ProdigyScalars {
    beta1: f64,
    beta2: f64,
    beta3: f64,
    /// `(1 − β1)·d`.
    m_coef: f64,
    /// `(1 − β2)·d²`.
    v_coef: f64,
    /// `(dlr/d0)·d`.
    s_coef: f64,
    /// `d·eps`.
    eps: f64,
}

impl Learner for Prodigy {
    type Scalars = ProdigyScalars;
    const SLOT_COUNTS: &'static [usize] = &[4];
    const PREPASS_LEN: usize = 2;

    fn name(&self) -> &'static str {
        "prodigy"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq", "s", "z0"]
    }
    fn validate(&self) -> Result<(), ConfigError> {
        validate_betas(self.betas.0, self.betas.1, self.eps)?;
        let b3 = self.beta3();
        check("beta3", b3, (0.0..1.0).contains(&b3), "0 <= beta3 < 1")?;
        check(
            "d0",
            self.d0,
            self.d0 > 0.0 && self.d0.is_finite(),
            "finite d0 > 0",
        )?;
        check(
            "d_coef",
            self.d_coef,
            self.d_coef >= 0.0 && self.d_coef.is_finite(),
            "finite d_coef >= 0",
        )
    }
    fn has_momentum(&self) -> bool {
        self.betas.0 != 0.0
    }
    fn group_state_names(&self) -> &'static [&'static str] {
        &["d", "r"]
    }
    fn init_group_state(&self, state: &mut GroupState) {
        state[0] = self.d0;
        state[1] = 0.0;
    }
    fn lr_factor(&self, k: u64, state: &GroupState, _red: &Reductions) -> f64 {
        let t = (k + 1) as f64;
        let (b1, b2) = self.betas;
        state[0] * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t))
    }
    fn scalars(&self, _k: StepIndex, lr: f64, state: &GroupState) -> ProdigyScalars {
        let (b1, b2) = self.betas;
        let d = state[0];
        ProdigyScalars {
            beta1: b1,
            beta2: b2,
            beta3: self.beta3(),
            m_coef: (1.0 - b1) * d,
            v_coef: (1.0 - b2) * d * d,
            s_coef: lr / self.d0 * d,
            eps: d * self.eps,
        }
    }
    #[inline(always)]
    fn prepass_factors<T: Element>(
        &self,
        sc: &ProdigyScalars,
        g: T,
        z: T,
        _y: T,
        slots: &[T],
    ) -> [(T, T); MAX_PREPASS] {
        let s = T::of(sc.beta3) * slots[2] + T::of(sc.s_coef) * g;
        let none = (T::zero(), T::zero());
        [(g, slots[3] - z), (s.abs(), T::one()), none, none]
    }
    fn update_group_state(
        &self,
        _k: u64,
        lr: f64,
        state: &mut GroupState,
        _red: &Reductions,
        prepass: &[f64],
    ) {
        let d = state[0];
        state[1] = self.beta3() * state[1] + d / self.d0 * lr * prepass[0];
        let s_l1 = prepass[1];
        if s_l1 > 0.0 {
            let d_hat = self.d_coef * state[1] / s_l1;
            if d_hat.is_finite() {
                state[0] = d.max(d_hat);
            }
        }
    }
    fn init_slots<T: Element>(&self, z: T, slots: &mut [T]) {
        slots[3] = z;
    }
    #[inline(always)]
    fn direction<T: Element>(&self, sc: &ProdigyScalars, g: T, _z: T, slots: &mut [T]) -> T {
        let m = T::of(sc.beta1) * slots[0] + T::of(sc.m_coef) * g;
        let v = T::of(sc.beta2) * slots[1] + T::of(sc.v_coef) * g * g;
        slots[0] = m;
        slots[1] = v;
        slots[2] = T::of(sc.beta3) * slots[2] + T::of(sc.s_coef) * g;
        m / (v.sqrt() + T::of(sc.eps))
    }
}
