//! Named datasets (via `MANIFEST.tsv`) and user-supplied LIBSVM files.
//!
//! # Where named datasets are found
//!
//! [`load_named`] searches, in this order, and uses the first directory whose `MANIFEST.tsv`
//! lists the dataset:
//!
//! 1. the repository's bundled `data/libsvm/`, located relative to this crate's
//!    `CARGO_MANIFEST_DIR` (fixed at compile time), relative to the current directory (so the
//!    binary also works when run from the repository root of a moved checkout) and under the
//!    ancestors of the running executable (so a moved binary inside a checkout finds it from
//!    any directory), see [`bundled_candidates`];
//! 2. the user's data directory (`--data-dir`, conventionally [`DEFAULT_DATA_DIR`]), given
//!    either as the folder holding `MANIFEST.tsv` or as its parent holding `libsvm/`.
//!
//! Bundled copies are byte-identical to the shared ones, so the order only matters for
//! provenance ([`Dataset::files`] records what was read).
//!
//! # Manifest format
//!
//! Tab-separated, with the header
//! `dataset split file rows features classes class_counts nonzeros sha256`; `split` is
//! `all`, `train` or `test`; `class_counts` is comma-separated. A dataset has either one `all`
//! row (no test split: train accuracy is the metric) or a `train` row and optionally a `test`
//! row. Every file read is checked against its row (rows, nonzeros, class counts); the sha256
//! column is not verified here.

use std::path::{Path, PathBuf};

use super::libsvm::{self, LabelMap, LibsvmOptions, SparseFile};
use super::{DataError, Split};

/// Conventional user data directory (relative to the repository root), holding `libsvm/`.
pub const DEFAULT_DATA_DIR: &str = "../shared/data";

/// File name of the manifest inside a LIBSVM data directory.
pub const MANIFEST_FILE: &str = "MANIFEST.tsv";

const HEADER: [&str; 9] = [
    "dataset",
    "split",
    "file",
    "rows",
    "features",
    "classes",
    "class_counts",
    "nonzeros",
    "sha256",
];

/// Which part of a dataset a manifest row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplitKind {
    /// The whole dataset (no official split).
    All,
    /// Training split.
    Train,
    /// Test split.
    Test,
}

impl SplitKind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(Self::All),
            "train" => Some(Self::Train),
            "test" => Some(Self::Test),
            _ => None,
        }
    }
}

/// One row of `MANIFEST.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Dataset name, e.g. `iris`.
    pub dataset: String,
    /// Which split the file holds.
    pub split: SplitKind,
    /// File name relative to the manifest's directory (may end in `.gz`).
    pub file: String,
    /// Number of samples.
    pub rows: usize,
    /// Feature count `d`.
    pub features: usize,
    /// Class count `C`.
    pub classes: usize,
    /// Rows per label `0..C`.
    pub class_counts: Vec<usize>,
    /// Number of stored `index:value` pairs.
    pub nonzeros: usize,
    /// sha256 of the file as stored (hex; informational).
    pub sha256: String,
}

/// A parsed `MANIFEST.tsv` and the directory it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Directory holding the manifest and the data files.
    pub dir: PathBuf,
    /// Rows in file order.
    pub entries: Vec<ManifestEntry>,
}

/// A loaded classification dataset (dense, unstandardised).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Dataset name (manifest name, or derived from the user's train file name).
    pub name: String,
    /// Training split (the whole dataset when there is no official split).
    pub train: Split,
    /// Test split, if the dataset has one.
    pub test: Option<Split>,
    /// Feature count `d` (both splits).
    pub d: usize,
    /// Class count `C`; labels are in `0..C`.
    pub classes: usize,
    /// Mapping between raw file labels and classes.
    pub labels: LabelMap,
    /// Files read, train first.
    pub files: Vec<PathBuf>,
}

