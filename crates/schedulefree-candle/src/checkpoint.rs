//! Checkpoints: the model at its evaluation point `x` (a plain `VarMap` file, ready for
//! inference) together with everything needed to resume training bit for bit.
//!
//! A checkpoint directory holds
//! - [`MODEL_FILE`]: every var of the `VarMap` by its `VarMap` name, optimized vars at `x`
//!   (`VarMap::load` reads it);
//! - [`OPTIMIZER_FILE`]: the optimizer state ([`ScheduleFreeOptimizer::save`]'s format),
//!   plus the `VarMap` name of each optimized var (metadata `varmap_names`), so that a resume
//!   matches state to vars by `VarMap` name whatever order the optimizer was built in;
//! - [`TRAIN_POINT_FILE`], only when saved in train mode by a preset with modes: the
//!   optimized vars at the training point `y`, by `VarMap` name. In eval mode the vars hold
//!   `x` and the state holds `z`, which is everything PyTorch's `optimizer.train()` needs.
//!
//! Every file is written atomically and carries the same `checkpoint` id in its metadata;
//! loading refuses files from different saves.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Tensor, Var};
use candle_nn::VarMap;

use crate::error::CandleAdapterError;
use crate::optimizer::{Core, ScheduleFreeOptimizer, varmap_vars, with_driver};
use crate::state_file;
use crate::tensor_file::{self, HostTensor, NamedTensors, meta};

/// The model at `x`, by `VarMap` name.
pub const MODEL_FILE: &str = "model.safetensors";
/// The optimizer state.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The optimized vars at `y` (train-mode checkpoints of presets with modes only).
pub const TRAIN_POINT_FILE: &str = "train_point.safetensors";
/// Optimizer-file metadata key: JSON map from optimizer name to `VarMap` name.
const VARMAP_NAMES: &str = "varmap_names";
/// Metadata `format` value of model and train-point files.
const POINT_FORMAT: &str = "schedulefree-candle/point";

/// A fresh id shared by the files of one save.
fn checkpoint_id(k: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
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
        let vars = varmap_vars(varmap)?;
        let names = self.varmap_names(&vars)?;
        std::fs::create_dir_all(dir).map_err(|source| CandleAdapterError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let st = self.state()?;
        let id = checkpoint_id(st.groups.first().map_or(0, |g| g.k));
        let point_meta = || {
            HashMap::from([
                ("format".to_string(), POINT_FORMAT.to_string()),
                ("checkpoint".to_string(), id.clone()),
            ])
        };
        let (model, train_point) = with_driver!(&self.core, d => points(
            d.opt.has_modes() && d.opt.is_train_mode(),
            |var| d.entries.iter().position(|e| e.var.id() == var.id()),
            |i| d.eval_point(i),
            &vars,
        ))?;
        let tp_path = dir.join(TRAIN_POINT_FILE);
        match &train_point {
            Some(y) => tensor_file::write(&tp_path, y, point_meta())?,
            None => match std::fs::remove_file(&tp_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(CandleAdapterError::Io {
                        path: tp_path,
                        source: e,
                    });
                }
                _ => {}
            },
        }
        let names_json =
            serde_json::to_string(&names).map_err(|e| CandleAdapterError::Safetensors {
                path: dir.join(OPTIMIZER_FILE),
                message: e.to_string(),
            })?;
        let extra = [("checkpoint", id.clone()), (VARMAP_NAMES, names_json)];
        state_file::save(&dir.join(OPTIMIZER_FILE), &st, &self.config, &extra)?;
        tensor_file::write(&dir.join(MODEL_FILE), &model, point_meta())
    }

    /// Resume from a checkpoint written by [`ScheduleFreeOptimizer::save_checkpoint`]:
    /// restore the optimizer state and set every var of `varmap` to its saved value (the
    /// training point `y` for optimized vars of a train-mode checkpoint, else the model
    /// file's values). Build the optimizer with the same preset over the same vars first;
    /// the run then continues bit for bit. State is matched to vars through their `VarMap`
    /// names, so the optimizer may have been built with another var order or naming.
    /// Everything is validated before anything changes.
    ///
    /// # Errors
    /// [`CandleAdapterError::CheckpointMismatch`] for files of different saves;
    /// [`CandleAdapterError::MissingTensor`], [`CandleAdapterError::UnexpectedTensor`],
    /// [`CandleAdapterError::TensorMismatch`] when the files do not match `varmap` or this
    /// optimizer; [`CandleAdapterError::State`] (from the core),
    /// [`CandleAdapterError::VarNotInVarMap`], [`CandleAdapterError::Io`],
    /// [`CandleAdapterError::Safetensors`], [`CandleAdapterError::Metadata`];
    /// [`CandleAdapterError::Candle`] if writing a var fails (then some vars may be set).
    pub fn load_checkpoint(
        &mut self,
        varmap: &VarMap,
        dir: &Path,
    ) -> Result<(), CandleAdapterError> {
        let vars = varmap_vars(varmap)?;
        let names = self.varmap_names(&vars)?;
        let opt_path = dir.join(OPTIMIZER_FILE);
        let (mut st, opt_meta) = state_file::load(&opt_path)?;
        let id = meta(&opt_path, &opt_meta, "checkpoint")?;
        let saved_names: BTreeMap<String, String> =
            serde_json::from_str(meta(&opt_path, &opt_meta, VARMAP_NAMES)?).map_err(|e| {
                CandleAdapterError::Metadata {
                    path: opt_path.clone(),
                    key: VARMAP_NAMES.into(),
                    message: e.to_string(),
                }
            })?;
        // Re-key the saved state from the saving optimizer's names to ours, via VarMap names.
        let ours: HashMap<&str, &str> = names
            .iter()
            .map(|(o, v)| (v.as_str(), o.as_str()))
            .collect();
        st.params = std::mem::take(&mut st.params)
            .into_iter()
            .map(|(saved, rec)| {
                let vm = saved_names.get(&saved);
                let name = match vm.and_then(|vm| ours.get(vm.as_str())) {
                    Some(o) => o.to_string(),
                    None => format!("{saved} (VarMap `{}`)", vm.map_or("?", String::as_str)),
                };
                (name, rec)
            })
            .collect();

        let model_path = dir.join(MODEL_FILE);
        let mut model = read_point(&model_path, id, dir)?;
        let saved_train_mode = st.groups.first().is_none_or(|g| g.train_mode);
        let tp_path = dir.join(TRAIN_POINT_FILE);
        let train_point = if self.has_modes() && saved_train_mode {
            Some(read_point(&tp_path, id, dir)?)
        } else {
            None
        };
        let mut values: Vec<(&Var, HostTensor)> = Vec::with_capacity(vars.len());
        for (name, var) in &vars {
            let t = take_matching(&mut model, &model_path, name, var)?;
            values.push((var, t));
        }
        if let Some(name) = model.keys().min() {
            return Err(CandleAdapterError::UnexpectedTensor {
                path: model_path,
                name: name.clone(),
            });
        }
        if let Some(mut tp) = train_point {
            for (var, value) in &mut values {
                if let Some(vm) = vars
                    .iter()
                    .find(|(_, v)| v.id() == var.id())
                    .map(|(n, _)| n)
                    && names.values().any(|n| n == vm)
                {
                    *value = take_matching(&mut tp, &tp_path, vm, var)?;
                }
            }
            if let Some(name) = tp.keys().min() {
                return Err(CandleAdapterError::UnexpectedTensor {
                    path: tp_path,
                    name: name.clone(),
                });
            }
        }
        self.load_state(&st)?;
        for (var, t) in values {
            var.set(&t.to_tensor(var.device())?)?;
        }
        Ok(())
    }

    /// Optimizer name → `VarMap` name of every optimized var.
    fn varmap_names(
        &self,
        vars: &[(String, Var)],
    ) -> Result<BTreeMap<String, String>, CandleAdapterError> {
        self.vars()
            .into_iter()
            .map(
                |(name, var)| match vars.iter().find(|(_, v)| v.id() == var.id()) {
                    Some((vm, _)) => Ok((name.to_string(), vm.clone())),
                    None => Err(CandleAdapterError::VarNotInVarMap {
                        name: name.to_string(),
                    }),
                },
            )
            .collect()
    }
}

