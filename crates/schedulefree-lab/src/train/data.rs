//! The data sets of the training tasks: where their files are, loading them once per
//! process, and turning rows into burn tensors.
//!
//! # Where files are found
//!
//! A file `rel` (e.g. `mnist-10k/train-images-idx3-ubyte.gz`) is looked up in the bundled
//! `data/` folder (the same candidates as [`registry::bundled_candidates`], one level up),
//! then in the data directory: the given one, or when none is given
//! [`registry::DEFAULT_DATA_DIR`] relative to the current directory and to the repository
//! this crate was built from. MNIST-10k and the tragedies are bundled; Fashion-MNIST and Tiny
//! Shakespeare are only in the data directory.
//!
//! # Preprocessing
//!
//! Pixels are kept as bytes and become `(p/255 − μ)/σ` when batched, with the mean and
//! standard deviation of all training pixels (train-split statistics only). Text keeps its token ids (see
//! [`crate::data::text`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, bail};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::{CONTEXT, DataSet, IMAGE_CLASSES};
use crate::data::idx::{self, ImageSet};
use crate::data::registry;
use crate::data::text::{DEFAULT_TRAIN_FRACTION, TextCorpus};

/// Images of one split: `rows × side²` raw pixels and labels, standardised when batched.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSplit {
    /// Raw pixels (0–255), image after image.
    pub pixels: Vec<u8>,
    /// Class of each image.
    pub labels: Vec<i64>,
    /// Image side.
    pub side: usize,
    /// Mean of the training pixels (in units of 1/255).
    pub mean: f32,
    /// Standard deviation of the training pixels (in units of 1/255).
    pub std: f32,
}

impl ImageSplit {
    /// Number of images.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    fn from_set(set: ImageSet, mean: f64, std: f64) -> Self {
        Self {
            labels: set.labels.iter().map(|&l| i64::from(l)).collect(),
            pixels: set.pixels,
            side: set.rows,
            mean: mean as f32,
            std: std as f32,
        }
    }

    /// Images `rows` (in that order) as `[rows.len(), 1, side, side]`, each pixel
    /// `(p/255 − mean)/std`, and their labels.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn batch(&self, rows: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let p = self.side * self.side;
        let (scale, shift) = (1.0 / (255.0 * self.std), self.mean / self.std);
        let mut x = Vec::with_capacity(rows.len() * p);
        let mut y = Vec::with_capacity(rows.len());
        for &r in rows {
            x.extend(
                self.pixels[r * p..(r + 1) * p]
                    .iter()
                    .map(|&v| f32::from(v) * scale - shift),
            );
            y.push(self.labels[r]);
        }
        let n = rows.len();
        (
            Tensor::from_data(TensorData::new(x, [n, 1, self.side, self.side]), device),
            Tensor::from_data(TensorData::new(y, [n]), device),
        )
    }
}

/// An image data set (raw pixels, standardised with train statistics when batched).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageData {
    /// Training split.
    pub train: ImageSplit,
    /// Test split (the evaluation set).
    pub test: ImageSplit,
    /// Files read.
    pub files: Vec<PathBuf>,
}

/// A tokenised text corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct TextData {
    /// Vocabulary and splits.
    pub corpus: TextCorpus,
    /// File read.
    pub file: PathBuf,
}

impl TextData {
    /// Windows of [`CONTEXT`] tokens of `tokens` starting at `starts`, as inputs
    /// `[starts.len(), CONTEXT]` and next-token targets `[starts.len() · CONTEXT]`.
    ///
    /// # Panics
    /// If a window runs past the end of `tokens`.
    pub fn batch(
        tokens: &[u32],
        starts: &[usize],
        device: &Device,
    ) -> (Tensor<2, Int>, Tensor<1, Int>) {
        let mut x = Vec::with_capacity(starts.len() * CONTEXT);
        let mut y = Vec::with_capacity(starts.len() * CONTEXT);
        for &s in starts {
            let (input, target) = TextCorpus::window(tokens, s, CONTEXT);
            x.extend(input.iter().map(|&t| i64::from(t)));
            y.extend(target.iter().map(|&t| i64::from(t)));
        }
        let n = starts.len();
        (
            Tensor::from_data(TensorData::new(x, [n, CONTEXT]), device),
            Tensor::from_data(TensorData::new(y, [n * CONTEXT]), device),
        )
    }
}

/// A loaded data set of either kind.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// Image classification.
    Images(Arc<ImageData>),
    /// Character-level text.
    Text(Arc<TextData>),
}