impl Manifest {
    /// Reads `dir/MANIFEST.tsv`.
    ///
    /// # Errors
    /// [`DataError::ManifestIo`] if unreadable, [`DataError::Manifest`] if malformed.
    pub fn load(dir: &Path) -> Result<Self, DataError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| DataError::ManifestIo {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, dir)
    }

    /// Parses manifest text; `dir` is where its files live.
    ///
    /// # Errors
    /// [`DataError::Manifest`] with the 1-based line of the first problem.
    pub fn parse(text: &str, dir: &Path) -> Result<Self, DataError> {
        let path = dir.join(MANIFEST_FILE);
        let err = |line: usize, message: String| DataError::Manifest {
            path: path.clone(),
            line,
            message,
        };
        let mut lines = text.lines().enumerate();
        let header: Vec<&str> = match lines.next() {
            Some((_, h)) => h.trim_end().split('\t').collect(),
            None => return Err(err(1, "empty manifest".into())),
        };
        if header != HEADER {
            return Err(err(1, format!("header must be {:?}", HEADER.join("\t"))));
        }
        let mut entries = Vec::new();
        for (k, line) in lines {
            let line_no = k + 1;
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != HEADER.len() {
                return Err(err(
                    line_no,
                    format!("expected {} columns, found {}", HEADER.len(), f.len()),
                ));
            }
            let num = |i: usize| {
                f[i].parse::<usize>()
                    .map_err(|_| err(line_no, format!("{}: bad number {:?}", HEADER[i], f[i])))
            };
            let split = SplitKind::parse(f[1])
                .ok_or_else(|| err(line_no, format!("bad split {:?}", f[1])))?;
            let class_counts = f[6]
                .split(',')
                .map(|c| c.parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| err(line_no, format!("bad class_counts {:?}", f[6])))?;
            let entry = ManifestEntry {
                dataset: f[0].to_string(),
                split,
                file: f[2].to_string(),
                rows: num(3)?,
                features: num(4)?,
                classes: num(5)?,
                class_counts,
                nonzeros: num(7)?,
                sha256: f[8].to_string(),
            };
            if entry.class_counts.len() != entry.classes {
                return Err(err(
                    line_no,
                    "class_counts has not `classes` entries".into(),
                ));
            }
            entries.push(entry);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            entries,
        })
    }

    /// Dataset names in order of first appearance.
    pub fn datasets(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for e in &self.entries {
            if !names.contains(&e.dataset.as_str()) {
                names.push(&e.dataset);
            }
        }
        names
    }

    /// Whether the manifest lists dataset `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.dataset == name)
    }

    /// The manifest row for `(name, split)`, if any.
    pub fn entry(&self, name: &str, split: SplitKind) -> Option<&ManifestEntry> {
        self.entries
            .iter()
            .find(|e| e.dataset == name && e.split == split)
    }

    /// Path of an entry's file.
    pub fn path_of(&self, entry: &ManifestEntry) -> PathBuf {
        self.dir.join(&entry.file)
    }

    /// Parses one entry's file (with `d` = its `features`) and checks rows and nonzeros
    /// against the manifest.
    ///
    /// # Errors
    /// [`DataError::Libsvm`] on read/parse errors, [`DataError::ManifestMismatch`] on count
    /// mismatches.
    pub fn read_sparse(&self, entry: &ManifestEntry) -> Result<SparseFile, DataError> {
        let path = self.path_of(entry);
        let sparse = libsvm::read_libsvm_sparse(&path, Some(entry.features))?;
        check(&path, "rows", entry.rows, sparse.rows())?;
        check(&path, "nonzeros", entry.nonzeros, sparse.nonzeros())?;
        Ok(sparse)
    }

    /// Loads dataset `name` from this manifest's directory.
    ///
    /// # Errors
    /// [`DataError::UnknownDataset`] if not listed; [`DataError::Manifest`] if its rows are
    /// inconsistent (no `all`/`train` row, differing `d` or `C`); file errors and
    /// [`DataError::ManifestMismatch`] as in [`Manifest::read_sparse`] (class counts are
    /// checked too).
    pub fn load_dataset(&self, name: &str) -> Result<Dataset, DataError> {
        let bad = |message: String| DataError::Manifest {
            path: self.dir.join(MANIFEST_FILE),
            line: 0,
            message: format!("dataset {name:?}: {message}"),
        };
        if !self.contains(name) {
            return Err(DataError::UnknownDataset {
                name: name.into(),
                available: self.datasets().into_iter().map(String::from).collect(),
                searched: vec![self.dir.clone()],
            });
        }
        let train_entry = match (
            self.entry(name, SplitKind::All),
            self.entry(name, SplitKind::Train),
        ) {
            (Some(e), None) => e,
            (None, Some(e)) => e,
            (Some(_), Some(_)) => return Err(bad("has both `all` and `train` rows".into())),
            (None, None) => return Err(bad("has no `all` or `train` row".into())),
        };
        let test_entry = match self.entry(name, SplitKind::Test) {
            Some(_) if train_entry.split == SplitKind::All => {
                return Err(bad("has both `all` and `test` rows".into()));
            }
            other => other,
        };
        let (d, classes) = (train_entry.features, train_entry.classes);
        if let Some(t) = test_entry
            && (t.features != d || t.classes != classes)
        {
            return Err(bad(
                "train and test rows disagree on features/classes".into()
            ));
        }
        let train_sparse = self.read_sparse(train_entry)?;
        let test_sparse = test_entry.map(|e| self.read_sparse(e)).transpose()?;
        let mut all: Vec<&SparseFile> = vec![&train_sparse];
        all.extend(test_sparse.as_ref());
        let labels = LabelMap::infer(&all, Some(classes))
            .map_err(|e| libsvm::with_path(e, &self.path_of(train_entry)))?;
        let to_split = |entry: &ManifestEntry, sparse: &SparseFile| -> Result<Split, DataError> {
            let path = self.path_of(entry);
            let split = sparse
                .to_dense(d, &labels)
                .map_err(|e| libsvm::with_path(e, &path))?;
            let counts = split.class_counts(classes);
            if counts != entry.class_counts {
                return Err(DataError::ManifestMismatch {
                    file: path,
                    what: "class_counts",
                    expected: format!("{:?}", entry.class_counts),
                    found: format!("{counts:?}"),
                });
            }
            Ok(split)
        };
        let train = to_split(train_entry, &train_sparse)?;
        let test = match (test_entry, &test_sparse) {
            (Some(e), Some(s)) => Some(to_split(e, s)?),
            _ => None,
        };
        let mut files = vec![self.path_of(train_entry)];
        files.extend(test_entry.map(|e| self.path_of(e)));
        Ok(Dataset {
            name: name.to_string(),
            train,
            test,
            d,
            classes,
            labels,
            files,
        })
    }
}

