//! The optimizer state as a safetensors file: one tensor per state slot named
//! `<param>/<slot>` (in the optimizer's dtype, so every bit survives), and the core's
//! [`OptimizerState`] without its buffers — step counter `k`, `lr_max`, weight sum, mode,
//! per-parameter updates, shapes and groups — as JSON in the metadata key `state`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::Dtype as StDtype;
use schedulefree::{Dtype, OptimizerState, PresetConfig};

use crate::error::CandleAdapterError;
use crate::tensor_file::{self, HostTensor, NamedTensors, meta};

/// Metadata `format` value of optimizer files.
pub const OPTIMIZER_FORMAT: &str = "schedulefree-candle/optimizer";
/// Layout version of optimizer files written by this build (metadata `format_version`).
pub const OPTIMIZER_FORMAT_VERSION: u32 = 1;

/// Tensor name of `slot` of parameter `param`.
pub(crate) fn tensor_name(param: &str, slot: &str) -> String {
    format!("{param}/{slot}")
}

fn st_dtype(d: Dtype) -> StDtype {
    match d {
        Dtype::F32 => StDtype::F32,
        Dtype::F64 => StDtype::F64,
    }
}

/// The file contents for `st` (plus `extra` metadata entries).
pub(crate) fn encode(
    path: &Path,
    st: &OptimizerState,
    preset: &PresetConfig,
    extra: &[(&str, String)],
) -> Result<(NamedTensors, HashMap<String, String>), CandleAdapterError> {
    let json = |e: serde_json::Error| CandleAdapterError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut tensors = Vec::new();
    let mut scalars = st.clone();
    for (name, rec) in &mut scalars.params {
        for (slot, values) in std::mem::take(&mut rec.buffers) {
            // f64 → f32 is exact here: the buffers hold f32 values widened by the core.
            let t = match st.dtype {
                Dtype::F32 => HostTensor::from_values(&rec.shape, values.iter().map(|&v| v as f32)),
                Dtype::F64 => HostTensor::from_values(&rec.shape, values.iter().copied()),
            };
            tensors.push((tensor_name(name, &slot), t));
        }
    }
    let mut metadata = HashMap::from([
        ("format".to_string(), OPTIMIZER_FORMAT.to_string()),
        (
            "format_version".to_string(),
            OPTIMIZER_FORMAT_VERSION.to_string(),
        ),
        (
            "state".to_string(),
            serde_json::to_string(&scalars).map_err(json)?,
        ),
        (
            "preset".to_string(),
            serde_json::to_string(preset).map_err(json)?,
        ),
    ]);
    metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Ok((tensors, metadata))
}

/// Write `st` to `path` atomically.
pub(crate) fn save(
    path: &Path,
    st: &OptimizerState,
    preset: &PresetConfig,
    extra: &[(&str, String)],
) -> Result<(), CandleAdapterError> {
    let (tensors, metadata) = encode(path, st, preset, extra)?;
    tensor_file::write(path, &tensors, metadata)
}

/// Read a file written by [`save`] back into an [`OptimizerState`] (and the file's
/// metadata), checking that its tensors are exactly the slots the state lists, with the
/// recorded shapes and dtype. Whether the state fits a given optimizer is the core's check
/// (`load_state`).
pub(crate) fn load(
    path: &Path,
) -> Result<(OptimizerState, HashMap<String, String>), CandleAdapterError> {
    let (mut tensors, metadata) = tensor_file::read(path)?;
    let bad_meta = |key: &str, message: String| CandleAdapterError::Metadata {
        path: path.to_path_buf(),
        key: key.to_string(),
        message,
    };
    let format = meta(path, &metadata, "format")?;
    if format != OPTIMIZER_FORMAT {
        return Err(bad_meta(
            "format",
            format!("`{format}`, expected `{OPTIMIZER_FORMAT}`"),
        ));
    }
    let version = meta(path, &metadata, "format_version")?;
    if version != OPTIMIZER_FORMAT_VERSION.to_string() {
        return Err(bad_meta(
            "format_version",
            format!("{version} is not supported (this build reads {OPTIMIZER_FORMAT_VERSION})"),
        ));
    }
    let mut st: OptimizerState = serde_json::from_str(meta(path, &metadata, "state")?)
        .map_err(|e| bad_meta("state", e.to_string()))?;
    let dtype = st_dtype(st.dtype);
    for (name, rec) in &mut st.params {
        if !rec.buffers.is_empty() {
            return Err(bad_meta(
                "state",
                format!("parameter `{name}` has inline buffers"),
            ));
        }
        if !rec.has_state {
            continue;
        }
        let mut buffers = BTreeMap::new();
        for slot in &st.slots {
            let tname = tensor_name(name, slot);
            let t = tensors
                .remove(&tname)
                .ok_or_else(|| CandleAdapterError::MissingTensor {
                    path: path.to_path_buf(),
                    name: tname.clone(),
                })?;
            let mismatch = |what: String| CandleAdapterError::TensorMismatch {
                path: path.to_path_buf(),
                name: tname.clone(),
                what,
            };
            if t.dtype != dtype {
                return Err(mismatch(format!(
                    "dtype {:?}, the state is {:?}",
                    t.dtype, st.dtype
                )));
            }
            if t.shape != rec.shape {
                return Err(mismatch(format!(
                    "shape {:?}, the parameter's is {:?}",
                    t.shape, rec.shape
                )));
            }
            let values = t
                .to_f64()
                .ok_or_else(|| mismatch(format!("dtype {:?}", t.dtype)))?;
            buffers.insert(slot.clone(), values);
        }
        rec.buffers = buffers;
    }
    if let Some(name) = tensors.keys().min() {
        return Err(CandleAdapterError::UnexpectedTensor {
            path: path.to_path_buf(),
            name: name.clone(),
        });
    }
    Ok((st, metadata))
}
