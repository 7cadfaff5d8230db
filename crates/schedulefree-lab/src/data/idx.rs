//! IDX reader (the MNIST / Fashion-MNIST container format).
//!
//! # Format
//!
//! A big-endian `u32` magic number `0x0000_TTDD` (two zero bytes, a type code `TT`, the
//! number of dimensions `DD`), then `DD` big-endian `u32` sizes, then the product of the
//! sizes worth of elements in row-major order. Only type `0x08` (unsigned bytes) is read,
//! which is what MNIST and Fashion-MNIST use: images are `[n, rows, cols]` (magic `0x803`),
//! labels `[n]` (magic `0x801`). Bytes after the data are an error, as is a short file.
//!
//! A file is gzip-compressed iff it starts with the gzip magic bytes `1f 8b` (the name is
//! not consulted), as for the LIBSVM reader.
//!
//! Source: Y. LeCun, C. Cortes, C. Burges, "The MNIST database" (file-format section); the
//! shared data folder's README (§2) restates it.

use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Type code of unsigned-byte elements, the only one accepted.
pub const TYPE_U8: u8 = 0x08;

/// Largest element count a file may declare (1 GiB of bytes); a guard against corrupt sizes.
pub const MAX_ELEMENTS: usize = 1 << 30;

/// Errors from reading IDX files. Content errors are wrapped in [`IdxError::InFile`] by the
/// path-based readers.
#[derive(Debug, Error)]
pub enum IdxError {
    /// The file could not be opened, read or gunzipped.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// File being read.
        path: PathBuf,
        /// Underlying I/O (or gzip) error.
        #[source]
        source: std::io::Error,
    },
    /// The first two bytes are not zero, or the type code is not [`TYPE_U8`], or the number
    /// of dimensions is not the expected one.
    #[error("bad magic number {found:#010x} (expected {expected:#010x})")]
    BadMagic {
        /// Magic number read.
        found: u32,
        /// Magic number expected (type [`TYPE_U8`] and the expected dimension count).
        expected: u32,
    },
    /// The file ends before the header or the data it declares.
    #[error("truncated: need {expected} bytes, found {found}")]
    Truncated {
        /// Bytes the header declares (header included).
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The file holds bytes after the declared data.
    #[error("{extra} unexpected bytes after the data")]
    TrailingBytes {
        /// Number of extra bytes.
        extra: usize,
    },
    /// The declared sizes multiply to more than [`MAX_ELEMENTS`].
    #[error("declared sizes {dims:?} are too large")]
    TooLarge {
        /// Declared sizes.
        dims: Vec<usize>,
    },
    /// An image file and a label file disagree on the number of samples.
    #[error("{images} images but {labels} labels")]
    CountMismatch {
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },
    /// A label is not below the declared class count.
    #[error("label {label} at index {index} is not below the class count {classes}")]
    LabelOutOfRange {
        /// Index of the sample.
        index: usize,
        /// Label found.
        label: u8,
        /// Class count.
        classes: usize,
    },
    /// An error located in a particular file.
    #[error("{}: {inner}", path.display())]
    InFile {
        /// File the error occurred in.
        path: PathBuf,
        /// The error itself.
        inner: Box<IdxError>,
    },
}

impl IdxError {
    /// The error without any [`IdxError::InFile`] wrapper.
    pub fn innermost(&self) -> &IdxError {
        match self {
            Self::InFile { inner, .. } => inner.innermost(),
            other => other,
        }
    }

    fn in_file(self, path: &Path) -> Self {
        match self {
            e @ (Self::Io { .. } | Self::InFile { .. }) => e,
            e => Self::InFile {
                path: path.to_path_buf(),
                inner: Box::new(e),
            },
        }
    }
}

/// A parsed unsigned-byte IDX array: its sizes and row-major elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes, outermost first (e.g. `[n, 28, 28]`).
    pub dims: Vec<usize>,
    /// Elements in row-major order (`dims` multiply to `data.len()`).
    pub data: Vec<u8>,
}

