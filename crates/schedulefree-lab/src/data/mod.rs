//! Real data: LIBSVM reading, the dataset registry, standardisation and seeded shuffling
//! (classification on design matrices), plus IDX images ([`idx`]) and plain-text corpora
//! ([`text`]) for the neural-network experiments.
//!
//! All design matrices are dense, row-major `f32` (`rows × d`), with class labels `u32` in
//! `0..C`. Typical use:
//!
//! ```no_run
//! use schedulefree_lab::data::{registry, standardize::Standardizer, shuffle::EpochOrder};
//! # fn main() -> Result<(), schedulefree_lab::data::DataError> {
//! let mut ds = registry::load_named("iris", None)?;
//! Standardizer::fit_apply(&mut ds)?;
//! let mut order = EpochOrder::new(ds.train.rows(), 42);
//! for batch in order.next_epoch().chunks(16) {
//!     // compute a gradient on rows `batch` of ds.train
//! #   let _ = batch;
//! }
//! # Ok(()) }
//! ```

pub mod idx;
pub mod libsvm;
pub mod registry;
pub mod shuffle;
pub mod standardize;
pub mod text;

use std::path::PathBuf;

use thiserror::Error;

pub use libsvm::{LabelMap, LibsvmError, LibsvmOptions, SparseFile};
pub use registry::{Dataset, Manifest, ManifestEntry, SplitKind};

/// Errors of the data layer (registry, manifest, shapes); wraps [`LibsvmError`].
#[derive(Debug, Error)]
pub enum DataError {
    /// Error while reading or converting a LIBSVM file.
    #[error(transparent)]
    Libsvm(#[from] LibsvmError),
    /// Inconsistent sizes (e.g. `x.len() != rows·d`, or a split with another `d`).
    #[error("shape mismatch: {what}: expected {expected}, found {found}")]
    Shape {
        /// What was being checked.
        what: &'static str,
        /// Expected size.
        expected: usize,
        /// Actual size.
        found: usize,
    },
    /// The manifest could not be read.
    #[error("cannot read manifest {}: {source}", path.display())]
    ManifestIo {
        /// Manifest path.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Manifest {
        /// Manifest path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No searched directory's manifest lists the dataset.
    #[error(
        "dataset {name:?} not found in any manifest (available: {}; searched: {searched:?})",
        if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )]
    UnknownDataset {
        /// Requested dataset name.
        name: String,
        /// Datasets listed by the manifests found, in search order.
        available: Vec<String>,
        /// Directories searched, in order (whether or not they hold a manifest).
        searched: Vec<PathBuf>,
    },
    /// A user test file has labels that never occur in its training file.
    #[error(
        "{}: labels {labels:?} do not occur in the training file {} (a class without training rows cannot be learned)",
        test.display(),
        train.display()
    )]
    UnseenTestLabels {
        /// Training file.
        train: PathBuf,
        /// Test file.
        test: PathBuf,
        /// The test labels missing from the training file (ascending; at most the first 32).
        labels: Vec<i64>,
    },
    /// The training data has fewer than two classes.
    #[error("{}: classification needs at least 2 classes, the training data has labels {labels:?}", path.display())]
    TooFewClasses {
        /// Training file.
        path: PathBuf,
        /// Distinct labels of the training data.
        labels: Vec<i64>,
    },
    /// A parsed file disagrees with its manifest row.
    #[error("{}: {what} is {found}, manifest says {expected}", file.display())]
    ManifestMismatch {
        /// File that was read.
        file: PathBuf,
        /// Quantity compared (rows, nonzeros, class_counts, ...).
        what: &'static str,
        /// Value in the manifest.
        expected: String,
        /// Value found in the file.
        found: String,
    },
    /// A `FILE[,TEST_FILE]` specification is malformed.
    #[error("bad data file specification {spec:?}: {message}")]
    BadSpec {
        /// The specification as given.
        spec: String,
        /// What is wrong.
        message: String,
    },
}

/// One split of a dataset: dense row-major design matrix `x` (`rows × d`, `f32`) and labels
/// `y` (`rows`, class indices `0..C`).
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    x: Vec<f32>,
    y: Vec<u32>,
    d: usize,
}

impl Split {
    /// Builds a split from a row-major matrix `x` of `y.len() × d` values and labels `y`.
    ///
    /// # Errors
    /// [`DataError::Shape`] if `x.len() != y.len() · d`.
    pub fn new(x: Vec<f32>, y: Vec<u32>, d: usize) -> Result<Self, DataError> {
        let expected = y.len().checked_mul(d).ok_or(DataError::Shape {
            what: "rows * d overflows",
            expected: usize::MAX,
            found: y.len(),
        })?;
        if x.len() != expected {
            return Err(DataError::Shape {
                what: "x.len() = rows * d",
                expected,
                found: x.len(),
            });
        }
        Ok(Self { x, y, d })
    }

    /// Crate-internal constructor for parts known to be consistent.
    pub(crate) fn from_parts(x: Vec<f32>, y: Vec<u32>, d: usize) -> Self {
        debug_assert_eq!(x.len(), y.len() * d);
        Self { x, y, d }
    }

    /// Number of samples.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Number of features `d`.
    pub fn d(&self) -> usize {
        self.d
    }

    /// Row-major design matrix, `rows × d`.
    pub fn x(&self) -> &[f32] {
        &self.x
    }

    /// Mutable design matrix (shape cannot change).
    pub fn x_mut(&mut self) -> &mut [f32] {
        &mut self.x
    }

    /// Class labels in `0..C`, one per row.
    pub fn y(&self) -> &[u32] {
        &self.y
    }

    /// Features of row `i` (length `d`).
    ///
    /// # Panics
    /// If `i >= rows()`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// Number of rows of each class; the result has length `max(classes, max label + 1)`.
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let len = self
            .y
            .iter()
            .map(|&c| c as usize + 1)
            .max()
            .unwrap_or(0)
            .max(classes);
        let mut counts = vec![0usize; len];
        for &c in &self.y {
            counts[c as usize] += 1;
        }
        counts
    }

    /// Number of entries of `x` that are not exactly zero.
    pub fn nonzeros(&self) -> usize {
        self.x.iter().filter(|&&v| v != 0.0).count()
    }

    /// A new split holding rows `indices` (in that order; repeats allowed).
    ///
    /// # Panics
    /// If an index is `>= rows()`.
    pub fn select(&self, indices: &[usize]) -> Split {
        let mut x = Vec::with_capacity(indices.len() * self.d);
        let mut y = Vec::with_capacity(indices.len());
        for &i in indices {
            x.extend_from_slice(self.row(i));
            y.push(self.y[i]);
        }
        Self::from_parts(x, y, self.d)
    }
}
