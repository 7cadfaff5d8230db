//! Copying between candle tensors and host buffers of the core's element type (`f32`,
//! `f64`). CPU tensors are read and written in place through their storage, without
//! allocating; tensors on other devices go through candle's host transfers.

use candle_core::{CpuStorage, InplaceOp1, Layout, Storage, Tensor, Var, WithDType};

use crate::error::CandleAdapterError;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// An element type both the core and candle run on: `f32` or `f64`.
pub trait HostElement: schedulefree::Element + WithDType + sealed::Sealed {
    /// The candle dtype tag.
    const CANDLE_DTYPE: candle_core::DType = <Self as WithDType>::DTYPE;
    /// The safetensors dtype tag.
    const SAFETENSORS: safetensors::Dtype;
    /// Bytes per element.
    const BYTES: usize;
    /// The CPU storage's buffer, if it holds this type.
    fn storage_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
    /// Decode one little-endian element (`bytes.len() == BYTES`).
    fn from_le(bytes: &[u8]) -> Self;
    /// Append the little-endian encoding.
    fn push_le(self, out: &mut Vec<u8>);
}

impl HostElement for f32 {
    const SAFETENSORS: safetensors::Dtype = safetensors::Dtype::F32;
    const BYTES: usize = 4;
    fn storage_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn from_le(bytes: &[u8]) -> Self {
        let mut b = [0u8; 4];
        b.copy_from_slice(bytes);
        f32::from_le_bytes(b)
    }
    fn push_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl HostElement for f64 {
    const SAFETENSORS: safetensors::Dtype = safetensors::Dtype::F64;
    const BYTES: usize = 8;
    fn storage_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn from_le(bytes: &[u8]) -> Self {
        let mut b = [0u8; 8];
        b.copy_from_slice(bytes);
        f64::from_le_bytes(b)
    }
    fn push_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// Copy the elements of `t` (row-major) into `out`.
///
/// # Errors
/// A candle error for a dtype other than `T`, an element count other than `out.len()`, or a
/// failed device transfer (callers check gradients first and report them with names).
pub(crate) fn read_into<T: HostElement>(
    t: &Tensor,
    out: &mut [T],
) -> Result<(), CandleAdapterError> {
    if t.elem_count() != out.len() || t.dtype() != T::CANDLE_DTYPE {
        return Err(candle_core::Error::Msg(format!(
            "cannot read a {:?} tensor of {} elements into {} {:?} elements",
            t.dtype(),
            t.elem_count(),
            out.len(),
            T::CANDLE_DTYPE
        ))
        .into());
    }
    {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) {
            let s = T::cpu_storage_as_slice(cpu)?;
            if let Some(src) = s.get(start..end) {
                out.copy_from_slice(src);
                return Ok(());
            }
        }
    }
    // Other devices or strided layouts: candle gathers the elements for us.
    let v = t.flatten_all()?.to_vec1::<T>()?;
    out.copy_from_slice(&v);
    Ok(())
}

/// A fresh host copy of `t`'s elements.
///
/// # Errors
/// As [`read_into`].
pub(crate) fn to_host<T: HostElement>(t: &Tensor) -> Result<Vec<T>, CandleAdapterError> {
    let mut v = vec![T::zero(); t.elem_count()];
    read_into(t, &mut v)?;
    Ok(v)
}

/// Overwrite `var`'s elements with `data` (same count), in place: every tensor sharing the
/// var's storage (the layers of a model) sees the new values.
///
/// # Errors
/// A candle error for a dtype or element count mismatch, or a failed device transfer.
pub(crate) fn write_from<T: HostElement>(var: &Var, data: &[T]) -> Result<(), CandleAdapterError> {
    if var.elem_count() != data.len() || var.dtype() != T::CANDLE_DTYPE {
        return Err(candle_core::Error::Msg(format!(
            "cannot write {} {:?} elements into a {:?} var of {} elements",
            data.len(),
            T::CANDLE_DTYPE,
            var.dtype(),
            var.elem_count()
        ))
        .into());
    }
    if var.device().is_cpu() {
        var.inplace_op1(&CopyIn(data))?;
    } else {
        var.set(&Tensor::from_slice(data, var.shape(), var.device())?)?;
    }
    Ok(())
}

/// In-place copy of a host buffer into a CPU tensor's storage.
struct CopyIn<'a, T>(&'a [T]);

impl<T: HostElement> InplaceOp1 for CopyIn<'_, T> {
    fn name(&self) -> &'static str {
        "schedulefree-copy-in"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("cannot write into a non-contiguous var")
        };
        match T::storage_mut(storage).and_then(|s| s.get_mut(start..end)) {
            Some(dst) if dst.len() == self.0.len() => {
                dst.copy_from_slice(self.0);
                Ok(())
            }
            _ => candle_core::bail!(
                "cannot write {} {:?} elements into this storage",
                self.0.len(),
                T::CANDLE_DTYPE
            ),
        }
    }
}
