//! Finished runs on disk, so that an interrupted sweep resumes where it stopped (`--resume`).
//!
//! Each finished run is written atomically to `DIR/<hash>.cbor` as CBOR (exact `f64` bits,
//! NaN and infinities included, which JSON cannot hold): the sweep's *context* (the crate
//! version and every setting that changes a run's numbers), the run's spec and its output.
//! A file is read back only if both its context and its spec equal the current ones, so a
//! changed protocol, a changed lr grid or a newer lab reruns instead of reusing stale results.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where a sweep keeps its finished runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStore {
    dir: PathBuf,
    /// CBOR of (crate version, the sweep's settings).
    context: Vec<u8>,
    /// Whether [`RunStore::load`] reads anything (`--resume`); runs are saved either way.
    resume: bool,
}

/// What a run's file holds.
#[derive(serde::Deserialize)]
struct Stored<O> {
    context: Vec<u8>,
    spec: Vec<u8>,
    output: O,
}

#[derive(Serialize)]
struct StoredRef<'a, O> {
    context: &'a [u8],
    spec: &'a [u8],
    output: &'a O,
}

fn cbor<T: Serialize + ?Sized>(v: &T) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).context("encoding CBOR")?;
    Ok(out)
}

/// FNV-1a, 64 bits: a file name that stays the same across Rust releases (std's hasher may
/// not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl RunStore {
    /// A store in `dir` (created) for a sweep whose runs depend on `context` (its settings
    /// without output paths, job counts or verbosity); `resume` makes [`RunStore::load`] read
    /// the runs found there.
    ///
    /// # Errors
    /// `dir` cannot be created, or `context` cannot be encoded.
    pub fn new(dir: &Path, context: &impl Serialize, resume: bool) -> anyhow::Result<RunStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(RunStore {
            dir: dir.to_path_buf(),
            context: cbor(&(env!("CARGO_PKG_VERSION"), context))?,
            resume,
        })
    }

    /// The folder of the run files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, spec: &[u8]) -> PathBuf {
        self.dir.join(format!("{:016x}.cbor", fnv1a(spec)))
    }

    /// The saved output of `spec`, if resuming and a file of this context and spec exists and
    /// decodes; `None` otherwise (the run is then trained again).
    pub fn load<S: Serialize, O: DeserializeOwned>(&self, spec: &S) -> Option<O> {
        if !self.resume {
            return None;
        }
        let spec = cbor(spec).ok()?;
        let bytes = std::fs::read(self.path(&spec)).ok()?;
        let stored: Stored<O> = ciborium::from_reader(bytes.as_slice()).ok()?;
        (stored.context == self.context && stored.spec == spec).then_some(stored.output)
    }

    /// Saves the `output` of `spec` (atomically: a crash leaves the old file or none).
    ///
    /// # Errors
    /// Encoding or writing errors.
    pub fn save<S: Serialize, O: Serialize>(&self, spec: &S, output: &O) -> anyhow::Result<()> {
        let spec = cbor(spec)?;
        let bytes = cbor(&StoredRef {
            context: &self.context,
            spec: &spec,
            output,
        })?;
        let path = self.path(&spec);
        schedulefree::write_atomic(&path, &bytes)
            .with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_come_back_only_for_the_same_context_and_spec() {
        let dir = std::env::temp_dir().join(format!("sflab-store-{}", std::process::id()));
        let store = RunStore::new(&dir, &("grid", 3), true).expect("store");
        let out = vec![1.5, f64::NAN, f64::INFINITY, -0.0];
        store.save(&("sf", 0.1), &out).expect("saves");
        let back: Vec<f64> = store.load(&("sf", 0.1)).expect("loads");
        assert_eq!(
            back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert!(store.load::<_, Vec<f64>>(&("sf", 0.2)).is_none());
        let other = RunStore::new(&dir, &("grid", 4), true).expect("store");
        assert!(other.load::<_, Vec<f64>>(&("sf", 0.1)).is_none());
        let fresh = RunStore::new(&dir, &("grid", 3), false).expect("store");
        assert!(fresh.load::<_, Vec<f64>>(&("sf", 0.1)).is_none());
        // A damaged file is a run to train again, not an error.
        let path = store.path(&cbor(&("sf", 0.1)).expect("encodes"));
        std::fs::write(&path, b"not cbor").expect("writes");
        assert!(store.load::<_, Vec<f64>>(&("sf", 0.1)).is_none());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
