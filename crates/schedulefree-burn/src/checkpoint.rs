//! Checkpoints at the eval point: the module's weights at `x` in burn's own record format (what
//! inference loads) and the optimizer state in eval mode (`z` and the moments, as PyTorch
//! `schedulefree` checkpoints are written after `optimizer.eval()`), committed atomically.
//!
//! Resume is bit-exact: recovering `y` from `x` and `z` (the core's `train()`) is within a few
//! ulps of the saved `y` but not always equal to it, so the checkpoint also keeps the module at
//! `y` as a second record (as PyTorch users keep the training model) and resumes from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use schedulefree::{DynOptimizer, OptimizerState, Param};

use crate::error::BurnAdapterError;
use crate::model_optimizer::{ModelOptimizer, OptimizerFile, io_err, read_json, write_json};
use crate::module_params::{HostParam, read_params, write_params};

/// Version of the checkpoint layout.
pub const CHECKPOINT_VERSION: u32 = 1;

/// The file in a checkpoint folder that commits it (written last, atomically).
pub const CHECKPOINT_FILE: &str = "checkpoint.json";

/// `checkpoint.json`: the optimizer in eval mode and the names of the two weight records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CheckpointFile {
    format_version: u32,
    /// File name (in the same folder) of the module record at `x`.
    model_file: String,
    /// Optimizer file; its state is in eval mode.
    optimizer: OptimizerFile,
    /// File name (in the same folder) of the module record at `y`, the point training resumes.
    train_file: String,
}

/// A core with `state` loaded, for a computation that must not touch the live optimizer.
fn scratch_core(
    optim: &ModelOptimizer,
    state: &OptimizerState,
) -> Result<Box<dyn DynOptimizer<f32>>, BurnAdapterError> {
    Ok(optim.core_from_state(state)?.0)
}

/// The module's parameters for every path that has state, checked against the state.
fn stated_params<M: Module>(
    module: &M,
    state: &OptimizerState,
) -> Result<Vec<HostParam>, BurnAdapterError> {
    let mut params = read_params(module)?;
    let available: Vec<String> = params.iter().map(|p| p.path.clone()).collect();
    let unmatched: Vec<String> = state
        .params
        .keys()
        .filter(|k| !available.iter().any(|a| a == *k))
        .cloned()
        .collect();
    if !unmatched.is_empty() {
        return Err(BurnAdapterError::UnmatchedState {
            paths: unmatched,
            available,
        });
    }
    params.retain(|p| state.params.contains_key(&p.path));
    for p in &params {
        let expected = &state.params[&p.path].shape;
        if *expected != p.shape {
            return Err(BurnAdapterError::Shape {
                path: p.path.clone(),
                found: p.shape.clone(),
                expected: expected.clone(),
            });
        }
    }
    Ok(params)
}

fn switch(
    core: &mut dyn DynOptimizer<f32>,
    params: &mut [HostParam],
    to_train: bool,
) -> Result<(), BurnAdapterError> {
    let mut ps: Vec<Param<'_, f32>> = params
        .iter_mut()
        .map(|p| Param::no_grad(&p.path, &mut p.value))
        .collect();
    if to_train {
        core.train(&mut ps)?
    } else {
        core.eval(&mut ps)?
    }
    Ok(())
}

