//! The per-tensor path: a `burn::optim::Optimizer` for the elementwise presets, so that they
//! plug into burn's `ModuleOptimizer` (and so into burn-train's `Learner`) unchanged.
//!
//! burn calls `step(lr, tensor, grad, state)` once per parameter with a state that must be
//! plain data (`RecordState` rebuilds it without access to the optimizer). So the state holds
//! the core's per-parameter scalars and slot buffers, and each call rebuilds a one-parameter
//! core optimizer from the preset, loads that state, steps it on host copies and writes back.
//! This costs copies per step (measured in `benches/step.rs`); the math is the core's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use burn::module::{Module, ModuleMapper, Param as BurnParam};
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{DType, Device, Tensor, TensorCreationOptions, TensorData};
use burn_pack::Scalar;
use schedulefree::{
    DynOptimizer, GroupConfig, GroupRecord, GroupStepInfo, Param, ParamRecord, PresetConfig,
};

use crate::error::BurnAdapterError;
use crate::module_params::replace_value;

/// Name of the single parameter inside the per-tensor core optimizer.
const NAME: &str = "p";

/// A Schedule-Free (or any elementwise) preset as a burn per-tensor optimizer:
///
/// ```
/// use burn::optim::ModuleOptimizer;
/// use schedulefree::{AdamWScheduleFree, PresetConfig};
/// use schedulefree_burn::TensorOptimizer;
///
/// let preset = PresetConfig::AdamWScheduleFree(AdamWScheduleFree { warmup_steps: 100, ..Default::default() });
/// let optim: ModuleOptimizer = TensorOptimizer::new(preset)?.into();
/// // model = optim.step(0.0025, model, grads);  // burn's lr replaces the preset's `lr`
/// # Ok::<(), schedulefree_burn::BurnAdapterError>(())
/// ```
///
/// The lr burn passes to `step` (a constant or an `LrScheduler`, e.g. [`ScheduleLr`](crate::ScheduleLr))
/// is the peak lr of the step; the preset's own schedule and warmup still multiply it, and the
/// preset's `weight_decay` applies. The preset's `lr` field is not used.
///
/// # Deviations from [`ModelOptimizer`](crate::ModelOptimizer)
/// - Each tensor counts its own updates: the step counter `k` (warmup, averaging weights, Adam
///   bias correction) advances only when the tensor gets a gradient. With every parameter
///   receiving a gradient every step (the usual case) both paths are identical.
/// - burn keeps the state keyed by `ParamId`, which burn does not restore on load; record the
///   `ModuleOptimizer` only together with a module whose ids it created, or use
///   [`ModelOptimizer`](crate::ModelOptimizer), whose state is keyed by module path.
/// - The eval point `x` needs the state of every parameter, which burn does not expose from a
///   `ModuleOptimizer`. To validate or export at `x`, use [`ModelOptimizer`](crate::ModelOptimizer):
///   `let (model, _) = optim.step(model, grads)?; let at_x = optim.eval_module(&model)?.valid();`
///
/// # Errors
/// burn's `Optimizer::step` cannot return errors. A step the core refuses (a non-finite or
/// negative lr from the scheduler, an lr so large that the averaging weight overflows) leaves
/// the tensor and its state unchanged and records the error; read it with
/// [`take_error`](Self::take_error) (clones share the record). Non-finite gradients skip the
/// tensor's step, as the core's default policy does.
#[derive(Debug, Clone)]
pub struct TensorOptimizer {
    preset: PresetConfig,
    weight_decay: f64,
    error: Arc<Mutex<Option<BurnAdapterError>>>,
}

impl TensorOptimizer {
    /// Wrap `preset` (validated here, once).
    ///
    /// # Errors
    /// [`BurnAdapterError::Config`] for invalid hyperparameters.
    pub fn new(preset: PresetConfig) -> Result<Self, BurnAdapterError> {
        let core = preset.build_dyn::<f32>()?;
        if core.needs_loss()
            || core
                .state()
                .groups
                .iter()
                .any(|g| !g.learner_state.is_empty())
        {
            return Err(BurnAdapterError::Config(schedulefree::ConfigError::Unsupported(
                "learners with global reductions (AdaGrad-Norm, Polyak, Prodigy) need every tensor of the step \
                 at once; use ModelOptimizer (burn's per-tensor Optimizer sees one tensor at a time)"
                    .into(),
            )));
        }
        let weight_decay = core.group_config(0).map_or(0.0, |g| g.weight_decay);
        Ok(TensorOptimizer {
            preset,
            weight_decay,
            error: Arc::new(Mutex::new(None)),
        })
    }

    /// The preset.
    pub fn preset(&self) -> &PresetConfig {
        &self.preset
    }

