//! LIBSVM / SVMlight text reader.
//!
//! # Accepted format
//!
//! One sample per line: `<label> <index>:<value> <index>:<value> ...`.
//!
//! * Fields may be separated by any ASCII whitespace (spaces, tabs); leading and trailing
//!   whitespace, `\r` line endings and lines that are empty or whitespace-only are ignored.
//! * Anything from a `#` to the end of the line is a comment (SVMlight convention) and is
//!   ignored.
//! * `label` is an integer (`0`, `3`, `-1`, `+1`); an integral decimal such as `1.0` or `-1e0`
//!   is accepted as well. Non-integral labels (regression targets) are rejected.
//! * `index` counts from 1 and must rise strictly within a line.
//! * `value` is any decimal that `str::parse::<f32>` reads (rounded once, to nearest), and must
//!   be finite. Missing features are 0.
//! * Line numbers in errors are 1-based physical line numbers (empty lines count).
//!
//! A file is gzip-compressed iff it starts with the gzip magic bytes `1f 8b`; the file name is
//! not consulted.
//!
//! # Labels
//!
//! Raw labels are kept as `i64` in a [`SparseFile`]; a [`LabelMap`] turns them into class
//! indices `0..C-1`. See [`LabelMap::infer`] for the rule (in short: labels already in `0..C`
//! are kept; anything else, e.g. `-1/+1` or `1..K`, is mapped to `0..C-1` in ascending order of
//! the raw label). Build one map from *all* splits of a dataset so train and test agree.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::Split;

/// Largest dense design matrix (in `f32` elements, i.e. 4 GiB) that [`SparseFile::to_dense`]
/// will allocate; a guard against files with absurd feature indices.
pub const MAX_DENSE_ELEMENTS: usize = 1 << 30;

/// Errors from reading or converting LIBSVM data.
///
/// Variants with a `line` field carry the 1-based line number of the offending sample;
/// [`LibsvmError::line`] retrieves it (also through [`LibsvmError::InFile`]).
#[derive(Debug, Error)]
pub enum LibsvmError {
    /// The file could not be opened, read or gunzipped.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// File being read.
        path: PathBuf,
        /// Underlying I/O (or gzip) error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not valid UTF-8.
    #[error("line {line}: not valid UTF-8")]
    NotUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// The label is not an integer.
    #[error("line {line}: bad label {token:?} (expected an integer)")]
    BadLabel {
        /// 1-based line number.
        line: usize,
        /// The offending token.
        token: String,
    },
    /// A feature token is not of the form `index:value`, or its index is not an integer.
    #[error("line {line}: bad feature {token:?} (expected index:value with an integer index)")]
    BadFeature {
        /// 1-based line number.
        line: usize,
        /// The offending token.
        token: String,
    },
    /// A feature index is 0 (indices count from 1).
    #[error("line {line}: feature index 0 (indices count from 1)")]
    IndexZero {
        /// 1-based line number.
        line: usize,
    },
    /// A feature index is not larger than the previous one on the same line.
    #[error("line {line}: feature index {index} does not exceed the previous index {previous}")]
    NonIncreasingIndex {
        /// 1-based line number.
        line: usize,
        /// Index seen before on this line.
        previous: usize,
        /// Offending index.
        index: usize,
    },
    /// A feature index exceeds the declared feature count `d`.
    #[error("line {line}: feature index {index} exceeds the feature count d = {d}")]
    IndexOutOfRange {
        /// 1-based line number.
        line: usize,
        /// Offending (1-based) index.
        index: usize,
        /// Declared feature count.
        d: usize,
    },
    /// A feature value does not parse as a number.
    #[error("line {line}: bad feature value {token:?}")]
    BadValue {
        /// 1-based line number.
        line: usize,
        /// The offending `index:value` token.
        token: String,
    },
    /// A feature value is NaN or infinite (or overflows `f32`).
    #[error("line {line}: feature value {token:?} is not finite in f32")]
    NonFiniteValue {
        /// 1-based line number.
        line: usize,
        /// The offending `index:value` token.
        token: String,
    },
    /// A label has no class in the [`LabelMap`] used for conversion.
    #[error("line {line}: label {label} is not one of the dataset's classes")]
    UnknownLabel {
        /// 1-based line number.
        line: usize,
        /// Raw label.
        label: i64,
    },
    /// The labels cannot be mapped onto the requested number of classes.
    #[error(
        "labels {found:?} cannot be mapped to {classes} classes (need labels within 0..{classes} or exactly {classes} distinct labels)"
    )]
    ClassCountMismatch {
        /// Requested class count `C`.
        classes: usize,
        /// Distinct raw labels found (ascending; at most the first 32).
        found: Vec<i64>,
    },
    /// No sample lines at all (so no labels to build classes from).
    #[error("no samples")]
    NoSamples,
    /// The dense matrix `rows × d` would exceed [`MAX_DENSE_ELEMENTS`].
    #[error("dense matrix {rows} x {d} is too large")]
    TooLarge {
        /// Number of rows.
        rows: usize,
        /// Feature count.
        d: usize,
    },
    /// An error located in a particular file.
    #[error("{}: {inner}", path.display())]
    InFile {
        /// File the error occurred in.
        path: PathBuf,
        /// The error itself.
        inner: Box<LibsvmError>,
    },
}

