//! Checkpoints: the model at its evaluation point `x` (a plain `VarMap` file, ready for
//! inference) together with everything needed to resume training bit for bit.
//!
//! A checkpoint directory holds
//! - [`MODEL_FILE`]: every var of the `VarMap` by its `VarMap` name, optimized vars at `x`
//!   (`VarMap::load` reads it);
//! - [`OPTIMIZER_FILE`]: the optimizer state ([`ScheduleFreeOptimizer::save`]'s format);
//! - [`TRAIN_POINT_FILE`], only when saved in train mode by a preset with modes: the
//!   optimized vars at the training point `y`, by optimizer name. In eval mode the vars hold
//!   `x` and the state holds `z`, which is everything PyTorch's `optimizer.train()` needs.
//!
//! Every file is written atomically and carries the same `checkpoint` id in its metadata;
//! loading refuses files from different saves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Var;
use candle_nn::VarMap;

use crate::error::CandleAdapterError;
use crate::host::{to_host, HostElement};
use crate::driver::Driver;
use crate::optimizer::{varmap_vars, with_driver, Core, ScheduleFreeOptimizer};
use crate::state_file;
use crate::tensor_file::{self, meta, HostTensor};

/// The model at `x`, by `VarMap` name.
pub const MODEL_FILE: &str = "model.safetensors";
/// The optimizer state.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The optimized vars at `y` (train-mode checkpoints of presets with modes only).
pub const TRAIN_POINT_FILE: &str = "train_point.safetensors";
/// Metadata `format` value of model and train-point files.
const POINT_FORMAT: &str = "schedulefree-candle/point";

/// A fresh id shared by the files of one save.
fn checkpoint_id(k: u64) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("k{k}-{nanos}-{}", std::process::id())
}

impl ScheduleFreeOptimizer {
    /// Save a checkpoint of `varmap` and this optimizer into `dir` (created if needed): the
    /// model at the evaluation point `x`, the optimizer state, and the training point when
    /// it differs (module docs). Works in train and eval mode; the vars are not changed.
    ///
    /// # Errors
    /// [`CandleAdapterError::VarNotInVarMap`] if an optimized var is not in `varmap`;
    /// [`CandleAdapterError::Io`], [`CandleAdapterError::Safetensors`],
    /// [`CandleAdapterError::Candle`], [`CandleAdapterError::VarMapPoisoned`].
    pub fn save_checkpoint(&self, varmap: &VarMap, dir: &Path) -> Result<(), CandleAdapterError> {
        std::fs::create_dir_all(dir).map_err(|source| CandleAdapterError::Io { path: dir.to_path_buf(), source })?;
        let vars = varmap_vars(varmap)?;
        let st = self.state();
        let id = checkpoint_id(st.groups.first().map_or(0, |g| g.k));
        let point_meta = || {
            HashMap::from([("format".to_string(), POINT_FORMAT.to_string()), ("checkpoint".to_string(), id.clone())])
        };
        let (model, train_point) = with_driver!(&self.core, d => points(d, &vars))?;
        let tp_path = dir.join(TRAIN_POINT_FILE);
        match &train_point {
            Some(y) => tensor_file::write(&tp_path, y, point_meta())?,
            None => match std::fs::remove_file(&tp_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(CandleAdapterError::Io { path: tp_path, source: e });
                }
                _ => {}
            },
        }
        state_file::save(&dir.join(OPTIMIZER_FILE), &st, &self.config, &[("checkpoint", id.clone())])?;
        tensor_file::write(&dir.join(MODEL_FILE), &model, point_meta())
    }

    /// Resume from a checkpoint written by [`ScheduleFreeOptimizer::save_checkpoint`]:
    /// restore the optimizer state and set every var of `varmap` to its saved value (the
    /// training point `y` for optimized vars of a train-mode checkpoint, else the model
    /// file's values). Build the optimizer with the same preset over the same vars first;
    /// the run then continues bit for bit. Everything is validated before anything changes.
    ///
    /// # Errors
    /// [`CandleAdapterError::CheckpointMismatch`] for files of different saves;
    /// [`CandleAdapterError::MissingTensor`], [`CandleAdapterError::UnexpectedTensor`],
    /// [`CandleAdapterError::TensorMismatch`] when the files do not match `varmap` or this
    /// optimizer; [`CandleAdapterError::State`] (from the core),
    /// [`CandleAdapterError::VarNotInVarMap`], [`CandleAdapterError::Io`],
    /// [`CandleAdapterError::Safetensors`], [`CandleAdapterError::Metadata`];
    /// [`CandleAdapterError::Candle`] if writing a var fails (then some vars may be set).
    pub fn load_checkpoint(&mut self, varmap: &VarMap, dir: &Path) -> Result<(), CandleAdapterError> {
        let opt_path = dir.join(OPTIMIZER_FILE);
        let (st, opt_meta) = state_file::load(&opt_path)?;
        let id = meta(&opt_path, &opt_meta, "checkpoint")?;
        let model = read_point(&dir.join(MODEL_FILE), id, dir)?;
        let saved_train_mode = st.groups.first().is_none_or(|g| g.train_mode);
        let train_point =
            if self.has_modes() && saved_train_mode { Some(read_point(&dir.join(TRAIN_POINT_FILE), id, dir)?) } else { None };

        let vars = varmap_vars(varmap)?;
        let model_path = dir.join(MODEL_FILE);
        let mut values: Vec<(&Var, HostTensor)> = Vec::with_capacity(vars.len());
        let mut model = model;
        for (name, var) in &vars {
            let t = take_matching(&mut model, &model_path, name, var)?;
            values.push((var, t));
        }
        if let Some(name) = model.keys().min() {
            return Err(CandleAdapterError::UnexpectedTensor { path: model_path, name: name.clone() });
        }
        let tp_path = dir.join(TRAIN_POINT_FILE);
        let optimized: Vec<(String, Var)> = self.vars().into_iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
        if let Some(e) = optimized.iter().find(|(_, v)| !vars.iter().any(|(_, w)| w.id() == v.id())) {
            return Err(CandleAdapterError::VarNotInVarMap { name: e.0.clone() });
        }
        if let Some(mut tp) = train_point {
            for (name, var) in &optimized {
                let t = take_matching(&mut tp, &tp_path, name, var)?;
                if let Some(slot) = values.iter_mut().find(|(v, _)| v.id() == var.id()) {
                    slot.1 = t;
                }
            }
            if let Some(name) = tp.keys().min() {
                return Err(CandleAdapterError::UnexpectedTensor { path: tp_path, name: name.clone() });
            }
        }
        self.load_state(&st)?;
        for (var, t) in values {
            var.set(&t.to_tensor(var.device())?)?;
        }
        Ok(())
    }
}

