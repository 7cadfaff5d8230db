//! Batch-norm recalibration at the eval point (the practical notes of the reference `schedulefree` 1.4.1 README; Defazio et al., arXiv 2405.15682): running statistics collected
//! while training are statistics at `y`; before evaluating at `x`, run a few training batches
//! through the model at `x` in stats-update mode, without gradients, and average.
//!
//! burn's `BatchNorm` updates `r ← (1 − m)·r + m·s` with its `momentum: f64` field, which a
//! generic module traversal cannot change. So instead of setting the momentum to `1/i` (the
//! cumulative average), we set each running buffer to 0 before a batch, read `m·s_i` after it,
//! and divide the sum by `N·m` at the end; `m` is measured once per layer by running the first
//! batch a second time with the buffers at 1 (`r = (1 − m) + m·s_1`). Momenta are never
//! modified, so there is nothing to restore.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::error::BurnAdapterError;
use crate::module_params::{read_params, write_params};

/// Relative disagreement between the momentum estimates of one layer's channels above which the
/// forward pass is judged non-deterministic (e.g. dropout before the batch norm).
const MOMENTUM_TOLERANCE: f64 = 1e-4;

/// Paths of burn `BatchNorm` running buffers, grouped by layer path.
fn batch_norm_buffers<M: Module>(module: &M) -> BTreeMap<String, Vec<String>> {
    struct Find {
        stack: Vec<(String, String)>,
        out: BTreeMap<String, Vec<String>>,
    }
    impl ModuleVisitor for Find {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.stack
                .push((name.to_string(), container_type.to_string()));
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
            // The derive enters a field with the type of the struct that holds it.
            let Some((leaf, holder)) = self.stack.last() else {
                return;
            };
            let n = self.stack.len();
            if holder == "Struct:BatchNorm" && (leaf == "running_mean" || leaf == "running_var") {
                let layer: Vec<&str> = self.stack[..n - 1]
                    .iter()
                    .map(|(s, _)| s.as_str())
                    .collect();
                let path: Vec<&str> = self.stack.iter().map(|(s, _)| s.as_str()).collect();
                self.out
                    .entry(layer.join("."))
                    .or_default()
                    .push(path.join("."));
            }
        }
    }
    let mut f = Find {
        stack: Vec::new(),
        out: BTreeMap::new(),
    };
    module.visit(&mut f);
    f.out
}

/// Whether any float parameter of `module` is on an autodiff device (a training-state module,
/// as opposed to a `valid()` one).
fn has_autodiff<M: Module>(module: &M) -> bool {
    struct Any(bool);
    impl ModuleVisitor for Any {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 = self.0 || param.val().is_autodiff();
        }
    }
    let mut a = Any(false);
    module.visit(&mut a);
    a.0
}

/// `module` with every named buffer filled with `value`.
fn fill<M: Module>(module: M, buffers: &HashMap<String, usize>, value: f32) -> M {
    write_params(
        module,
        buffers
            .iter()
            .map(|(p, &n)| (p.clone(), vec![value; n]))
            .collect(),
    )
}

/// Current values of the named buffers, after folding in pending running-state updates.
fn read_buffers<M: Module>(
    module: &M,
    buffers: &HashMap<String, usize>,
) -> Result<HashMap<String, Vec<f32>>, BurnAdapterError> {
    // `valid()` synchronises every `RunningState` (its pending per-thread update is folded in);
    // the snapshot itself is not needed.
    drop(module.valid());
    Ok(read_params(module)?
        .into_iter()
        .filter(|p| buffers.contains_key(&p.path))
        .map(|p| (p.path, p.value))
        .collect())
}

