//! Saving and resuming the device optimizer in the host path's file format: the slots are
//! read back once when saving, and uploaded to each parameter's device at its first step
//! after loading (the device is the parameter's, known only then). A file written by
//! [`ModelOptimizer::save`](crate::ModelOptimizer::save) resumes here and the other way round.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use schedulefree::OptimizerState;

use super::{DeviceOptimizer, read_back};
use crate::ModelOptimizer;
use crate::error::BurnAdapterError;
use crate::model_optimizer::{
    MODEL_OPTIMIZER_FILE_VERSION, OptimizerFile, build_core, io_err, write_json,
};

impl DeviceOptimizer {
    /// Snapshot of the state (train mode, keyed by module path) in the host path's format:
    /// every slot is read back to the host (a full copy; not for every step).
    ///
    /// # Errors
    /// [`BurnAdapterError::Tensor`] if a slot cannot be read back.
    pub fn state(&self) -> Result<OptimizerState, BurnAdapterError> {
        let mut st = self.core.state();
        let names = self.core.slot_names();
        for (path, rec) in &mut st.params {
            if !rec.external {
                continue;
            }
            let slots = self.host_slots(path)?;
            rec.buffers = names
                .iter()
                .zip(slots)
                .map(|(n, s)| (n.to_string(), s.into_iter().map(f64::from).collect()))
                .collect();
            rec.external = false;
        }
        Ok(st)
    }

    /// The slots of `path` on the host, in the core's slot order.
    fn host_slots(&self, path: &str) -> Result<Vec<Vec<f32>>, BurnAdapterError> {
        if let Some(p) = self.pending.get(path) {
            return Ok(p.clone());
        }
        let missing = || BurnAdapterError::MissingState {
            path: path.to_string(),
        };
        self.slots
            .get(path)
            .ok_or_else(missing)?
            .iter()
            .map(|t| read_back(t.clone(), path))
            .collect()
    }

    /// Replace the state with `state` (train mode, keyed by module path, with buffers: from
    /// [`state`](Self::state) or [`ModelOptimizer::state`](crate::ModelOptimizer::state)).
    /// The slots go to each parameter's device at its next step.
    ///
    /// # Errors
    /// [`BurnAdapterError::EvalModeState`] for a state saved in eval mode; the core's
    /// [`BurnAdapterError::State`] (version, method, names, buffer lengths, ...) and
    /// [`BurnAdapterError::Param`]. The optimizer is unchanged on error.
    pub fn load_state(&mut self, state: &OptimizerState) -> Result<(), BurnAdapterError> {
        let group = self.core.group_config(0);
        self.install(state, group)
    }