impl DataSet {
    /// Files of the data set relative to a data folder, train first.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Self::Mnist10k => &[
                "mnist-10k/train-images-idx3-ubyte.gz",
                "mnist-10k/train-labels-idx1-ubyte.gz",
                "mnist-10k/test-images-idx3-ubyte.gz",
                "mnist-10k/test-labels-idx1-ubyte.gz",
            ],
            Self::FashionMnist => &[
                "fashion-mnist/train-images-idx3-ubyte.gz",
                "fashion-mnist/train-labels-idx1-ubyte.gz",
                "fashion-mnist/t10k-images-idx3-ubyte.gz",
                "fashion-mnist/t10k-labels-idx1-ubyte.gz",
            ],
            Self::Tragedies => &["text/shakespeare-tragedies.txt"],
            Self::TinyShakespeare => &["text/tinyshakespeare.txt"],
        }
    }
}

/// Folders searched for data files, in order: bundled `data/` candidates, then `data_dir` or,
/// without one, [`registry::DEFAULT_DATA_DIR`] relative to the current directory and to this
/// crate's repository.
pub fn search_roots(data_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = registry::bundled_candidates()
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    match data_dir {
        Some(d) => roots.push(d.to_path_buf()),
        None => {
            roots.push(PathBuf::from(registry::DEFAULT_DATA_DIR));
            roots.push(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .join(registry::DEFAULT_DATA_DIR),
            );
        }
    }
    roots
}

/// The first existing `root/rel` over [`search_roots`].
///
/// # Errors
/// If no root holds the file (the message lists the roots searched).
pub fn locate(rel: &str, data_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let roots = search_roots(data_dir);
    roots
        .iter()
        .map(|r| r.join(rel))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "data file {rel} not found (searched {roots:?}; Fashion-MNIST and Tiny Shakespeare \
                 are not bundled: pass --data-dir pointing at a folder holding fashion-mnist/ and text/)"
            )
        })
}

fn load_images(files: &[PathBuf]) -> anyhow::Result<ImageData> {
    let [tri, trl, tei, tel] = files else {
        bail!("an image data set needs 4 files, got {files:?}");
    };
    let train = idx::read_image_set(tri, trl, IMAGE_CLASSES)?;
    let test = idx::read_image_set(tei, tel, IMAGE_CLASSES)?;
    if (train.rows, train.cols) != (test.rows, test.cols) || train.rows != train.cols {
        bail!(
            "{}: images are {}x{}, test images {}x{} (need equal square images)",
            tri.display(),
            train.rows,
            train.cols,
            test.rows,
            test.cols
        );
    }
    if train.is_empty() || test.is_empty() {
        bail!("{}: empty split", tri.display());
    }
    let n = train.pixels.len() as f64;
    let mean = train.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / n / 255.0;
    let var = train
        .pixels
        .iter()
        .map(|&p| (f64::from(p) / 255.0 - mean).powi(2))
        .sum::<f64>()
        / n;
    let std = var.sqrt().max(1e-6);
    Ok(ImageData {
        train: ImageSplit::from_set(train, mean, std),
        test: ImageSplit::from_set(test, mean, std),
        files: files.to_vec(),
    })
}

fn load_text(file: &Path) -> anyhow::Result<TextData> {
    Ok(TextData {
        corpus: TextCorpus::read(file, DEFAULT_TRAIN_FRACTION, CONTEXT + 1)?,
        file: file.to_path_buf(),
    })
}

type Cache = Mutex<HashMap<(DataSet, Vec<PathBuf>), Loaded>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Loads `set` (located with [`locate`]), parsing its files once per process: later calls
/// with the same resolved files share the first result.
///
/// # Errors
/// Missing files, read or parse errors.
pub fn load(set: DataSet, data_dir: Option<&Path>) -> anyhow::Result<Loaded> {
    let files = set
        .files()
        .iter()
        .map(|rel| locate(rel, data_dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let key = (set, files.clone());
    // A poisoned lock only means another run panicked mid-insert; the map is still valid.
    if let Some(hit) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(hit.clone());
    }
    let loaded = match set {
        DataSet::Mnist10k | DataSet::FashionMnist => Loaded::Images(Arc::new(load_images(&files)?)),
        DataSet::Tragedies | DataSet::TinyShakespeare => {
            Loaded::Text(Arc::new(load_text(&files[0])?))
        }
    };
    cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(loaded.clone());
    Ok(loaded)
}
