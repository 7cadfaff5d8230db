//! Versioned, serde-serializable optimizer state keyed by parameter name.
//!
//! Resume is bit-exact: saving after N steps (in train mode, together with the parameter
//! buffers `y`) and loading into a freshly built optimizer with the same configuration gives
//! the same trajectory bit for bit, whatever order the parameters are registered or passed
//! in. Buffers are stored as `f64` (exact for `f32` too); JSON keeps every bit because
//! `serde_json` is built with `float_roundtrip`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::Optimizer;
use crate::conversion::{AveragingState, Conversion};
use crate::decay::Decay;
use crate::element::{Dtype, Element};
use crate::error::StateError;
use crate::learner::{GroupState, Learner};
use crate::param::{GroupStepInfo, ParamTags};
use crate::schedule::Schedule;

/// Version of the state layout written by this build.
pub const STATE_FORMAT_VERSION: u32 = 1;

/// Saved state of one parameter group.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupRecord {
    /// Completed updates `k`.
    pub k: u64,
    /// Running max of the scheduled lr.
    #[serde(with = "json_float")]
    pub lr_max: f64,
    /// Sum of averaging weights.
    #[serde(with = "json_float")]
    pub weight_sum: f64,
    /// Mode when saved.
    pub train_mode: bool,
    /// What the group's latest step reported (restored so `group_info` survives a resume).
    #[serde(default)]
    pub last: GroupStepInfo,
    /// The learner's scalar state by name (AdaGrad-Norm's `b_sq`, Prodigy's `d`, `r`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub learner_state: BTreeMap<String, f64>,
}

/// Saved state of one parameter.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParamRecord {
    /// Group index.
    pub group: usize,
    /// Registered shape.
    pub shape: Vec<usize>,
    /// Updates received.
    pub updates: u64,
    /// Whether the parameter has received a gradient (and so has state, even when the
    /// method keeps no per-element slots).
    pub has_state: bool,
    /// Slot name → values (empty map: no state yet). Non-finite values (a diverged run)
    /// are written as the strings `"NaN"`, `"inf"`, `"-inf"` so that they load back.
    #[serde(with = "buffer_serde")]
    pub buffers: BTreeMap<String, Vec<f64>>,
    /// Tags the parameter was registered with (must match on load).
    #[serde(default)]
    pub tags: ParamTags,
    /// Hypersphere radii per row, once a projection has set them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<Vec<f64>>,
    /// The slots live outside the optimizer ([`crate::Optimizer::step_programs`]):
    /// `has_state` is true and `buffers` is empty; whoever holds the slots saves them.
    /// Absent in files written before this field (false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
}

/// The whole optimizer state: what `load_state` needs to continue bit-exactly.
/// Hyperparameters and the schedule are configuration, not state: rebuild the optimizer
/// with the same configuration before loading.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimizerState {
    /// Layout version ([`STATE_FORMAT_VERSION`]).
    pub format_version: u32,
    /// `learner+conversion+decay` names of the composition that wrote it.
    pub method: String,
    /// Buffer dtype.
    pub dtype: Dtype,
    /// Slot names, learner's then conversion's.
    pub slots: Vec<String>,
    /// Per group, in index order.
    pub groups: Vec<GroupRecord>,
    /// Per parameter name.
    pub params: BTreeMap<String, ParamRecord>,
}

impl OptimizerState {
    /// Serialize to JSON and write `path` atomically (temporary file in the same folder,
    /// fsync, rename), so a crash never leaves a truncated checkpoint.
    ///
    /// # Errors
    /// [`StateError::Io`] if writing fails.
    pub fn save_json(&self, path: &Path) -> Result<(), StateError> {
        let io = |e: &dyn std::fmt::Display| StateError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let bytes = serde_json::to_vec(self).map_err(|e| io(&e))?;
        write_atomic(path, &bytes).map_err(|e| io(&e))
    }

