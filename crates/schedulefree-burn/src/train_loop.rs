//! A minimal epoch loop around a [`ModuleStep`] optimizer ([`ModelOptimizer`](crate::ModelOptimizer)
//! or [`DeviceOptimizer`](crate::DeviceOptimizer)) whose validation runs at the eval point `x`
//! (Schedule-Free's returned point) unless told otherwise — the step users forget in PyTorch
//! (`optimizer.eval()` before validating).

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::error::BurnAdapterError;
use crate::module_step::ModuleStep;

/// What one epoch did.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport<R> {
    /// Epoch index, from 0.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (at `y`, as computed for the gradients);
    /// NaN for an epoch without batches.
    pub train_loss: f64,
    /// Optimizer steps taken in the epoch (skipped steps included).
    pub steps: usize,
    /// Whether validation ran at `x` (false: at `y`, or the preset has no modes).
    pub validated_at_x: bool,
    /// What the validation closure returned.
    pub validation: R,
}

/// Settings of [`TrainLoop::run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainLoop {
    /// Number of epochs.
    pub epochs: usize,
    /// Validate at `x` (default `true`); `false` validates the training module (`y`) itself.
    pub validate_at_x: bool,
}

impl TrainLoop {
    /// `epochs` epochs, validating at `x`.
    pub fn new(epochs: usize) -> Self {
        TrainLoop {
            epochs,
            validate_at_x: true,
        }
    }

    /// Turn validation at `x` on or off.
    pub fn validate_at_x(mut self, on: bool) -> Self {
        self.validate_at_x = on;
        self
    }

    /// Train `module` for the configured epochs with `optim`: a
    /// [`ModelOptimizer`](crate::ModelOptimizer) (host path) or a
    /// [`DeviceOptimizer`](crate::DeviceOptimizer) (state on the parameters' devices).
    ///
    /// Each epoch draws its batches from `batches(epoch)`; for each batch `loss(&module, batch)`
    /// returns a scalar loss tensor (shape `[1]`, on the autodiff device), whose gradients step
    /// `optim`. After the epoch `validate` gets the validation module: `optim.eval_module(&module)?.valid()`
    /// (parameters at `x`, no autodiff, layers in inference mode) or `module.valid()` when
    /// validation at `x` is off. Batch-norm statistics are those collected at `y`; recalibrate
    /// them inside `validate` with [`recalibrate_batch_norm`](crate::recalibrate_batch_norm) if
    /// the model has batch norm. Returns the trained module (at `y`) and one report per epoch.
    ///
    /// # Errors
    /// The first [`BurnAdapterError`] of a step or of computing `x`; training stops there.
    pub fn run<O, M, I, B, L, V, R>(
        &self,
        optim: &mut O,
        mut module: M,
        mut batches: impl FnMut(usize) -> I,
        mut loss: L,
        mut validate: V,
    ) -> Result<(M, Vec<EpochReport<R>>), BurnAdapterError>
    where
        O: ModuleStep,
        M: Module,
        I: IntoIterator<Item = B>,
        L: FnMut(&M, B) -> Tensor<1>,
        V: FnMut(&M) -> R,
    {
        let mut reports = Vec::with_capacity(self.epochs);
        for epoch in 0..self.epochs {
            let (mut total, mut steps) = (0.0_f64, 0_usize);
            for batch in batches(epoch) {
                let l = loss(&module, batch);
                total += l.clone().into_scalar::<f64>();
                let grads = GradientsParams::from_grads(l.backward(), &module);
                module = optim.step(module, grads)?.0;
                steps += 1;
            }
            let at_x = self.validate_at_x && optim.has_modes();
            let valid = if at_x {
                optim.eval_module(&module)?.valid()
            } else {
                module.valid()
            };
            reports.push(EpochReport {
                epoch,
                train_loss: if steps == 0 {
                    f64::NAN
                } else {
                    total / steps as f64
                },
                steps,
                validated_at_x: at_x,
                validation: validate(&valid),
            });
        }
        Ok((module, reports))
    }
}
