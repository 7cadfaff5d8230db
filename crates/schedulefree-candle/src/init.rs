//! Seeded, reproducible initialisation of a `VarMap` (candle's CPU random generator cannot be
//! seeded, so `candle_nn`'s own initialisers differ from run to run).

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::CandleAdapterError;
use crate::optimizer::varmap_vars;

/// Fan-in of a weight of shape `dims` (`dims[1] × receptive field`), as PyTorch and
/// `candle_nn::init::FanInOut::FanIn` compute it; `None` below rank 2.
fn fan_in(dims: &[usize]) -> Option<usize> {
    (dims.len() >= 2).then(|| dims[1] * dims[2..].iter().product::<usize>())
}

/// Re-initialise the floating-point vars of `varmap` from one ChaCha8 stream seeded by
/// `seed`, visiting vars in name order, so that the same seed and model give the same
/// values on every run and platform:
///
/// - rank ≥ 2 (linear / convolution weights, embeddings): Kaiming uniform with the ReLU gain,
///   `U(−b, b)` with `b = √(6 / fan_in)` — the variance (`2 / fan_in`) of `candle_nn::linear`'s
///   default Kaiming-normal initialisation;
/// - rank ≤ 1 named `<prefix>bias` next to a rank ≥ 2 `<prefix>weight`: `U(−1/√fan_in,
///   1/√fan_in)` with the weight's fan-in, as `candle_nn::linear` initialises biases;
/// - every other var (normalisation scales and shifts, which candle initialises to the
///   constants 1 and 0) is left as it is.
///
/// Values are drawn in `f64` and rounded to each var's dtype.
///
/// # Errors
/// [`CandleAdapterError::VarMapPoisoned`]; [`CandleAdapterError::Candle`] if a var cannot be
/// written.
pub fn seeded_init(varmap: &VarMap, seed: u64) -> Result<(), CandleAdapterError> {
    let vars = varmap_vars(varmap)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in &vars {
        if !var.dtype().is_float() || var.elem_count() == 0 {
            continue;
        }
        let fan = fan_in(var.dims()).or_else(|| {
            let weight = format!("{}weight", name.strip_suffix("bias")?);
            vars.iter()
                .find(|(n, _)| *n == weight)
                .and_then(|(_, w)| fan_in(w.dims()))
        });
        let bound = match (fan, var.rank() >= 2) {
            (Some(f), true) if f > 0 => (6.0 / f as f64).sqrt(),
            (Some(f), false) if f > 0 => 1.0 / (f as f64).sqrt(),
            _ => continue,
        };
        let values: Vec<f64> = (0..var.elem_count())
            .map(|_| bound * (2.0 * rng.random::<f64>() - 1.0))
            .collect();
        let t = Tensor::from_vec(values, var.shape(), &Device::Cpu)?
            .to_dtype(var.dtype())?
            .to_device(var.device())?;
        var.set(&t)?;
    }
    Ok(())
}