    /// Read a state written by [`OptimizerState::save_json`].
    ///
    /// # Errors
    /// [`StateError::Io`] if the file cannot be read or parsed.
    pub fn load_json(path: &Path) -> Result<Self, StateError> {
        let io = |e: &dyn std::fmt::Display| StateError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let bytes = std::fs::read(path).map_err(|e| io(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| io(&e))
    }
}

/// Write `bytes` to `path` atomically: temporary sibling, fsync, rename, fsync of the folder.
/// A process killed at any moment leaves either the old file or the new one, never a torn
/// one (tested by killing a writer with `SIGKILL`); it may leave a `.NAME.PID.N.tmp` sibling,
/// which nothing reads.
///
/// # Errors
/// Any I/O error; the destination is then untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per call (process id + counter), so that concurrent saves to the same path
    // never write into the same temporary file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename durable too (after a power loss the old file must not come back);
        // best effort: not every platform can open a folder.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// Snapshot the state (allocates; not for the hot loop).
    pub fn state(&self) -> OptimizerState {
        let slots: Vec<String> = self.slot_names().map(String::from).collect();
        let s = slots.len();
        let params = self
            .entries
            .iter()
            .map(|e| {
                let buffers = if e.has_state && !e.external {
                    slots
                        .iter()
                        .enumerate()
                        .map(|(j, n)| {
                            (
                                n.clone(),
                                e.layout(s)
                                    .runs(&e.state, j)
                                    .flatten()
                                    .map(|v| v.f64())
                                    .collect(),
                            )
                        })
                        .collect()
                } else {
                    BTreeMap::new()
                };
                (
                    e.name.clone(),
                    ParamRecord {
                        group: e.group,
                        shape: e.shape.clone(),
                        updates: e.updates,
                        has_state: e.has_state,
                        buffers,
                        tags: e.tags,
                        radius: (!e.radius.is_empty()).then(|| e.radius.clone()),
                        external: e.external,
                    },
                )
            })
            .collect();
        OptimizerState {
            format_version: STATE_FORMAT_VERSION,
            method: self.method_name(),
            dtype: T::DTYPE,
            slots,
            groups: self
                .groups
                .iter()
                .map(|g| GroupRecord {
                    k: g.k,
                    lr_max: g.averaging.lr_max,
                    weight_sum: g.averaging.weight_sum,
                    train_mode: g.train_mode,
                    last: g.last,
                    learner_state: self
                        .learner()
                        .group_state_names()
                        .iter()
                        .zip(&g.learner_state)
                        .map(|(n, v)| (n.to_string(), *v))
                        .collect(),
                })
                .collect(),
            params,
        }
    }

    /// Restore a snapshot taken by [`Optimizer::state`] from an optimizer with the same
    /// composition, groups and registered parameters (names, shapes, groups; any order).
    ///
    /// # Errors
    /// [`StateError`] saying what mismatched; the optimizer is unchanged on error.
    pub fn load_state(&mut self, st: &OptimizerState) -> Result<(), StateError> {
        if st.format_version != STATE_FORMAT_VERSION {
            return Err(StateError::Version {
                found: st.format_version,
                supported: STATE_FORMAT_VERSION,
            });
        }
        if st.dtype != T::DTYPE {
            return Err(StateError::Dtype {
                found: st.dtype,
                expected: T::DTYPE,
            });
        }
        let method = self.method_name();
        let slots: Vec<String> = self.slot_names().map(String::from).collect();
        if st.method != method || st.slots != slots {
            return Err(StateError::Method {
                found: format!("{} {:?}", st.method, st.slots),
                expected: format!("{method} {slots:?}"),
            });
        }
        if st.groups.len() != self.num_groups() {
            return Err(StateError::Groups {
                found: st.groups.len(),
                expected: self.num_groups(),
            });
        }
        let names = self.learner().group_state_names();
        let mut learner_states = Vec::with_capacity(st.groups.len());
        for (gi, r) in st.groups.iter().enumerate() {
            let bad = |what: String| Err(StateError::Group { group: gi, what });
            let mut ls = GroupState::default();
            for (j, n) in names.iter().enumerate() {
                match r.learner_state.get(*n) {
                    Some(v) if v.is_finite() => ls[j] = *v,
                    other => {
                        return bad(format!(
                            "learner state `{n}` is {other:?} (expected a finite value)"
                        ));
                    }
                }
            }
            if r.learner_state.len() != names.len() {
                return bad(format!(
                    "learner state {:?}, expected {names:?}",
                    r.learner_state.keys()
                ));
            }
            learner_states.push(ls);
            if !(r.lr_max.is_finite() && (r.lr_max >= 0.0 || r.lr_max == -1.0)) {
                return bad(format!(
                    "lr_max = {} (expected -1 before the first step, else >= 0)",
                    r.lr_max
                ));
            }
            if !(r.weight_sum.is_finite() && r.weight_sum >= 0.0) {
                return bad(format!(
                    "weight_sum = {} (expected finite >= 0)",
                    r.weight_sum
                ));
            }
        }
        let missing: Vec<String> = self
            .entries
            .iter()
            .filter(|e| !st.params.contains_key(&e.name))
            .map(|e| e.name.clone())
            .collect();
        let unexpected: Vec<String> = st
            .params
            .keys()
            .filter(|n| self.entry_index(n).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(StateError::Names {
                missing,
                unexpected,
            });
        }
        // Validate everything before writing anything.
        let s = slots.len();
        let mut new_states = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let r = &st.params[&e.name];
            let bad = |what: String| StateError::Param {
                name: e.name.clone(),
                what,
            };
            if r.shape != e.shape {
                return Err(bad(format!(
                    "shape {:?} in state, {:?} registered",
                    r.shape, e.shape
                )));
            }
            if r.tags != e.tags {
                return Err(bad(format!(
                    "tags {:?} in state, {:?} registered",
                    r.tags, e.tags
                )));
            }
            if let Some(radius) = &r.radius {
                let rows = self
                    .decay()
                    .projection()
                    .filter(|_| e.tags.normalized)
                    .and_then(|p| p.layout(&e.shape))
                    .map(|l| l.0);
                if rows != Some(radius.len()) || radius.iter().any(|v| !(v.is_finite() && *v > 0.0))
                {
                    return Err(bad(format!(
                        "{} hypersphere radii in state, {rows:?} rows projected here \
                         (or a radius is not finite and > 0)",
                        radius.len()
                    )));
                }
            }
            if r.group != e.group {
                return Err(bad(format!(
                    "group {} in state, {} registered",
                    r.group, e.group
                )));
            }
            if !r.has_state || r.external {
                if !r.buffers.is_empty() {
                    return Err(bad(
                        "buffers present but has_state is false or the state is external".into(),
                    ));
                }
                if r.external && !r.has_state {
                    return Err(bad("external state but has_state is false".into()));
                }
                new_states.push(None);
                continue;
            }
            let mut state = vec![T::zero(); e.len * s];
            let layout = e.layout(s);
            for (j, name) in slots.iter().enumerate() {
                let b = r
                    .buffers
                    .get(name)
                    .ok_or_else(|| bad(format!("buffer `{name}` missing")))?;
                if b.len() != e.len {
                    return Err(bad(format!(
                        "buffer `{name}` has {} elements, expected {}",
                        b.len(),
                        e.len
                    )));
                }
                for (i, v) in b.iter().enumerate() {
                    let t = T::of(*v);
                    if t.f64().to_bits() != v.to_bits() && !v.is_nan() {
                        return Err(bad(format!(
                            "buffer `{name}` value {v} is not representable as {:?}",
                            T::DTYPE
                        )));
                    }
                    state[layout.index(i, j)] = t;
                }
            }
            if r.buffers.len() != s {
                return Err(bad(format!(
                    "state has buffers {:?}, expected {slots:?}",
                    r.buffers.keys()
                )));
            }
            new_states.push(Some(state));
        }
        for (e, ns) in self.entries.iter_mut().zip(new_states) {
            let r = &st.params[&e.name];
            e.updates = r.updates;
            e.external = r.external;
            e.has_state = ns.is_some() || r.external;
            e.state = ns.unwrap_or_default();
            e.radius = r.radius.clone().unwrap_or_default();
            e.row_scratch = vec![0.0; e.radius.len()];
        }
        for (g, r) in self.groups.iter_mut().zip(&st.groups) {
            g.k = r.k;
            g.averaging = AveragingState {
                lr_max: r.lr_max,
                weight_sum: r.weight_sum,
            };
            g.train_mode = r.train_mode;
            g.last = r.last;
        }
        for (g, ls) in self.groups.iter_mut().zip(learner_states) {
            g.learner_state = ls;
        }
        Ok(())
    }
}