impl LibsvmError {
    /// 1-based line number of the offending sample, if the error refers to one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::NotUtf8 { line }
            | Self::BadLabel { line, .. }
            | Self::BadFeature { line, .. }
            | Self::IndexZero { line }
            | Self::NonIncreasingIndex { line, .. }
            | Self::IndexOutOfRange { line, .. }
            | Self::BadValue { line, .. }
            | Self::NonFiniteValue { line, .. }
            | Self::UnknownLabel { line, .. } => Some(*line),
            Self::InFile { inner, .. } => inner.line(),
            Self::Io { .. }
            | Self::ClassCountMismatch { .. }
            | Self::NoSamples
            | Self::TooLarge { .. } => None,
        }
    }

    /// The error without any [`LibsvmError::InFile`] wrapper.
    pub fn innermost(&self) -> &LibsvmError {
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

/// A parsed LIBSVM file in compressed-sparse-row form, with raw (unmapped) labels.
///
/// Feature indices are stored 1-based, exactly as in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseFile {
    labels: Vec<i64>,
    lines: Vec<usize>,
    row_ptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    max_index: usize,
}

impl SparseFile {
    /// Number of samples (non-empty lines).
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Number of stored `index:value` pairs over all rows.
    pub fn nonzeros(&self) -> usize {
        self.values.len()
    }

    /// Largest 1-based feature index used (0 if no row has any feature).
    pub fn max_index(&self) -> usize {
        self.max_index
    }

    /// Raw labels, one per row, in file order.
    pub fn raw_labels(&self) -> &[i64] {
        &self.labels
    }

    /// 1-based line number of each row in the source text.
    pub fn line_numbers(&self) -> &[usize] {
        &self.lines
    }

    /// Stored entries of row `i` as `(1-based indices, values)`.
    ///
    /// # Panics
    /// If `i >= self.rows()`.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.row_ptr[i], self.row_ptr[i + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    /// Distinct raw labels in ascending order.
    pub fn distinct_labels(&self) -> Vec<i64> {
        let mut v = self.labels.clone();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Converts to a dense row-major `rows × d` matrix with class indices from `labels`.
    ///
    /// # Errors
    /// [`LibsvmError::IndexOutOfRange`] (with the first offending line) if a feature index
    /// exceeds `d`, [`LibsvmError::UnknownLabel`] if a label is not in `labels`,
    /// [`LibsvmError::TooLarge`] if `rows·d` exceeds [`MAX_DENSE_ELEMENTS`].
    pub fn to_dense(&self, d: usize, labels: &LabelMap) -> Result<Split, LibsvmError> {
        let rows = self.rows();
        let total = rows
            .checked_mul(d)
            .filter(|&t| t <= MAX_DENSE_ELEMENTS)
            .ok_or(LibsvmError::TooLarge { rows, d })?;
        let mut x = vec![0.0f32; total];
        let mut y = Vec::with_capacity(rows);
        for (i, (&raw, &line)) in self.labels.iter().zip(&self.lines).enumerate() {
            let class = labels
                .class_of(raw)
                .ok_or(LibsvmError::UnknownLabel { line, label: raw })?;
            y.push(class);
            let out = &mut x[i * d..(i + 1) * d];
            let (idx, val) = self.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                let j = j as usize;
                if j > d {
                    return Err(LibsvmError::IndexOutOfRange { line, index: j, d });
                }
                out[j - 1] = v;
            }
        }
        Ok(Split::from_parts(x, y, d))
    }
}

