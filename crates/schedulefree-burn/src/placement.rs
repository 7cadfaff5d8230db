//! [`Placement`]: which path a [`ModelOptimizer`](crate::ModelOptimizer) steps on, and the
//! rule that [`Placement::Auto`] follows.

use burn::module::Module;
use burn::tensor::Device;
use schedulefree::{DynOptimizer, ParamTags};

use crate::module_params::param_meta;
use crate::tags::TagRules;

/// Where a [`ModelOptimizer`](crate::ModelOptimizer) keeps its state and runs the element
/// update. Both paths take the core's scalar decisions (schedules, averaging weights, bias
/// corrections, decay factors, skips on non-finite gradients) and save the same files; the
/// state moves between them (read back or uploaded once) when the chosen path changes.
///
/// | path | state | a step moves to the host | where it is faster |
/// | --- | --- | --- | --- |
/// | `Host` | host RAM; the core's fused CPU kernel (one pass over memory) | every parameter and gradient, and the new values back | burn's flex (CPU) backend: about 2× the device path, as fast as burn's AdamW |
/// | `Device` | burn tensors on each parameter's device; the update as burn tensor ops ([`DeviceOptimizer`](crate::DeviceOptimizer)) | three numbers per parameter (`‖g‖₁`, `‖g‖₂²`, finiteness), read together; Prodigy two more (its pre-pass sums), in a second read | GPU backends (CUDA, ROCm, Metal, wgpu/Vulkan, burn's CubeCL CPU runtime) |
///
/// The flex timings are in the README's benchmark table; no GPU timing has been taken yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// Decided at every step from the module: the device path when some parameter is on a
    /// device other than burn's flex CPU backend (with or without autodiff) and the device
    /// path covers the preset (every preset but the hypersphere projection of parameters
    /// tagged `normalized`); otherwise the host path. The default.
    #[default]
    Auto,
    /// Always the host path (e.g. on a CPU backend other than flex, such as ndarray or
    /// libtorch's CPU device, or to measure norm diagnostics on a GPU).
    Host,
    /// Always the device path; a preset it does not cover fails at the step with a typed
    /// error.
    Device,
}

/// Whether `device` is burn's flex backend, where the host path's fused kernel reads and
/// writes the parameters in place of one pass per tensor op.
pub(crate) fn on_host_backend(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

impl Placement {
    /// Whether this placement steps `module` on the device path, with `core` holding the
    /// registered parameters (their tags; new ones get `rules`' tags).
    pub(crate) fn wants_device<M: Module>(
        self,
        module: &M,
        core: &dyn DynOptimizer<f32>,
        rules: &TagRules,
    ) -> bool {
        match self {
            Placement::Host => false,
            Placement::Device => true,
            Placement::Auto => {
                module.devices().iter().any(|d| !on_host_backend(d)) && covers(module, core, rules)
            }
        }
    }
}

/// Whether element programs cover every float parameter of `module` under `core`'s
/// composition. Walks the module's paths only when the tags matter (a projection preset).
fn covers<M: Module>(module: &M, core: &dyn DynOptimizer<f32>, rules: &TagRules) -> bool {
    if core.programs_cover(ParamTags::default()).is_err() {
        return false;
    }
    if core.programs_cover(ParamTags::NORMALIZED).is_ok() {
        return true;
    }
    param_meta(module).iter().all(|p| {
        let tags = core
            .param_tags(&p.path)
            .unwrap_or_else(|| rules.tags_for(&p.path, &p.owner));
        core.programs_cover(tags).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
    use burn::tensor::Device;
    use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
    use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy};
    use schedulefree::learner::Prodigy;
    use schedulefree::schedule::ScheduleConfig;
    use schedulefree::{AdamWScheduleFree, PresetConfig};

    use super::{Placement, covers, on_host_backend};
    use crate::tags::TagRules;

    #[derive(burn::module::Module, Debug)]
    struct Net {
        linear: Linear,
        norm: LayerNorm,
    }

    fn net(device: &Device) -> Net {
        Net {
            linear: LinearConfig::new(3, 4).init(device),
            norm: LayerNormConfig::new(4).init(device),
        }
    }

    fn composed(learner: LearnerConfig, normalized: NormalizedPolicy) -> PresetConfig {
        PresetConfig::Composed(Composed {
            learner,
            conversion: ConversionConfig::ScheduleFree {
                beta: 0.9,
                weights: Default::default(),
                decoupling_c: 0.0,
            },
            decay: DecayConfig {
                base: AnyDecay::DecoupledAtY,
                normalized,
            },
            schedule: ScheduleConfig::Constant {},
            lr: 0.01,
            weight_decay: 0.01,
        })
    }

    #[test]
    fn flex_is_the_host_backend_with_or_without_autodiff() {
        assert!(on_host_backend(&Device::flex()));
        assert!(on_host_backend(&Device::flex().autodiff()));
        let m = net(&Device::default().autodiff());
        let core = PresetConfig::AdamWScheduleFree(AdamWScheduleFree::default())
            .build_dyn::<f32>()
            .expect("valid");
        let rules = TagRules::new();
        assert!(!Placement::Auto.wants_device(&m, core.as_ref(), &rules));
        assert!(!Placement::Host.wants_device(&m, core.as_ref(), &rules));
        assert!(Placement::Device.wants_device(&m, core.as_ref(), &rules));
    }

    #[test]
    fn coverage_follows_the_learner_and_the_tags() {
        let m = net(&Device::default());
        let build = |p: PresetConfig| p.build_dyn::<f32>().expect("valid");
        let plain = TagRules::new();
        let norm_rules = TagRules::new().normalized_path("linear.weight");
        let adam = LearnerConfig::Adam(Default::default());
        let prodigy = LearnerConfig::Prodigy(Prodigy::default());

        let standard = build(composed(adam, NormalizedPolicy::Standard));
        assert!(covers(&m, standard.as_ref(), &norm_rules));
        // Prodigy's pre-pass runs on the device path too.
        let prodigy = build(composed(prodigy, NormalizedPolicy::Standard));
        assert!(covers(&m, prodigy.as_ref(), &plain));

        // The projection is not covered, but only `normalized` parameters are projected.
        let projected = build(composed(
            adam,
            NormalizedPolicy::Projected(Default::default()),
        ));
        assert!(covers(&m, projected.as_ref(), &plain));
        assert!(!covers(&m, projected.as_ref(), &norm_rules));
    }
}