/// `f64` values as JSON numbers, with non-finite values as the strings `"NaN"`, `"inf"`,
/// `"-inf"` (JSON has no NaN/inf, and a diverged run must still checkpoint and load).
pub(crate) mod json_float {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(super) enum Value {
        Number(f64),
        Text(String),
    }

    impl Value {
        pub(super) fn get<E: serde::de::Error>(self) -> Result<f64, E> {
            match self {
                Value::Number(x) => Ok(x),
                Value::Text(t) => match t.as_str() {
                    "NaN" => Ok(f64::NAN),
                    "inf" => Ok(f64::INFINITY),
                    "-inf" => Ok(f64::NEG_INFINITY),
                    other => Err(E::custom(format!("invalid number `{other}`"))),
                },
            }
        }
    }

    pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Value::deserialize(d)?.get()
    }
}

/// Slot buffers with [`json_float`] values.
mod buffer_serde {
    use std::collections::BTreeMap;

    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::json_float::Value;

    struct Values<'a>(&'a [f64]);

    impl Serialize for Values<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            struct One(f64);
            impl Serialize for One {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    super::json_float::serialize(&self.0, s)
                }
            }
            let mut seq = s.serialize_seq(Some(self.0.len()))?;
            for v in self.0 {
                seq.serialize_element(&One(*v))?;
            }
            seq.end()
        }
    }

    pub fn serialize<S: Serializer>(
        b: &BTreeMap<String, Vec<f64>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let m: BTreeMap<&String, Values<'_>> = b.iter().map(|(k, v)| (k, Values(v))).collect();
        m.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<f64>>, D::Error> {
        let m = BTreeMap::<String, Vec<Value>>::deserialize(d)?;
        m.into_iter()
            .map(|(k, vs)| {
                Ok((
                    k,
                    vs.into_iter()
                        .map(Value::get)
                        .collect::<Result<Vec<f64>, D::Error>>()?,
                ))
            })
            .collect()
    }
}