/// Mapping between raw file labels and class indices `0..C-1`.
///
/// Class `k` corresponds to raw label `raw_labels()[k]`; raw labels are strictly ascending,
/// so the mapping preserves order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap {
    raw: Vec<i64>,
}

impl LabelMap {
    /// The identity map for `classes` classes: raw label `k` is class `k`.
    pub fn identity(classes: usize) -> Self {
        Self {
            raw: (0..classes as i64).collect(),
        }
    }

    /// Builds the map from the labels of all `files` (e.g. train and test of one dataset).
    ///
    /// * `classes = Some(C)`: if every raw label lies in `0..C`, the identity map on `C`
    ///   classes is used (classes absent from the files are allowed, e.g. a rare class missing
    ///   from a test file); otherwise there must be exactly `C` distinct labels, which are
    ///   mapped to `0..C-1` in ascending order.
    /// * `classes = None`: the `C` distinct labels found are mapped to `0..C-1` in ascending
    ///   order (`-1/+1` → `0/1`, `1..K` → `0..K-1`, `0..K-1` unchanged when all occur).
    ///
    /// # Errors
    /// [`LibsvmError::NoSamples`] if the files hold no rows at all;
    /// [`LibsvmError::ClassCountMismatch`] if the labels do not fit `Some(C)`.
    pub fn infer(files: &[&SparseFile], classes: Option<usize>) -> Result<Self, LibsvmError> {
        let mut distinct: Vec<i64> = files
            .iter()
            .flat_map(|f| f.labels.iter().copied())
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.is_empty() {
            return Err(LibsvmError::NoSamples);
        }
        match classes {
            None => Ok(Self { raw: distinct }),
            Some(c) => {
                let in_range = distinct.iter().all(|&l| l >= 0 && (l as u64) < c as u64);
                if in_range {
                    Ok(Self::identity(c))
                } else if distinct.len() == c {
                    Ok(Self { raw: distinct })
                } else {
                    distinct.truncate(32);
                    Err(LibsvmError::ClassCountMismatch {
                        classes: c,
                        found: distinct,
                    })
                }
            }
        }
    }

    /// Number of classes `C`.
    pub fn classes(&self) -> usize {
        self.raw.len()
    }

    /// Raw label of each class, ascending (`raw_labels()[k]` is class `k`).
    pub fn raw_labels(&self) -> &[i64] {
        &self.raw
    }

    /// Class index of raw label `raw`, or `None` if it is not a class.
    pub fn class_of(&self, raw: i64) -> Option<u32> {
        self.raw
            .binary_search(&raw)
            .ok()
            .and_then(|k| u32::try_from(k).ok())
    }

    /// Whether raw label `k` is class `k` for every class.
    pub fn is_identity(&self) -> bool {
        self.raw.iter().enumerate().all(|(k, &l)| l == k as i64)
    }
}

/// Options for [`read_libsvm`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LibsvmOptions {
    /// Feature count `d`; `None` infers it as the largest index used. When given, an index
    /// above it is an error.
    pub features: Option<usize>,
    /// Class count `C`; `None` infers it (see [`LabelMap::infer`]).
    pub classes: Option<usize>,
}

/// Reads a whole file, gunzipping it if it starts with the gzip magic bytes.
///
/// # Errors
/// [`LibsvmError::Io`] on open/read/decompression failure.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, LibsvmError> {
    let io = |source| LibsvmError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(io)?;
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