    /// The first error a step met since the last call (see the type's docs), if any.
    pub fn take_error(&self) -> Option<BurnAdapterError> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }

    fn record_error(&self, e: BurnAdapterError) {
        if let Ok(mut slot) = self.error.lock()
            && slot.is_none()
        {
            *slot = Some(e);
        }
    }

    /// A copy of `module` whose parameters hold the eval point `x`, computed by the core from
    /// the states `optim` (a `ModuleOptimizer` built from this optimizer) keeps for it; `module`
    /// (at `y`) is untouched. Parameters without state (never stepped, or stepped by another
    /// optimizer of a group) are copied unchanged; presets without modes give an identity copy.
    ///
    /// burn does not expose a `ModuleOptimizer`'s states, so this serializes them
    /// (`ModuleOptimizer::into_bytes`, a full copy) and reads them back by `ParamId`: fine for
    /// validation every few hundred steps; [`ModelOptimizer::eval_module`](crate::ModelOptimizer::eval_module)
    /// is the cheap way. The ids must be those `optim` stepped (same module lineage, same process).
    ///
    /// # Errors
    /// [`BurnAdapterError::Record`] if burn cannot serialize the states, [`BurnAdapterError::Tensor`],
    /// the core's errors.
    pub fn eval_module<M: Module>(
        &self,
        optim: &ModuleOptimizer,
        module: &M,
    ) -> Result<M, BurnAdapterError> {
        if !self.preset.has_modes() {
            return Ok(module.clone());
        }
        let record_err = |e: &dyn std::fmt::Display| BurnAdapterError::Record {
            path: "ModuleOptimizer".into(),
            message: e.to_string(),
        };
        let bytes = optim.into_bytes().map_err(|e| record_err(&e))?;
        let reader = burn_pack::Reader::from_bytes(bytes).map_err(|e| record_err(&e))?;
        let mut source = StateSource::new(reader.scalars().clone());
        for t in reader.into_tensors().map_err(|e| record_err(&e))? {
            let (name, dtype, shape, _id, bytes) = t.into_parts().map_err(|e| record_err(&e))?;
            source.insert_tensor(name, TensorData::from_bytes(bytes, shape, dtype));
        }
        let mut mapper = EvalMapper {
            optim: self,
            source,
            error: None,
        };
        let out = module.clone().map(&mut mapper);
        match mapper.error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// `x` for one tensor at `y` = `value` with `state`, by the core.
    fn eval_host(
        &self,
        shape: &[usize],
        value: &[f32],
        state: &HostState,
    ) -> Result<Vec<f32>, BurnAdapterError> {
        let mut core = self.preset.build_dyn::<f32>()?;
        core.add_param_to(0, NAME, shape)?;
        load_host_state(core.as_mut(), shape, state)?;
        let mut x = vec![0.0_f32; value.len()];
        core.eval_params_into(NAME, value, &mut x)?;
        Ok(x)
    }

    /// The core step on host buffers: returns the new value and state, or `None` if the core
    /// skipped the step (non-finite gradient).
    fn step_host(
        &self,
        lr: f64,
        shape: &[usize],
        value: &mut [f32],
        grad: &[f32],
        state: Option<&HostState>,
    ) -> Result<Option<HostState>, BurnAdapterError> {
        let mut core = self.preset.build_dyn::<f32>()?;
        core.add_param_to(0, NAME, shape)?;
        if let Some(st) = state {
            load_host_state(core.as_mut(), shape, st)?;
        }
        core.set_group_config(
            0,
            GroupConfig {
                lr,
                weight_decay: self.weight_decay,
            },
        )?;
        let info = core.step(&mut [Param::new(NAME, value, grad)])?;
        if info.skipped.is_some() {
            return Ok(None);
        }
        Ok(Some(host_state(core.as_ref())?))
    }
}

/// The core's per-parameter state of a single-parameter optimizer, in host memory.
struct HostState {
    scalars: Scalars,
    /// Slot buffers in the core's slot order.
    slots: Vec<Vec<f32>>,
}

/// The scalar part of [`TensorState`]: the group's counters (the tensor is its own group).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scalars {
    k: u64,
    updates: u64,
    lr_max: f64,
    weight_sum: f64,
    last: GroupStepInfo,
}

