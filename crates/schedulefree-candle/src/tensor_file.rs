//! safetensors files as named host tensors plus string metadata, written atomically
//! (temporary sibling, fsync, rename: [`schedulefree::write_atomic`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use safetensors::{Dtype, SafeTensors, View};

use crate::error::CandleAdapterError;
use crate::host::HostElement;

/// Tensors in file order, with their names.
pub(crate) type NamedTensors = Vec<(String, HostTensor)>;

/// One tensor as little-endian bytes on the host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl HostTensor {
    /// From a host buffer of the core's element type.
    pub fn from_values<T: HostElement>(
        shape: &[usize],
        values: impl IntoIterator<Item = T>,
    ) -> Self {
        let mut bytes = Vec::with_capacity(shape.iter().product::<usize>() * T::BYTES);
        for v in values {
            v.push_le(&mut bytes);
        }
        HostTensor {
            dtype: T::SAFETENSORS,
            shape: shape.to_vec(),
            bytes,
        }
    }

    /// From a candle tensor of any dtype (copied to the host first).
    pub fn from_tensor(t: &Tensor) -> Result<Self, CandleAdapterError> {
        // On the CPU, candle's byte conversion cannot fail.
        let t = t.to_device(&Device::Cpu)?.contiguous()?;
        Ok(HostTensor {
            dtype: View::dtype(&&t),
            shape: t.dims().to_vec(),
            bytes: View::data(&&t).into_owned(),
        })
    }

    /// The elements as `f64`, for `F32` / `F64` tensors.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match self.dtype {
            Dtype::F32 => Some(
                self.bytes
                    .chunks_exact(4)
                    .map(|b| f64::from(f32::from_le(b)))
                    .collect(),
            ),
            Dtype::F64 => Some(self.bytes.chunks_exact(8).map(f64::from_le).collect()),
            _ => None,
        }
    }

    /// As a candle tensor on `device`.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor, CandleAdapterError> {
        let view =
            safetensors::tensor::TensorView::new(self.dtype, self.shape.clone(), &self.bytes)
                .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok(candle_core::safetensors::Load::load(&view, device)?)
    }
}

impl View for &HostTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Serialize `tensors` and `metadata` and write `path` atomically.
///
/// # Errors
/// [`CandleAdapterError::Safetensors`] if serialization fails, [`CandleAdapterError::Io`]
/// if writing does (the destination is then untouched).
pub(crate) fn write(
    path: &Path,
    tensors: &[(String, HostTensor)],
    metadata: HashMap<String, String>,
) -> Result<(), CandleAdapterError> {
    let bytes =
        safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
            .map_err(|e| CandleAdapterError::Safetensors {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
    schedulefree::write_atomic(path, &bytes).map_err(|source| CandleAdapterError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A file's tensors by name, and its metadata (empty if it has none).
pub(crate) type Contents = (HashMap<String, HostTensor>, HashMap<String, String>);

/// Read a safetensors file.
///
/// # Errors
/// [`CandleAdapterError::Io`], [`CandleAdapterError::Safetensors`] for invalid contents.
pub(crate) fn read(path: &Path) -> Result<Contents, CandleAdapterError> {
    let bytes = std::fs::read(path).map_err(|source| CandleAdapterError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |e: safetensors::SafeTensorError| CandleAdapterError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(bad)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(&bytes).map_err(bad)?;
    let tensors = st
        .iter()
        .map(|(name, v)| {
            (
                name.to_string(),
                HostTensor {
                    dtype: v.dtype(),
                    shape: v.shape().to_vec(),
                    bytes: v.data().to_vec(),
                },
            )
        })
        .collect();
    Ok((tensors, metadata))
}

/// Metadata value `key`, or [`CandleAdapterError::Metadata`].
pub(crate) fn meta<'m>(
    path: &Path,
    metadata: &'m HashMap<String, String>,
    key: &str,
) -> Result<&'m str, CandleAdapterError> {
    metadata
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| CandleAdapterError::Metadata {
            path: path.to_path_buf(),
            key: key.to_string(),
            message: "missing".into(),
        })
}