/// Parses LIBSVM text (already decompressed) into a [`SparseFile`].
///
/// `features`: if `Some(d)`, any index above `d` is an error.
///
/// # Errors
/// The line-level variants of [`LibsvmError`] (each with its line number).
pub fn parse_libsvm(text: &[u8], features: Option<usize>) -> Result<SparseFile, LibsvmError> {
    let mut out = SparseFile {
        labels: Vec::new(),
        lines: Vec::new(),
        row_ptr: vec![0],
        indices: Vec::new(),
        values: Vec::new(),
        max_index: 0,
    };
    for (k, raw_line) in text.split(|&b| b == b'\n').enumerate() {
        let line = k + 1;
        let s = std::str::from_utf8(raw_line).map_err(|_| LibsvmError::NotUtf8 { line })?;
        let s = s.split_once('#').map_or(s, |(before, _)| before);
        let mut tokens = s.split_ascii_whitespace();
        let Some(label_tok) = tokens.next() else {
            continue;
        };
        out.labels.push(parse_label(label_tok, line)?);
        out.lines.push(line);
        let mut previous = 0usize;
        for tok in tokens {
            let bad = || LibsvmError::BadFeature {
                line,
                token: tok.to_string(),
            };
            let (i, v) = tok.split_once(':').ok_or_else(bad)?;
            let index: usize = i.parse().map_err(|_| bad())?;
            if index == 0 {
                return Err(LibsvmError::IndexZero { line });
            }
            if index <= previous {
                return Err(LibsvmError::NonIncreasingIndex {
                    line,
                    previous,
                    index,
                });
            }
            let d_limit = features.unwrap_or(u32::MAX as usize).min(u32::MAX as usize);
            if index > d_limit {
                return Err(LibsvmError::IndexOutOfRange {
                    line,
                    index,
                    d: d_limit,
                });
            }
            let value: f32 = v.parse().map_err(|_| LibsvmError::BadValue {
                line,
                token: tok.to_string(),
            })?;
            if !value.is_finite() {
                return Err(LibsvmError::NonFiniteValue {
                    line,
                    token: tok.to_string(),
                });
            }
            previous = index;
            out.indices.push(index as u32);
            out.values.push(value);
        }
        out.max_index = out.max_index.max(previous);
        out.row_ptr.push(out.values.len());
    }
    Ok(out)
}

fn parse_label(tok: &str, line: usize) -> Result<i64, LibsvmError> {
    if let Ok(l) = tok.parse::<i64>() {
        return Ok(l);
    }
    match tok.parse::<f64>() {
        Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(LibsvmError::BadLabel {
            line,
            token: tok.to_string(),
        }),
    }
}

/// Reads and parses one LIBSVM file (plain or gzip) into a [`SparseFile`].
///
/// # Errors
/// [`LibsvmError::Io`], or a line-level error wrapped in [`LibsvmError::InFile`].
pub fn read_libsvm_sparse(path: &Path, features: Option<usize>) -> Result<SparseFile, LibsvmError> {
    let text = read_maybe_gz(path)?;
    parse_libsvm(&text, features).map_err(|e| e.in_file(path))
}

/// Reads one LIBSVM file into a dense [`Split`] plus the [`LabelMap`] used.
///
/// `d` is `options.features` or the largest index in the file; classes per
/// [`LabelMap::infer`] on this file alone. For train/test pairs use
/// [`crate::data::registry::load_user_files`], which maps labels over both files.
///
/// # Errors
/// Any [`LibsvmError`], wrapped in [`LibsvmError::InFile`] where it concerns the contents.
pub fn read_libsvm(path: &Path, options: &LibsvmOptions) -> Result<(Split, LabelMap), LibsvmError> {
    let sparse = read_libsvm_sparse(path, options.features)?;
    let map = LabelMap::infer(&[&sparse], options.classes).map_err(|e| e.in_file(path))?;
    let d = options.features.unwrap_or(sparse.max_index());
    let split = sparse.to_dense(d, &map).map_err(|e| e.in_file(path))?;
    Ok((split, map))
}

/// Wraps a content error with the file it came from (no-op for I/O errors).
pub(crate) fn with_path(e: LibsvmError, path: &Path) -> LibsvmError {
    e.in_file(path)
}
