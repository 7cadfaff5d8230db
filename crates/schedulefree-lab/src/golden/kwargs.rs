//! Reading Python constructor arguments (`optimizer_kwargs`, group overrides) with the
//! reference class's defaults, refusing any argument we would otherwise silently ignore.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A kwargs dictionary being consumed; every key read (or explicitly ignored) is remembered so
/// that [`Kwargs::finish`] can reject the rest.
#[derive(Debug)]
pub(crate) struct Kwargs<'a> {
    what: String,
    map: &'a Map<String, Value>,
    used: BTreeSet<String>,
}

impl<'a> Kwargs<'a> {
    /// Wrap `map`; `what` names it in error messages (e.g. `schedulefree.SGDScheduleFree`).
    pub fn new(what: impl Into<String>, map: &'a Map<String, Value>) -> Self {
        Kwargs {
            what: what.into(),
            map,
            used: BTreeSet::new(),
        }
    }

    /// The value of `key`, `None` when absent or `null` (Python `None` = default).
    fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.used.insert(key.to_string());
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn bad(&self, key: &str, v: &Value, want: &str) -> anyhow::Error {
        anyhow::anyhow!("{}: argument `{key}` = {v} is not {want}", self.what)
    }

    /// A float argument.
    pub fn f64(&mut self, key: &str, default: f64) -> anyhow::Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.bad(key, v, "a number")),
        }
    }

    /// A non-negative integer argument (Python may write it as `5` or `5.0`).
    pub fn u64(&mut self, key: &str, default: u64) -> anyhow::Result<u64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15)
                        .map(|f| f as u64)
                })
                .ok_or_else(|| self.bad(key, v, "a non-negative integer")),
        }
    }

    /// A boolean argument.
    pub fn bool(&mut self, key: &str, default: bool) -> anyhow::Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.bad(key, v, "a boolean")),
        }
    }

    /// A pair such as `betas` (a 2-list).
    pub fn pair(&mut self, key: &str, default: (f64, f64)) -> anyhow::Result<(f64, f64)> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.as_array().map(Vec::as_slice) {
                Some([a, b]) => match (a.as_f64(), b.as_f64()) {
                    (Some(a), Some(b)) => Ok((a, b)),
                    _ => Err(self.bad(key, v, "a pair of numbers")),
                },
                _ => Err(self.bad(key, v, "a pair of numbers")),
            },
        }
    }

    /// Require a boolean flag to have the value we implement (e.g. `maximize = False`).
    pub fn require_bool(&mut self, key: &str, want: bool) -> anyhow::Result<()> {
        let got = self.bool(key, want)?;
        anyhow::ensure!(
            got == want,
            "{}: `{key}` = {got} is not supported (only {want})",
            self.what
        );
        Ok(())
    }

    /// Require a numeric argument to equal `want` (e.g. a base optimizer's `momentum = 0`).
    pub fn require_f64(&mut self, key: &str, want: f64, why: &str) -> anyhow::Result<()> {
        let got = self.f64(key, want)?;
        anyhow::ensure!(
            got == want,
            "{}: `{key}` = {got} is not supported ({why})",
            self.what
        );
        Ok(())
    }

    /// Mark arguments that do not change the maths (`foreach`, `fused`, ...).
    pub fn ignore(&mut self, keys: &[&str]) {
        self.used.extend(keys.iter().map(|k| (*k).to_string()));
    }

    /// Fail if an argument was neither read nor ignored.
    pub fn finish(&self) -> anyhow::Result<()> {
        let unknown: Vec<&str> = self
            .map
            .keys()
            .filter(|k| !self.used.contains(*k))
            .map(String::as_str)
            .collect();
        anyhow::ensure!(
            unknown.is_empty(),
            "{}: unsupported argument(s) {unknown:?}",
            self.what
        );
        Ok(())
    }
}