fn host_state(core: &dyn DynOptimizer<f32>) -> Result<HostState, BurnAdapterError> {
    let st = core.state();
    let missing = |what: &str| BurnAdapterError::Tensor {
        path: NAME.into(),
        message: format!("core state lacks {what}"),
    };
    let g = st.groups.first().ok_or_else(|| missing("group 0"))?;
    let p = st
        .params
        .get(NAME)
        .ok_or_else(|| missing("the parameter"))?;
    let slots = st
        .slots
        .iter()
        .map(|s| {
            // Buffers are f64 copies of f32 values: the cast back is exact.
            p.buffers
                .get(s)
                .map(|b| b.iter().map(|&v| v as f32).collect())
                .ok_or_else(|| missing(s))
        })
        .collect::<Result<Vec<Vec<f32>>, _>>()?;
    Ok(HostState {
        scalars: Scalars {
            k: g.k,
            updates: p.updates,
            lr_max: g.lr_max,
            weight_sum: g.weight_sum,
            last: g.last,
        },
        slots,
    })
}

fn load_host_state(
    core: &mut dyn DynOptimizer<f32>,
    shape: &[usize],
    st: &HostState,
) -> Result<(), BurnAdapterError> {
    let mut s = core.state();
    if s.slots.len() != st.slots.len() {
        return Err(BurnAdapterError::Tensor {
            path: NAME.into(),
            message: format!(
                "state has {} slot buffers, the preset has {:?}",
                st.slots.len(),
                s.slots
            ),
        });
    }
    let c = st.scalars;
    s.groups = vec![GroupRecord {
        k: c.k,
        lr_max: c.lr_max,
        weight_sum: c.weight_sum,
        train_mode: true,
        last: c.last,
        learner_state: BTreeMap::new(),
    }];
    let buffers: BTreeMap<String, Vec<f64>> = s
        .slots
        .iter()
        .zip(&st.slots)
        .map(|(n, b)| (n.clone(), b.iter().map(|&v| f64::from(v)).collect()))
        .collect();
    s.params.insert(
        NAME.to_string(),
        ParamRecord {
            group: 0,
            shape: shape.to_vec(),
            updates: c.updates,
            has_state: true,
            buffers,
            tags: Default::default(),
            radius: None,
            external: false,
        },
    );
    core.load_state(&s)?;
    Ok(())
}

/// The per-parameter state [`TensorOptimizer`] keeps in burn's `ModuleOptimizer`: the core's
/// counters for this tensor and its slot buffers (`z`, `exp_avg_sq`, ... in the core's slot
/// order, each of the parameter's shape, `f32`). Recorded as scalars `k`, `updates`, `lr_max`,
/// `weight_sum`, `last_*` and tensors `slot.0`, `slot.1`, ... with a count `slots`.
#[derive(Debug, Clone)]
pub struct TensorState<const D: usize> {
    scalars: Scalars,
    slots: Vec<Tensor<D>>,
}

impl<const D: usize> TensorState<D> {
    /// Completed updates of this tensor.
    pub fn step_count(&self) -> u64 {
        self.scalars.k
    }
    /// The slot buffers, in the core's slot order.
    pub fn slots(&self) -> &[Tensor<D>] {
        &self.slots
    }
}

fn scalar<T: TryFrom<Scalar>>(src: &mut StateSource, prefix: &str, leaf: &str) -> Option<T> {
    T::try_from(src.take_scalar(prefix, leaf)?).ok()
}

