//! Registration: parameter groups, parameters and their tags, and resolving the names passed
//! to a call against them.

use super::Optimizer;
use crate::conversion::{Conversion, GroupAveraging};
use crate::decay::Decay;
use crate::element::Element;
use crate::error::{ConfigError, ParamError, StepError};
use crate::kernel::{BlockSums, CHUNK, GradSums};
use crate::learner::{GroupState, Learner, MAX_PREPASS};
use crate::param::{Entry, Group, GroupConfig, Param, ParamTags};
use crate::schedule::Schedule;

use super::diagnostics::EntryDiag;

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// Add a parameter group; returns its index.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for a negative or non-finite lr or weight decay.
    pub fn add_group(&mut self, config: GroupConfig) -> Result<usize, ConfigError> {
        config.validate()?;
        let mut ls = GroupState::default();
        self.learner.init_group_state(&mut ls);
        let mut g = Group::new(config, ls);
        // New groups join in the optimizer's current mode.
        g.train_mode = self.groups[0].train_mode;
        self.groups.push(g);
        self.group_sums.push(GradSums::default());
        self.reduce_buf
            .resize(1 + (2 + MAX_PREPASS) * self.groups.len(), 0.0);
        self.prepass_sums.push([0.0; MAX_PREPASS]);
        Ok(self.groups.len() - 1)
    }

    /// Give group `g` its own averaging settings (`r`, `weight_lr_power`, and `c_warmup` of
    /// Schedule-Free), as the reference classes read them from each parameter group; `None`
    /// fields keep the optimizer's. Like the group's lr, a setting of the configuration: not
    /// saved with the state. Takes effect at the next step.
    ///
    /// # Errors
    /// [`ConfigError::Unsupported`] for a setting the conversion does not have (no
    /// averaging, or `c_warmup` outside Schedule-Free); [`ConfigError::OutOfRange`] for an
    /// invalid value or a missing group. Nothing changes on error.
    pub fn set_group_averaging(
        &mut self,
        g: usize,
        overrides: GroupAveraging,
    ) -> Result<(), ConfigError> {
        self.conversion.with_group_averaging(&overrides)?;
        let grp = self.groups.get_mut(g).ok_or(ConfigError::OutOfRange {
            field: "group",
            value: g as f64,
            expected: "an existing group index",
        })?;
        grp.averaging_overrides = overrides;
        Ok(())
    }

    /// Group `g`'s averaging overrides ([`Optimizer::set_group_averaging`]), if the group
    /// exists.
    pub fn group_averaging(&self, g: usize) -> Option<GroupAveraging> {
        self.groups.get(g).map(|x| x.averaging_overrides)
    }

    /// The conversion as group `g` uses it (with its averaging overrides).
    pub(super) fn group_conversion(&self, g: &crate::param::Group) -> std::borrow::Cow<'_, C> {
        use std::borrow::Cow;
        if g.averaging_overrides.is_empty() {
            return Cow::Borrowed(&self.conversion);
        }
        // Checked when set, so the fallback is never taken.
        match self.conversion.with_group_averaging(&g.averaging_overrides) {
            Ok(c) => Cow::Owned(c),
            Err(_) => Cow::Borrowed(&self.conversion),
        }
    }

    /// Register parameter `name` with `shape` (row-major; elements = product) in group 0.
    ///
    /// # Errors
    /// [`ParamError::Duplicate`] if the name is taken.
    pub fn add_param(&mut self, name: &str, shape: &[usize]) -> Result<(), ParamError> {
        self.add_param_to(0, name, shape)
    }

    /// Register parameter `name` with `shape` in group `group`.
    ///
    /// # Errors
    /// [`ParamError::Duplicate`] if the name is taken, [`ParamError::NoSuchGroup`],
    /// [`ParamError::ShapeOverflow`].
    pub fn add_param_to(
        &mut self,
        group: usize,
        name: &str,
        shape: &[usize],
    ) -> Result<(), ParamError> {
        self.add_param_tagged(group, name, shape, ParamTags::default())
    }

    /// Register parameter `name` with `shape` in group `group`, with decay-policy tags
    /// (`normalized`: feeds a normalization layer; `no_decay`).
    ///
    /// # Errors
    /// As [`Optimizer::add_param_to`], and [`ParamError::ProjectionAxis`] if the decay policy
    /// projects normalized parameters along an axis `shape` lacks.
    pub fn add_param_tagged(
        &mut self,
        group: usize,
        name: &str,
        shape: &[usize],
        tags: ParamTags,
    ) -> Result<(), ParamError> {
        self.check_projection(name, shape, tags)?;
        if group >= self.groups.len() {
            return Err(ParamError::NoSuchGroup {
                group,
                groups: self.groups.len(),
            });
        }
        if self.index.contains_key(name) {
            return Err(ParamError::Duplicate(name.to_string()));
        }
        let len = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| ParamError::ShapeOverflow {
                name: name.to_string(),
                shape: shape.to_vec(),
            })?;
        let at = self
            .by_name
            .partition_point(|&i| self.entries[i].name.as_str() < name);
        self.by_name.insert(at, self.entries.len());
        self.entry_sums.push(GradSums::default());
        self.entry_prepass.push([0.0; MAX_PREPASS]);
        self.index.insert(name.to_string(), self.entries.len());
        self.entries.push(Entry {
            name: name.to_string(),
            group,
            shape: shape.to_vec(),
            len,
            updates: 0,
            state: Vec::new(),
            has_state: false,
            external: false,
            tags,
            radius: Vec::new(),
            row_scratch: Vec::new(),
            stamp: 0,
        });
        self.diag.push(EntryDiag::default());
        self.resolved.reserve(1);
        // Sized here so that `step` never allocates.
        let chunks = len.div_ceil(CHUNK);
        if chunks > self.chunk_sums.len() {
            self.chunk_sums.resize(chunks, BlockSums::default());
            self.chunk_prepass.resize(chunks, [0.0; MAX_PREPASS]);
        }
        Ok(())
    }

    fn check_projection(
        &self,
        name: &str,
        shape: &[usize],
        tags: ParamTags,
    ) -> Result<(), ParamError> {
        match self.decay.projection() {
            Some(p) if tags.normalized && p.layout(shape).is_none() => {
                Err(ParamError::ProjectionAxis {
                    name: name.to_string(),
                    shape: shape.to_vec(),
                    axis: p.axis,
                })
            }
            _ => Ok(()),
        }
    }

    /// Change the tags of a registered parameter (takes effect at the next step; a parameter
    /// newly tagged `normalized` under a projection gets its radii from its iterate then).
    ///
    /// # Errors
    /// [`ParamError::Unknown`] for an unregistered name, [`ParamError::ProjectionAxis`].
    pub fn set_param_tags(&mut self, name: &str, tags: ParamTags) -> Result<(), ParamError> {
        let idx = self
            .entry_index(name)
            .ok_or_else(|| ParamError::Unknown(name.to_string()))?;
        self.check_projection(name, &self.entries[idx].shape.clone(), tags)?;
        let e = &mut self.entries[idx];
        if !tags.normalized {
            e.radius.clear();
        }
        e.tags = tags;
        Ok(())
    }

    /// The tags of a registered parameter.
    pub fn param_tags(&self, name: &str) -> Option<ParamTags> {
        self.entry_index(name).map(|i| self.entries[i].tags)
    }

    /// Resolve names and check lengths; fills `self.resolved`. Mutates only stamps.
    pub(super) fn resolve(
        &mut self,
        params: &[Param<'_, T>],
        check_grad: bool,
    ) -> Result<(), StepError> {
        self.stamp += 1;
        self.resolved.clear();
        for p in params {
            let idx = *self
                .index
                .get(p.name)
                .ok_or_else(|| StepError::UnknownParameter(p.name.to_string()))?;
            let e = &mut self.entries[idx];
            if e.stamp == self.stamp {
                return Err(StepError::DuplicateParameter(p.name.to_string()));
            }
            e.stamp = self.stamp;
            if e.external {
                return Err(StepError::ExternalState(p.name.to_string()));
            }
            if p.value.len() != e.len {
                return Err(StepError::LengthMismatch {
                    name: e.name.clone(),
                    what: "value",
                    got: p.value.len(),
                    expected: e.len,
                });
            }
            if let (true, Some(g)) = (check_grad, p.grad)
                && g.len() != e.len
            {
                return Err(StepError::LengthMismatch {
                    name: e.name.clone(),
                    what: "grad",
                    got: g.len(),
                    expected: e.len,
                });
            }
            self.resolved.push(idx);
        }
        Ok(())
    }
}
