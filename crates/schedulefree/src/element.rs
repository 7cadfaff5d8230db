//! The floating-point element types the optimizers run on (`f32`, `f64`).

use num_traits::Float;
use std::fmt::Debug;

/// Storage dtype of parameter and state buffers, recorded in saved state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// IEEE-754 binary32.
    F32,
    /// IEEE-754 binary64.
    F64,
}

pub(crate) mod sealed {
    use crate::error::ConfigError;
    use crate::runtime::composed::Composed;
    use crate::runtime::{DynOptimizer, PresetConfig};

    /// Closes [`super::Element`] to `f32` and `f64`, and builds the run-time optimizers of
    /// each once, in this crate: generic code is compiled again in every crate that uses it
    /// (release builds share no instances), and every preset is every kernel.
    pub trait Sealed: Sized {
        /// [`PresetConfig::build_dyn`] (generic here; `f32` and `f64` override it with
        /// functions compiled in this crate).
        fn preset_dyn(c: &PresetConfig) -> Result<Box<dyn DynOptimizer<Self>>, ConfigError>
        where
            Self: super::Element,
        {
            c.build_dyn_here::<Self>()
        }
        /// [`Composed::build_dyn`], as [`Sealed::preset_dyn`].
        fn composed_dyn(c: &Composed) -> Result<Box<dyn DynOptimizer<Self>>, ConfigError>
        where
            Self: super::Element,
        {
            c.build_dyn_here::<Self>()
        }
    }

    macro_rules! sealed {
        ($t:ty) => {
            impl Sealed for $t {
                #[inline(never)]
                fn preset_dyn(c: &PresetConfig) -> Result<Box<dyn DynOptimizer<$t>>, ConfigError> {
                    c.build_dyn_here::<$t>()
                }
                #[inline(never)]
                fn composed_dyn(c: &Composed) -> Result<Box<dyn DynOptimizer<$t>>, ConfigError> {
                    c.build_dyn_here::<$t>()
                }
            }
        };
    }
    sealed!(f32);
    sealed!(f64);
}

/// A buffer element: `f32` or `f64`. Element-wise kernels compute in this type; per-step
/// scalars are computed in `f64` and rounded once with [`Element::of`].
pub trait Element: Float + Send + Sync + Debug + Default + 'static + sealed::Sealed {
    /// The dtype tag written into saved state.
    const DTYPE: Dtype;
    /// Round an `f64` scalar to this type (round-to-nearest).
    fn of(v: f64) -> Self;
    /// Widen to `f64` (exact).
    fn f64(self) -> f64;
}

impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        f64::from(self)
    }
}

impl Element for f64 {
    const DTYPE: Dtype = Dtype::F64;
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
}

/// `lerp(a, b, w) = a + w·(b − a)`, evaluated the way PyTorch's `torch.lerp` does so that
/// trajectories agree with the reference to the last bits: for `|w| ≥ 0.5` it uses
/// `b − (b − a)·(1 − w)`, which returns `b` exactly when `w = 1`.
#[inline(always)]
pub fn lerp<T: Element>(a: T, b: T, w: T) -> T {
    let diff = b - a;
    if w.abs() < T::of(0.5) {
        a + w * diff
    } else {
        b - diff * (T::one() - w)
    }
}