impl<const D: usize> RecordState for TensorState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        let c = &self.scalars;
        out.push_scalar(prefix, "k", Scalar::from(c.k));
        out.push_scalar(prefix, "updates", Scalar::from(c.updates));
        out.push_scalar(prefix, "lr_max", Scalar::from(c.lr_max));
        out.push_scalar(prefix, "weight_sum", Scalar::from(c.weight_sum));
        out.push_scalar(prefix, "last_k", Scalar::from(c.last.k));
        out.push_scalar(prefix, "last_lr", Scalar::from(c.last.lr));
        out.push_scalar(prefix, "last_c", Scalar::from(c.last.c));
        out.push_scalar(prefix, "last_lr_max", Scalar::from(c.last.lr_max));
        out.push_scalar(prefix, "last_weight_sum", Scalar::from(c.last.weight_sum));
        out.push_scalar(prefix, "last_grad_l1", Scalar::from(c.last.grad_l1));
        out.push_scalar(prefix, "last_grad_l2", Scalar::from(c.last.grad_l2));
        out.push_scalar(prefix, "last_lr_factor", Scalar::from(c.last.lr_factor));
        out.push_scalar(
            prefix,
            "last_skipped_steps",
            Scalar::from(c.last.skipped_steps),
        );
        out.push_scalar(prefix, "slots", Scalar::from(self.slots.len()));
        for (i, t) in self.slots.iter().enumerate() {
            out.push_tensor(prefix, &format!("slot.{i}"), t.to_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let scalars = Scalars {
            k: scalar(src, prefix, "k")?,
            updates: scalar(src, prefix, "updates")?,
            lr_max: scalar(src, prefix, "lr_max")?,
            weight_sum: scalar(src, prefix, "weight_sum")?,
            last: GroupStepInfo {
                k: scalar(src, prefix, "last_k")?,
                lr: scalar(src, prefix, "last_lr")?,
                c: scalar(src, prefix, "last_c")?,
                lr_max: scalar(src, prefix, "last_lr_max")?,
                weight_sum: scalar(src, prefix, "last_weight_sum")?,
                grad_l1: scalar(src, prefix, "last_grad_l1")?,
                grad_l2: scalar(src, prefix, "last_grad_l2")?,
                lr_factor: scalar(src, prefix, "last_lr_factor").unwrap_or(1.0),
                skipped_steps: scalar(src, prefix, "last_skipped_steps").unwrap_or(0),
            },
        };
        let n: usize = scalar(src, prefix, "slots")?;
        let slots = (0..n)
            .map(|i| {
                src.take_tensor(prefix, &format!("slot.{i}"))
                    .map(|d| Tensor::from_data(d, device))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(TensorState { scalars, slots })
    }
}

fn host<const D: usize>(t: Tensor<D>, what: &str) -> Result<Vec<f32>, BurnAdapterError> {
    t.try_into_vec_as::<f32>()
        .map_err(|e| BurnAdapterError::Tensor {
            path: what.into(),
            message: e.to_string(),
        })
}

/// A tensor of `like`'s shape, device and dtype holding `values`.
fn device_tensor<const D: usize>(
    values: Vec<f32>,
    dims: [usize; D],
    like: &Tensor<D>,
) -> Tensor<D> {
    let t = slot_tensor(values, dims, &like.device());
    if t.dtype() == like.dtype() {
        t
    } else {
        t.cast(like.dtype())
    }
}

/// An `f32` tensor (slot buffers stay `f32` whatever the parameter's dtype).
fn slot_tensor<const D: usize>(values: Vec<f32>, dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::<D>::from_data(
        TensorData::new(values, dims),
        TensorCreationOptions::new(device.clone()).with_dtype(DType::F32),
    )
}

impl Optimizer for TensorOptimizer {
    type State<const D: usize> = TensorState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let dims = tensor.dims();
        let attempt = || -> Result<Option<(Tensor<D>, TensorState<D>)>, BurnAdapterError> {
            let mut value = host(tensor.clone(), "parameter")?;
            let g = host(grad, "gradient")?;
            let prev = match &state {
                Some(s) => Some(HostState {
                    scalars: s.scalars,
                    slots: s
                        .slots
                        .iter()
                        .map(|t| host(t.clone(), "state slot"))
                        .collect::<Result<_, _>>()?,
                }),
                None => None,
            };
            let Some(next) = self.step_host(lr, &dims, &mut value, &g, prev.as_ref())? else {
                return Ok(None);
            };
            let slots = next
                .slots
                .into_iter()
                .map(|b| slot_tensor(b, dims, &tensor.device()))
                .collect();
            Ok(Some((
                device_tensor(value, dims, &tensor),
                TensorState {
                    scalars: next.scalars,
                    slots,
                },
            )))
        };
        match attempt() {
            Ok(Some((t, s))) => (t, Some(s)),
            Ok(None) => (tensor, state),
            Err(e) => {
                self.record_error(e);
                (tensor, state)
            }
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        TensorState {
            scalars: state.scalars,
            slots: state
                .slots
                .into_iter()
                .map(|t| t.to_device(device))
                .collect(),
        }
    }
}

/// Replaces each parameter that has a [`TensorState`] in `source` by its eval point.
struct EvalMapper<'o> {
    optim: &'o TensorOptimizer,
    source: StateSource,
    error: Option<BurnAdapterError>,
}

impl ModuleMapper for EvalMapper<'_> {
    fn map_float<const D: usize>(&mut self, param: BurnParam<Tensor<D>>) -> BurnParam<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let prefix = param.id.val().to_string();
        let Some(state) =
            TensorState::<D>::state_unflatten(&prefix, &mut self.source, &Device::default())
        else {
            return param;
        };
        let attempt = || -> Result<Vec<f32>, BurnAdapterError> {
            let value = host(param.val(), "parameter")?;
            let slots = state
                .slots
                .iter()
                .map(|t| host(t.clone(), "state slot"))
                .collect::<Result<_, _>>()?;
            let dims = param.lazy_shape().to_vec();
            self.optim.eval_host(
                &dims,
                &value,
                &HostState {
                    scalars: state.scalars,
                    slots,
                },
            )
        };
        match attempt() {
            Ok(x) => replace_value(param, x),
            Err(e) => {
                self.error = Some(e);
                param
            }
        }
    }
}