/// The model file's tensors (every var of `vars`, optimized ones at `x`) and, when it
/// differs, the training point of the optimized vars.
#[allow(clippy::type_complexity)]
fn points<T: HostElement>(
    d: &Driver<T>,
    vars: &[(String, Var)],
) -> Result<(Vec<(String, HostTensor)>, Option<Vec<(String, HostTensor)>>), CandleAdapterError> {
    if let Some(e) = d.entries.iter().find(|e| !vars.iter().any(|(_, v)| v.id() == e.var.id())) {
        return Err(CandleAdapterError::VarNotInVarMap { name: e.name.clone() });
    }
    let mut model = Vec::with_capacity(vars.len());
    for (name, var) in vars {
        let t = match d.entries.iter().position(|e| e.var.id() == var.id()) {
            Some(i) => HostTensor::from_values(var.dims(), d.eval_point(i)?),
            None => HostTensor::from_tensor(var.as_tensor())?,
        };
        model.push((name.clone(), t));
    }
    if !(d.opt.has_modes() && d.opt.is_train_mode()) {
        return Ok((model, None));
    }
    let mut y = Vec::with_capacity(d.entries.len());
    for e in &d.entries {
        y.push((e.name.clone(), HostTensor::from_values(e.var.dims(), to_host::<T>(e.var.as_tensor())?)));
    }
    Ok((model, Some(y)))
}

/// Read a model or train-point file and check it belongs to checkpoint `id`.
fn read_point(path: &Path, id: &str, dir: &Path) -> Result<HashMap<String, HostTensor>, CandleAdapterError> {
    let (tensors, metadata) = tensor_file::read(path)?;
    let format = meta(path, &metadata, "format")?;
    if format != POINT_FORMAT {
        return Err(CandleAdapterError::Metadata {
            path: path.to_path_buf(),
            key: "format".into(),
            message: format!("`{format}`, expected `{POINT_FORMAT}`"),
        });
    }
    let found = meta(path, &metadata, "checkpoint")?;
    if found != id {
        return Err(CandleAdapterError::CheckpointMismatch {
            dir: dir.to_path_buf(),
            what: format!("{} has `{found}`, {OPTIMIZER_FILE} has `{id}`", file_name(path)),
        });
    }
    Ok(tensors)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Remove tensor `name` from `tensors`, checking it has `var`'s shape and dtype.
fn take_matching(
    tensors: &mut HashMap<String, HostTensor>,
    path: &Path,
    name: &str,
    var: &Var,
) -> Result<HostTensor, CandleAdapterError> {
    let path: PathBuf = path.to_path_buf();
    let t = tensors
        .remove(name)
        .ok_or_else(|| CandleAdapterError::MissingTensor { path: path.clone(), name: name.to_string() })?;
    let expected: safetensors::Dtype = var.dtype().into();
    if t.dtype != expected || t.shape != var.dims() {
        return Err(CandleAdapterError::TensorMismatch {
            path,
            name: name.to_string(),
            what: format!("{:?} {:?} in the file, the var is {:?} {:?}", t.dtype, t.shape, expected, var.dims()),
        });
    }
    Ok(t)
}