fn check(path: &Path, what: &'static str, expected: usize, found: usize) -> Result<(), DataError> {
    if expected == found {
        Ok(())
    } else {
        Err(DataError::ManifestMismatch {
            file: path.to_path_buf(),
            what,
            expected: expected.to_string(),
            found: found.to_string(),
        })
    }
}

/// If `dir` holds a `MANIFEST.tsv`, `dir`; else if `dir/libsvm` does, that; else `None`.
pub fn manifest_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("libsvm")]
        .into_iter()
        .find(|p| p.join(MANIFEST_FILE).is_file())
}

/// Candidate locations of the bundled `data/libsvm`, whether or not they exist: the
/// compile-time crate path, the current directory, then `data/libsvm` under every ancestor
/// of the running executable, nearest first (so that a moved binary inside a checkout still
/// finds it when run from elsewhere).
pub fn bundled_candidates() -> Vec<PathBuf> {
    let mut out = vec![
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/libsvm"),
        PathBuf::from("data/libsvm"),
    ];
    if let Ok(exe) = std::env::current_exe() {
        out.extend(
            exe.ancestors()
                .skip(1)
                .map(|a| a.join("data").join("libsvm")),
        );
    }
    out
}

/// `dirs` without later entries that name the same directory (same canonical path) as an
/// earlier one.
fn dedup_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let canon = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if !seen.contains(&canon) {
            seen.push(canon);
            out.push(dir);
        }
    }
    out
}

/// Every directory looked at for a manifest, in order, whether or not it holds one: the
/// [`bundled_candidates`], then `data_dir` and `data_dir/libsvm` (the same directory is
/// listed once). This is what [`DataError::UnknownDataset`] reports as searched.
pub fn candidate_dirs(data_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = bundled_candidates();
    if let Some(d) = data_dir {
        dirs.push(d.to_path_buf());
        dirs.push(d.join("libsvm"));
    }
    dedup_dirs(dirs)
}

/// The bundled `data/libsvm` directory, if one of [`bundled_candidates`] has a manifest.
pub fn bundled_dir() -> Option<PathBuf> {
    bundled_candidates()
        .into_iter()
        .find(|p| p.join(MANIFEST_FILE).is_file())
}

/// Directories with a manifest, in search order: bundled candidates, then `data_dir`
/// (resolved with [`manifest_dir`]). Duplicates (same canonical path) are dropped.
pub fn search_dirs(data_dir: Option<&Path>) -> Vec<PathBuf> {
    dedup_dirs(
        bundled_candidates()
            .into_iter()
            .filter(|p| p.join(MANIFEST_FILE).is_file())
            .chain(data_dir.and_then(manifest_dir)),
    )
}

/// Loads named dataset `name` from the first of [`search_dirs`]`(data_dir)` that lists it.
///
/// # Errors
/// [`DataError::UnknownDataset`] if none lists it, with the datasets that are listed and every
/// directory searched ([`candidate_dirs`]); otherwise the errors of [`Manifest::load`] and
/// [`Manifest::load_dataset`].
pub fn load_named(name: &str, data_dir: Option<&Path>) -> Result<Dataset, DataError> {
    let mut available: Vec<String> = Vec::new();
    for dir in &search_dirs(data_dir) {
        let manifest = Manifest::load(dir)?;
        if manifest.contains(name) {
            return manifest.load_dataset(name);
        }
        for n in manifest.datasets() {
            if !available.iter().any(|a| a == n) {
                available.push(n.to_string());
            }
        }
    }
    Err(DataError::UnknownDataset {
        name: name.to_string(),
        available,
        searched: candidate_dirs(data_dir),
    })
}