/// Recalibrate burn `BatchNorm` running statistics at the parameters `module` holds.
///
/// Runs `forward(&module, batch)` on each of `batches` (training batches, on the training
/// autodiff device, as in the training forward pass) with batch norm in stats-update mode and
/// without building gradients, and sets every `BatchNorm`'s `running_mean` / `running_var` to the
/// plain mean over the `N` batches of the per-batch statistics (PyTorch's `momentum=None`
/// cumulative average). `module` should already hold `x`: pass `optim.eval_module(&model)?`.
/// The first batch runs twice (see the module docs), so `N + 1` forward passes in all.
///
/// `module` may be in training state (autodiff, as `eval_module` returns it) or a `valid()`
/// module: recalibration switches it to stats-update mode itself and returns it in the state it
/// came in (call `.valid()` before evaluating a training-state one). The result has its own
/// running-state buffers: burn shares them between clones, and the training module's
/// statistics must not change. Momenta are not modified. Layers are found by type (`BatchNorm` fields
/// `running_mean` / `running_var`); a module without batch norm is returned unchanged.
///
/// ```
/// use burn::module::Module;
/// use burn::nn::{BatchNorm, BatchNormConfig};
/// use burn::tensor::{Device, Tensor};
/// use schedulefree_burn::recalibrate_batch_norm;
///
/// let device = Device::default().autodiff();
/// let bn: BatchNorm = BatchNormConfig::new(2).init(&device);
/// let batches = vec![
///     Tensor::<2>::from_floats([[1.0, 0.0], [3.0, 0.0]], &device), // means 2, 0
///     Tensor::<2>::from_floats([[5.0, 2.0], [7.0, 2.0]], &device), // means 6, 2
/// ];
/// let bn = recalibrate_batch_norm(bn, batches, |m: &BatchNorm, b| m.forward(b))?;
/// let mean: Vec<f32> = bn.running_mean.value().into_data().to_vec().unwrap();
/// assert!((mean[0] - 4.0).abs() < 1e-5 && (mean[1] - 1.0).abs() < 1e-5);
/// # Ok::<(), schedulefree_burn::BurnAdapterError>(())
/// ```
///
/// # Errors
/// [`BurnAdapterError::BatchNorm`] if `batches` is empty, a layer's momentum is 0 (it would
/// never update), or the two passes over the first batch disagree (a non-deterministic forward,
/// e.g. dropout before a batch norm: disable it for recalibration); [`BurnAdapterError::Tensor`].
pub fn recalibrate_batch_norm<M, I, F, R>(
    module: M,
    batches: I,
    mut forward: F,
) -> Result<M, BurnAdapterError>
where
    M: Module,
    I: IntoIterator,
    I::Item: Clone,
    F: FnMut(&M, I::Item) -> R,
{
    let layers = batch_norm_buffers(&module);
    if layers.is_empty() {
        return Ok(module);
    }
    let mut batches = batches.into_iter();
    let Some(first) = batches.next() else {
        return Err(BurnAdapterError::BatchNorm("no batches given".into()));
    };
    let was_training = has_autodiff(&module);
    // Fresh running-state buffers (clones share them), autodiff and configured flags on.
    let module = module.valid().train();
    let shapes: HashMap<String, usize> = read_params(&module)?
        .into_iter()
        .filter(|p| layers.values().any(|b| b.contains(&p.path)))
        .map(|p| (p.path, p.value.len()))
        .collect();
    // A view without gradient tracking; it shares the running-state buffers with `module`.
    let runner = |m: &M| m.clone().no_grad();

    // First batch with buffers at 0 (gives m·s_1), then again at 1 (gives (1 − m) + m·s_1).
    let module = fill(module, &shapes, 0.0);
    forward(&runner(&module), first.clone());
    let mut sums: HashMap<String, Vec<f64>> = read_buffers(&module, &shapes)?
        .into_iter()
        .map(|(p, v)| (p, v.into_iter().map(f64::from).collect()))
        .collect();
    let module = fill(module, &shapes, 1.0);
    forward(&runner(&module), first);
    let at_one = read_buffers(&module, &shapes)?;
    let mut momentum = HashMap::new();
    for (layer, bufs) in &layers {
        let mut keep = Vec::new();
        for b in bufs {
            for (one, zero) in at_one[b].iter().zip(&sums[b]) {
                keep.push(f64::from(*one) - zero);
            }
        }
        let mean_keep = keep.iter().sum::<f64>() / keep.len().max(1) as f64;
        let spread = keep
            .iter()
            .map(|k| (k - mean_keep).abs())
            .fold(0.0, f64::max);
        let m = 1.0 - mean_keep;
        if spread > MOMENTUM_TOLERANCE * m.abs().max(f64::EPSILON) + 1e-6 {
            return Err(BurnAdapterError::BatchNorm(format!(
                "layer `{layer}`: two forward passes over the same batch gave different statistics; \
                 the forward must be deterministic (turn dropout off for recalibration)"
            )));
        }
        if m <= 1e-6 {
            return Err(BurnAdapterError::BatchNorm(format!(
                "layer `{layer}` has momentum {m:.3e}: its running statistics never update"
            )));
        }
        for b in bufs {
            momentum.insert(b.clone(), m);
        }
    }

    let mut n = 1_usize;
    let mut module = module;
    for batch in batches {
        module = fill(module, &shapes, 0.0);
        forward(&runner(&module), batch);
        for (p, v) in read_buffers(&module, &shapes)? {
            if let Some(s) = sums.get_mut(&p) {
                for (s, v) in s.iter_mut().zip(v) {
                    *s += f64::from(v);
                }
            }
        }
        n += 1;
    }
    let mean: HashMap<String, Vec<f32>> = sums
        .into_iter()
        .map(|(p, s)| {
            let scale = 1.0 / (n as f64 * momentum[&p]);
            (p, s.into_iter().map(|v| (v * scale) as f32).collect())
        })
        .collect();
    let module = write_params(module, mean);
    // Back to the state it came in: validation modules stay validation modules.
    Ok(if was_training { module } else { module.valid() })
}
