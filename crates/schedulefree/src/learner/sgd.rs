//! Stochastic gradient descent with optional heavy-ball / Nesterov momentum, matching
//! `torch.optim.SGD` (single-tensor path).

use super::{GroupState, Learner, StepIndex};
use crate::element::Element;
use crate::error::{ConfigError, check};

/// SGD: `d = g`, or with momentum `μ` and dampening `τ`:
/// `b ← g` on the parameter's first update, else `b ← μ·b + (1 − τ)·g`;
/// `d = g + μ·b` (Nesterov) or `d = b`.
///
/// Source: PyTorch `torch.optim.SGD` documentation (Sutskever et al. 2013 form).
/// Slots: `["momentum_buffer"]` when `momentum != 0`, none otherwise.
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param};
/// use schedulefree::{conversion::ScheduleFree, decay::NoDecay, schedule::Constant};
/// use schedulefree::learner::Sgd;
/// // Schedule-Free around it on ½‖w‖², from (1, −1).
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Sgd::plain(),
///     ScheduleFree::default(),
///     NoDecay,
///     Constant,
///     GroupConfig { lr: 0.5, weight_decay: 0.0 },
/// )?;
/// opt.add_param("w", &[2])?;
/// let mut w = vec![1.0, -1.0];
/// for _ in 0..200 {
///     let g = w.clone();
///     opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// }
/// let mut x = vec![0.0; 2];
/// opt.x_into("w", &w, &mut x)?;
/// assert!(x.iter().all(|v| v.abs() < 0.5), "{x:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sgd {
    /// Momentum `μ ∈ [0, 1)`; 0 disables the buffer.
    pub momentum: f64,
    /// Dampening `τ ∈ [0, 1]` of the gradient in the buffer update.
    pub dampening: f64,
    /// Use Nesterov's look-ahead form (requires `momentum > 0` and `dampening = 0`).
    pub nesterov: bool,
}

impl Sgd {
    /// Plain SGD without momentum (the learner inside Schedule-Free SGD).
    pub const fn plain() -> Self {
        Sgd {
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
        }
    }
}

/// Per-step scalars of [`Sgd`].
#[derive(Debug, Clone, Copy)]
pub struct SgdScalars {
    momentum: f64,
    one_minus_dampening: f64,
    first: bool,
}

impl Learner for Sgd {
    type Scalars = SgdScalars;
    const SLOT_COUNTS: &'static [usize] = &[0, 1];

    fn name(&self) -> &'static str {
        "sgd"
    }

    fn slot_names(&self) -> &'static [&'static str] {
        if self.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check(
            "momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "0 <= momentum < 1",
        )?;
        check(
            "dampening",
            self.dampening,
            (0.0..=1.0).contains(&self.dampening),
            "0 <= dampening <= 1",
        )?;
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(ConfigError::Unsupported(
                "nesterov momentum requires momentum > 0 and dampening = 0".into(),
            ));
        }
        Ok(())
    }

    fn has_momentum(&self) -> bool {
        self.momentum != 0.0
    }

    fn scalars(&self, k: StepIndex, _lr: f64, _state: &GroupState) -> SgdScalars {
        SgdScalars {
            momentum: self.momentum,
            one_minus_dampening: 1.0 - self.dampening,
            first: k.param == 0,
        }
    }

    #[inline(always)]
    fn direction<T: Element>(&self, sc: &SgdScalars, g: T, _z: T, slots: &mut [T]) -> T {
        if slots.is_empty() {
            return g;
        }
        let mu = T::of(sc.momentum);
        // torch initialises the buffer with the first gradient, undamped.
        let b = if sc.first {
            g
        } else {
            mu * slots[0] + T::of(sc.one_minus_dampening) * g
        };
        slots[0] = b;
        if self.nesterov { g + mu * b } else { b }
    }
}