/// The model file's tensors (every var of `vars`, optimized ones at `x`: `eval_point` of
/// the optimizer entry `entry` finds) and, when `keep_y`, the training point `y` of the
/// optimized vars; both by `VarMap` name.
fn points(
    keep_y: bool,
    entry: impl Fn(&Var) -> Option<usize>,
    eval_point: impl Fn(usize) -> Result<Tensor, CandleAdapterError>,
    vars: &[(String, Var)],
) -> Result<(NamedTensors, Option<NamedTensors>), CandleAdapterError> {
    let mut model = Vec::with_capacity(vars.len());
    let mut y = Vec::new();
    for (name, var) in vars {
        match entry(var) {
            Some(i) => {
                model.push((name.clone(), HostTensor::from_tensor(&eval_point(i)?)?));
                if keep_y {
                    y.push((name.clone(), HostTensor::from_tensor(var.as_tensor())?));
                }
            }
            None => model.push((name.clone(), HostTensor::from_tensor(var.as_tensor())?)),
        }
    }
    Ok((model, keep_y.then_some(y)))
}

/// Read a model or train-point file and check it belongs to checkpoint `id`.
fn read_point(
    path: &Path,
    id: &str,
    dir: &Path,
) -> Result<HashMap<String, HostTensor>, CandleAdapterError> {
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
            what: format!(
                "{} has `{found}`, {OPTIMIZER_FILE} has `{id}`",
                file_name(path)
            ),
        });
    }
    Ok(tensors)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
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
        .ok_or_else(|| CandleAdapterError::MissingTensor {
            path: path.clone(),
            name: name.to_string(),
        })?;
    let expected: safetensors::Dtype = var.dtype().into();
    if t.dtype != expected || t.shape != var.dims() {
        return Err(CandleAdapterError::TensorMismatch {
            path,
            name: name.to_string(),
            what: format!(
                "{:?} {:?} in the file, the var is {:?} {:?}",
                t.dtype,
                t.shape,
                expected,
                var.dims()
            ),
        });
    }
    Ok(t)
}