/// Save a checkpoint of `module` (at `y`, as training holds it) and `optim` into folder `dir`
/// (created if needed): the module with its parameters at `x` as a burn record
/// (`model-<k>-<n>.bpk`, loadable for inference with `Module::load_file`; its path is
/// [`checkpoint_model_path`]), the module at `y` (`train-<k>-<n>.bpk`, what training resumes
/// from) and [`CHECKPOINT_FILE`] with the optimizer state in eval mode.
/// The JSON file is written last, atomically, and names the records, so a crash at any point
/// leaves the previous checkpoint loadable; older records in `dir` are removed after the commit (records are twice the model size).
/// Neither `module` nor `optim` changes.
///
/// # Errors
/// [`BurnAdapterError::Io`] / [`BurnAdapterError::Record`] for file errors;
/// [`BurnAdapterError::UnmatchedState`] / [`BurnAdapterError::Shape`] if the optimizer holds
/// paths the module lacks or shapes that differ; the core's errors.
pub fn save_checkpoint<M: Module>(
    module: &M,
    optim: &ModelOptimizer,
    dir: &Path,
) -> Result<(), BurnAdapterError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut file = optim.to_file()?;
    let y = stated_params(module, &file.state)?;

    // x and the eval-mode state, on a scratch copy of the optimizer.
    let mut core = scratch_core(optim, &file.state)?;
    let mut x = y.clone();
    switch(core.as_mut(), &mut x, false)?;
    file.state = core.state();

    let k = optim.group_info().map_or(0, |g| g.k);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let model_file = format!("model-{k}-{nonce}.bpk");
    let train_file = format!("train-{k}-{nonce}.bpk");
    let at_x = write_params(
        module.clone(),
        x.into_iter()
            .map(|p| (p.path, p.value))
            .collect::<HashMap<_, _>>(),
    );
    write_record(at_x, &dir.join(&model_file))?;
    write_record(module.clone(), &dir.join(&train_file))?;

    let ckpt = CheckpointFile {
        format_version: CHECKPOINT_VERSION,
        model_file: model_file.clone(),
        train_file: train_file.clone(),
        optimizer: file,
    };
    write_json(&dir.join(CHECKPOINT_FILE), &ckpt)?;

    // Commit done: older records are garbage.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = name.starts_with("model-") || name.starts_with("train-");
            if ours && name.ends_with(".bpk") && name != model_file && name != train_file {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

fn record_err(path: &Path, e: &dyn std::fmt::Display) -> BurnAdapterError {
    BurnAdapterError::Record {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Write `module`'s record to `path` atomically.
fn write_record<M: Module>(module: M, path: &Path) -> Result<(), BurnAdapterError> {
    let bytes = module
        .into_record()
        .into_bytes()
        .map_err(|e| record_err(path, &e))?;
    schedulefree::write_atomic(path, &bytes).map_err(|e| io_err(path, e))
}

/// `module` with the record at `path` loaded.
fn read_record<M: Module>(module: M, path: &Path) -> Result<M, BurnAdapterError> {
    let record = ModuleRecord::load(path).map_err(|e| record_err(path, &e))?;
    module
        .try_load_record(record)
        .map_err(|e| record_err(path, &e))
}

fn read_checkpoint(dir: &Path) -> Result<CheckpointFile, BurnAdapterError> {
    let path = dir.join(CHECKPOINT_FILE);
    let ckpt: CheckpointFile = read_json(&path)?;
    if ckpt.format_version != CHECKPOINT_VERSION {
        return Err(io_err(
            &path,
            format!(
                "checkpoint format version {} is not supported (this build reads {CHECKPOINT_VERSION})",
                ckpt.format_version
            ),
        ));
    }
    Ok(ckpt)
}

/// Path of the module record (weights at `x`) of the checkpoint in `dir`, for inference:
/// `model.load_file(checkpoint_model_path(dir)?)`.
///
/// # Errors
/// [`BurnAdapterError::Io`] if [`CHECKPOINT_FILE`] is missing or unreadable.
pub fn checkpoint_model_path(dir: &Path) -> Result<PathBuf, BurnAdapterError> {
    Ok(dir.join(read_checkpoint(dir)?.model_file))
}

/// Resume from a checkpoint written by [`save_checkpoint`]: loads the weights at `x` into
/// `module` (a freshly built module of the same architecture; its ids need not match), loads
/// the optimizer state into `optim` (which must have been built with the same preset) and
/// returns the module at `y`, so that training continues bit for bit as if it had not stopped.
/// `optim` gets the checkpoint's group configuration (lr, weight decay).
///
/// # Errors
/// [`BurnAdapterError::Io`] / [`BurnAdapterError::Record`] for file errors;
/// [`BurnAdapterError::UnmatchedState`] if the state names paths the module lacks,
/// [`BurnAdapterError::Shape`]; the core's [`BurnAdapterError::State`] (other method, version).
/// `optim` is unchanged on error.
pub fn load_checkpoint<M: Module>(
    module: M,
    optim: &mut ModelOptimizer,
    dir: &Path,
) -> Result<M, BurnAdapterError> {
    let ckpt = read_checkpoint(dir)?;
    let at_x = read_record(module.clone(), &dir.join(&ckpt.model_file))?;
    let at_y = read_record(module, &dir.join(&ckpt.train_file))?;

    // The state was saved in eval mode: switch a scratch copy of x to put the core back in
    // train mode (the buffers it computes are discarded: the record at y is exact).
    let state = &ckpt.optimizer.state;
    let mut x = stated_params(&at_x, state)?;
    stated_params(&at_y, state)?;
    let (mut core, shapes) = optim.core_from_state(state)?;
    core.set_group_config(0, ckpt.optimizer.group)?;
    switch(core.as_mut(), &mut x, true)?;
    optim.replace_core(core, shapes);
    Ok(at_y)
}