/// Parses an uncompressed IDX byte array of `ndim` dimensions with type [`TYPE_U8`].
///
/// # Errors
/// [`IdxError::BadMagic`], [`IdxError::Truncated`], [`IdxError::TrailingBytes`],
/// [`IdxError::TooLarge`].
pub fn parse_idx(bytes: &[u8], ndim: u8) -> Result<IdxArray, IdxError> {
    let expected_magic = (u32::from(TYPE_U8) << 8) | u32::from(ndim);
    let header = 4 + 4 * usize::from(ndim);
    let word = |i: usize| -> Option<u32> {
        let b = bytes.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let magic = word(0).ok_or(IdxError::Truncated {
        expected: header,
        found: bytes.len(),
    })?;
    if magic != expected_magic {
        return Err(IdxError::BadMagic {
            found: magic,
            expected: expected_magic,
        });
    }
    if bytes.len() < header {
        return Err(IdxError::Truncated {
            expected: header,
            found: bytes.len(),
        });
    }
    let dims: Vec<usize> = (1..=usize::from(ndim))
        .filter_map(word)
        .map(|d| d as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| IdxError::TooLarge { dims: dims.clone() })?;
    let total = header + count;
    match bytes.len().cmp(&total) {
        std::cmp::Ordering::Less => Err(IdxError::Truncated {
            expected: total,
            found: bytes.len(),
        }),
        std::cmp::Ordering::Greater => Err(IdxError::TrailingBytes {
            extra: bytes.len() - total,
        }),
        std::cmp::Ordering::Equal => Ok(IdxArray {
            dims,
            data: bytes[header..].to_vec(),
        }),
    }
}

/// Reads a whole file, gunzipping it if it starts with the gzip magic bytes.
///
/// # Errors
/// [`IdxError::Io`] on open/read/decompression failure.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, IdxError> {
    let io = |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads and parses one IDX file (plain or gzip) of `ndim` dimensions.
///
/// # Errors
/// [`IdxError::Io`], or a content error of [`parse_idx`] wrapped in [`IdxError::InFile`].
pub fn read_idx(path: &Path, ndim: u8) -> Result<IdxArray, IdxError> {
    let bytes = read_bytes(path)?;
    parse_idx(&bytes, ndim).map_err(|e| e.in_file(path))
}

/// Greyscale images with class labels: `n` images of `rows × cols` bytes (0 background,
/// 255 full ink), row-major, and one label in `0..classes` per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Pixels, `n · rows · cols` bytes, image after image.
    pub pixels: Vec<u8>,
    /// Labels, one per image.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (`rows · cols`).
    pub fn pixels_per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// Pixels of image `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let p = self.pixels_per_image();
        &self.pixels[i * p..(i + 1) * p]
    }

    /// Images per label `0..classes` (length `classes`; labels `>= classes` are not counted).
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0usize; classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }
}

/// Reads an image file (`[n, rows, cols]`) and its label file (`[n]`), checking that the
/// counts agree and every label is below `classes`.
///
/// # Errors
/// Errors of [`read_idx`]; [`IdxError::CountMismatch`] and [`IdxError::LabelOutOfRange`]
/// (wrapped in [`IdxError::InFile`] with the label file).
pub fn read_image_set(images: &Path, labels: &Path, classes: usize) -> Result<ImageSet, IdxError> {
    let img = read_idx(images, 3)?;
    let lab = read_idx(labels, 1)?;
    let (n, rows, cols) = (img.dims[0], img.dims[1], img.dims[2]);
    if lab.data.len() != n {
        return Err(IdxError::CountMismatch {
            images: n,
            labels: lab.data.len(),
        }
        .in_file(labels));
    }
    if let Some((index, &label)) = lab
        .data
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= classes)
    {
        return Err(IdxError::LabelOutOfRange {
            index,
            label,
            classes,
        }
        .in_file(labels));
    }
    Ok(ImageSet {
        pixels: img.data,
        labels: lab.data,
        rows,
        cols,
    })
}