    /// Write the state and group 0's configuration to `path` as JSON, atomically, in the file
    /// format of [`ModelOptimizer::save`](crate::ModelOptimizer::save).
    ///
    /// # Errors
    /// [`BurnAdapterError::Tensor`] (reading a slot back), [`BurnAdapterError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), BurnAdapterError> {
        let file = OptimizerFile {
            format_version: MODEL_OPTIMIZER_FILE_VERSION,
            preset: self.preset.clone(),
            group: self
                .core
                .group_config(0)
                .ok_or_else(|| io_err(path, "the optimizer has no group 0"))?,
            state: self.state()?,
        };
        write_json(path, &file)
    }

    /// Read a file written by [`save`](Self::save) (or by `ModelOptimizer::save`) and load it,
    /// with group 0's lr and weight decay.
    ///
    /// # Errors
    /// [`BurnAdapterError::Io`] (unreadable, unparsable, other format version), then as
    /// [`load_state`](Self::load_state).
    pub fn load(&mut self, path: &Path) -> Result<(), BurnAdapterError> {
        let file = OptimizerFile::read(path)?;
        self.install(&file.state, Some(file.group))
    }

    /// A [`ModelOptimizer`] on the host path ([`Placement::Host`](crate::Placement::Host))
    /// holding this optimizer's state, configuration and tag rules (the slots read back once): for checkpoints at `x`
    /// ([`save_checkpoint`](crate::save_checkpoint)) and whatever else the host path offers.
    ///
    /// ```no_run
    /// # fn demo(model: burn::nn::Linear, dev: &schedulefree_burn::DeviceOptimizer) -> Result<(), schedulefree_burn::BurnAdapterError> {
    /// schedulefree_burn::save_checkpoint(&model, &dev.to_model_optimizer()?, "ckpt".as_ref())?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`BurnAdapterError::Tensor`] (reading a slot back), then as
    /// [`ModelOptimizer::load_state`].
    pub fn to_model_optimizer(&self) -> Result<ModelOptimizer, BurnAdapterError> {
        let mut host = ModelOptimizer::new(self.preset.clone())?
            .with_tag_rules(self.tag_rules.clone())
            .with_placement(crate::Placement::Host);
        if let Some(g) = self.core.group_config(0) {
            host.set_group_config(g)?;
        }
        host.load_state(&self.state()?)?;
        Ok(host)
    }

    /// Take the state and group configuration of `host` (for example after
    /// [`load_checkpoint`](crate::load_checkpoint) resumed it); the slots go to each
    /// parameter's device at its next step.
    ///
    /// # Errors
    /// As [`load_state`](Self::load_state). The optimizer is unchanged on error.
    pub fn load_from(&mut self, host: &ModelOptimizer) -> Result<(), BurnAdapterError> {
        self.install(&host.state()?, host.group_config())
    }

    /// Validate `state` with its host buffers, then keep the buffers aside (pending upload)
    /// and give the core the state with its slots marked external.
    fn install(
        &mut self,
        state: &OptimizerState,
        group: Option<schedulefree::GroupConfig>,
    ) -> Result<(), BurnAdapterError> {
        if state.groups.iter().any(|g| !g.train_mode) {
            return Err(BurnAdapterError::EvalModeState);
        }
        // The core checks every buffer (names, lengths, values) on this load.
        build_core(&self.preset, group, state)?;
        let names = self.core.slot_names();
        let mut external = state.clone();
        let mut pending = HashMap::new();
        for (path, rec) in &mut external.params {
            if rec.external {
                return Err(BurnAdapterError::StateWithoutSlots { path: path.clone() });
            }
            if !rec.has_state {
                continue;
            }
            let mut buffers = std::mem::take(&mut rec.buffers);
            let slots = names
                .iter()
                .map(|n| {
                    // Exact: the core accepted them as f32 values.
                    let b = buffers.remove(*n).unwrap_or_default();
                    b.into_iter().map(|v| v as f32).collect()
                })
                .collect();
            pending.insert(path.clone(), slots);
            rec.external = true;
        }
        let (core, shapes) = build_core(&self.preset, group, &external)?;
        self.core = core;
        self.shapes = shapes;
        self.slots.clear();
        self.pending = pending;
        Ok(())
    }

    /// The slots of `path` on `like`'s device: taken out of the live ones, or uploaded from a
    /// loaded state.
    pub(super) fn take_slots(&mut self, path: &str, like: &Tensor<1>) -> Vec<Tensor<1>> {
        if let Some(s) = self.slots.remove(path) {
            // The module may have moved to another device since the last step.
            return s.into_iter().map(|t| t.to_device(&like.device())).collect();
        }
        self.pending
            .remove(path)
            .map(|p| upload(&p, like))
            .unwrap_or_default()
    }

    /// The slots of `path` on `like`'s device without changing anything (`None`: no state).
    pub(super) fn slots_for(&self, path: &str, like: &Tensor<1>) -> Option<Vec<Tensor<1>>> {
        stored_slots(&self.slots, &self.pending, path, like)
    }
}

/// [`DeviceOptimizer::slots_for`] from the optimizer's live and pending slots.
pub(super) fn stored_slots(
    slots: &HashMap<String, Vec<Tensor<1>>>,
    pending: &HashMap<String, Vec<Vec<f32>>>,
    path: &str,
    like: &Tensor<1>,
) -> Option<Vec<Tensor<1>>> {
    let device = like.device();
    slots
        .get(path)
        .map(|s| s.iter().map(|t| t.clone().to_device(&device)).collect())
        .or_else(|| pending.get(path).map(|p| upload(p, like)))
}

pub(super) fn upload(slots: &[Vec<f32>], like: &Tensor<1>) -> Vec<Tensor<1>> {
    slots
        .iter()
        .map(|s| Tensor::from_data(TensorData::new(s.clone(), [s.len()]), &like.device()))
        .collect()
}