/// All datasets listed in [`search_dirs`]`(data_dir)`, as `(name, directory)` pairs; a name
/// listed in several directories appears once, with the directory [`load_named`] would use.
///
/// # Errors
/// Errors of [`Manifest::load`].
pub fn list_datasets(data_dir: Option<&Path>) -> Result<Vec<(String, PathBuf)>, DataError> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for dir in search_dirs(data_dir) {
        let manifest = Manifest::load(&dir)?;
        for name in manifest.datasets() {
            if !out.iter().any(|(n, _)| n == name) {
                out.push((name.to_string(), dir.clone()));
            }
        }
    }
    Ok(out)
}

/// Splits a `FILE[,TEST_FILE]` specification at its first comma.
///
/// # Errors
/// [`DataError::BadSpec`] if a part is empty or there is more than one comma.
pub fn parse_user_spec(spec: &str) -> Result<(PathBuf, Option<PathBuf>), DataError> {
    let bad = |message: &str| DataError::BadSpec {
        spec: spec.to_string(),
        message: message.into(),
    };
    let mut parts = spec.split(',');
    let train = parts
        .next()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("empty train file"))?;
    let test = parts.next();
    if parts.next().is_some() {
        return Err(bad("expected FILE or FILE,TEST_FILE"));
    }
    if test == Some("") {
        return Err(bad("empty test file after ','"));
    }
    Ok((PathBuf::from(train), test.map(PathBuf::from)))
}

/// Loads user LIBSVM files (plain or gzip): `train` and optionally `test`.
///
/// `d` is `options.features` or the largest index in either file. Labels are mapped with
/// [`LabelMap::infer`] over *both* files together with `options.classes` (so e.g. `-1/+1`
/// becomes `0/1` consistently). The training file must hold at least 2 distinct labels and,
/// unless `options.classes` declares the classes, every test label must occur in it. The
/// name is the train file's name without `.gz`, its extension and a trailing `.train`.
///
/// # Errors
/// [`DataError::Libsvm`] for read, parse and label errors; [`DataError::TooFewClasses`] and
/// [`DataError::UnseenTestLabels`] for the label requirements above.
pub fn load_user_files(
    train: &Path,
    test: Option<&Path>,
    options: &LibsvmOptions,
) -> Result<Dataset, DataError> {
    let train_sparse = libsvm::read_libsvm_sparse(train, options.features)?;
    let test_sparse = test
        .map(|p| libsvm::read_libsvm_sparse(p, options.features))
        .transpose()?;
    let train_labels = train_sparse.distinct_labels();
    if train_labels.len() < 2 {
        return Err(DataError::TooFewClasses {
            path: train.to_path_buf(),
            labels: train_labels,
        });
    }
    if let (Some(p), Some(t), None) = (test, &test_sparse, options.classes) {
        let mut unseen: Vec<i64> = t
            .distinct_labels()
            .into_iter()
            .filter(|l| train_labels.binary_search(l).is_err())
            .collect();
        if !unseen.is_empty() {
            unseen.truncate(32);
            return Err(DataError::UnseenTestLabels {
                train: train.to_path_buf(),
                test: p.to_path_buf(),
                labels: unseen,
            });
        }
    }
    let mut all: Vec<&SparseFile> = vec![&train_sparse];
    all.extend(test_sparse.as_ref());
    let labels = LabelMap::infer(&all, options.classes).map_err(|e| libsvm::with_path(e, train))?;
    let d = options
        .features
        .unwrap_or_else(|| all.iter().map(|s| s.max_index()).max().unwrap_or(0));
    let train_split = train_sparse
        .to_dense(d, &labels)
        .map_err(|e| libsvm::with_path(e, train))?;
    let test_split = match (test, &test_sparse) {
        (Some(p), Some(s)) => Some(
            s.to_dense(d, &labels)
                .map_err(|e| libsvm::with_path(e, p))?,
        ),
        _ => None,
    };
    let mut files = vec![train.to_path_buf()];
    files.extend(test.map(Path::to_path_buf));
    Ok(Dataset {
        name: user_name(train),
        train: train_split,
        test: test_split,
        d,
        classes: labels.classes(),
        labels,
        files,
    })
}

/// [`parse_user_spec`] followed by [`load_user_files`].
///
/// # Errors
/// As for those two functions.
pub fn load_user_spec(spec: &str, options: &LibsvmOptions) -> Result<Dataset, DataError> {
    let (train, test) = parse_user_spec(spec)?;
    load_user_files(&train, test.as_deref(), options)
}

fn user_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = file.strip_suffix(".gz").unwrap_or(&file);
    let stem = Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".train").unwrap_or(&stem).to_string();
    if stem.is_empty() {
        "user".to_string()
    } else {
        stem
    }
}
