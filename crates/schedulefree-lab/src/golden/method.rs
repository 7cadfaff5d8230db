//! Which of our public presets reproduces a fixture's reference class, with which
//! hyperparameters and parameter groups. Missing arguments take the reference class's
//! defaults (our presets' `Default` impls, which follow `schedulefree` 1.4.1's signatures; torch's
//! docs; pytorch_optimizer 4.1.0 for `AdamC`).

use schedulefree::conversion::GroupAveraging;
use schedulefree::presets;
use schedulefree::schedule::Tabulated;
use schedulefree::{
    AdamWScheduleFree, AdamWScheduleFreePaper, AdamWScheduleFreeReference, GroupConfig,
    RAdamScheduleFree, ScheduleFreePlus, ScheduleFreeWrapper, SgdScheduleFree,
    SgdScheduleFreeReference,
};
use serde_json::{Map, Value};

use super::fixture::Fixture;
use super::kwargs::Kwargs;
use super::sf_plus;

/// Arguments that never change the maths of a single-tensor CPU run.
pub(super) const NO_MATH: [&str; 4] = ["foreach", "fused", "capturable", "differentiable"];

/// The momentum-free base learner of a `ScheduleFreeWrapper` case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WrapperBase {
    /// torch `SGD(momentum=0)` → `learner::Sgd::plain()`.
    Sgd,
    /// torch `Adam(betas=(0, β2), eps)` → `learner::Adam { beta1: 0, .. }`.
    Adam {
        /// Second-moment decay.
        beta2: f64,
        /// Denominator offset.
        eps: f64,
    },
}

/// The preset (with group 0's lr and weight decay filled in) that replays a fixture.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// `SgdScheduleFree { .. }.build()` (also for the closure class and pytorch_optimizer's port).
    SgdScheduleFree(SgdScheduleFree),
    /// `SgdScheduleFreeReference(..).build()`.
    SgdScheduleFreeReference(SgdScheduleFreeReference),
    /// `AdamWScheduleFree { .. }.build()` (also for the closure class and pytorch_optimizer's port).
    AdamWScheduleFree(AdamWScheduleFree),
    /// `AdamWScheduleFreePaper(..).build()`.
    AdamWScheduleFreePaper(AdamWScheduleFreePaper),
    /// `AdamWScheduleFreeReference { .. }.build()`.
    AdamWScheduleFreeReference(AdamWScheduleFreeReference),
    /// `RAdamScheduleFree { .. }.build()`.
    RAdamScheduleFree(RAdamScheduleFree),
    /// `ScheduleFreeWrapper { .. }.wrap(base, lr)` or `.wrap_reference(base, lr)`.
    Wrapper {
        /// Wrapper hyperparameters (`weight_decay_at_y` = group 0's).
        wrapper: ScheduleFreeWrapper,
        /// Reference form (`x, y, z` stored).
        reference: bool,
        /// Base learner.
        base: WrapperBase,
        /// Group 0's lr (the base optimizer's lr).
        lr: f64,
    },
    /// `presets::AdamW { .. }.build(schedule)`.
    TorchAdamW(presets::AdamW),
    /// `presets::TorchSgd { .. }.build(schedule)`.
    TorchSgd(presets::TorchSgd),
    /// `presets::AdamC { .. }.build(schedule)` (`pytorch_optimizer.AdamC`; `peak_lr` = the
    /// constructor's lr, groups with `normalized: true` registered with `ParamTags::NORMALIZED`).
    AdamC(presets::AdamC),
    /// `ScheduleFreePlus { .. }` through `PresetConfig::build_dyn`, stepped with the
    /// recorded loss (`schedulefree.AdamCScheduleFreePlusPaper`).
    ScheduleFreePlus(ScheduleFreePlus),
}

impl Method {
    /// Whether the method is a schedule-free one (train point `y` ≠ returned point `x`).
    pub fn is_schedule_free(&self) -> bool {
        !matches!(
            self,
            Method::TorchAdamW(_) | Method::TorchSgd(_) | Method::AdamC(_)
        )
    }
}

/// How a fixture is replayed: the preset and the configuration of every parameter group.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The preset.
    pub method: Method,
    /// Group configurations (index 0 is the preset's own group).
    pub groups: Vec<GroupConfig>,
    /// Per group: register its parameters tagged `normalized` (AdamC's per-group
    /// `normalized` key; `false` for every other class).
    pub normalized: Vec<bool>,
    /// The lr schedule of torch cases (`None` for the schedule-free presets, whose warmup is
    /// built in; an external scheduler acting on them is replayed by setting the group lr).
    pub table: Option<Tabulated>,
    /// Per-group averaging overrides (`r`, `weight_lr_power`, `c_warmup`), by group index;
    /// empty: none.
    pub averaging: Vec<GroupAveraging>,
}

/// Whether we replay a fixture.
#[derive(Debug, Clone, PartialEq)]
pub enum Support {
    /// Replayed with this plan.
    Supported(Plan),
    /// Not replayed, with the reason (does not fail a run).
    Skipped(String),
}

/// Decide how to replay `fx`.
///
/// # Errors
/// An inconsistent fixture ([`Fixture::validate`]); a `schedulefree.*` or `torch.optim.*`
/// class (or argument) that we cannot map: those must be supported, so this is a failure
/// rather than a skip.
pub fn resolve(fx: &Fixture) -> anyhow::Result<Support> {
    fx.validate()?;
    let class = fx.reference.as_str();
    let plan = match class {
        sf_plus::CLASS | sf_plus::CLASS_RAW_EMA => match sf_plus::plan(fx, class)? {
            Support::Supported(plan) => plan,
            skipped => return Ok(skipped),
        },
        "pytorch_optimizer.AdamC" => adamc_plan(fx, class)?,
        "pytorch_optimizer.ScheduleFreeRAdam" => {
            return Ok(Support::Skipped(
                "pytorch_optimizer.ScheduleFreeRAdam is a different algorithm from schedulefree.RAdamScheduleFree \
                 (lr = lr0*rect/sqrt(bc2), lr = 1 instead of lr0 when not rectified); cross-check only"
                    .into(),
            ));
        }
        // pytorch_optimizer's re-implementations: replay when the arguments fall inside the
        // official maths, skip otherwise (they are cross-checks, not references).
        "pytorch_optimizer.ScheduleFreeSGD" | "pytorch_optimizer.ScheduleFreeAdamW" => {
            match sf_plan(fx, class) {
                Ok(plan) => plan,
                Err(e) => return Ok(Support::Skipped(format!("{e:#}"))),
            }
        }
        _ if class.starts_with("schedulefree.") => sf_plan(fx, class)?,
        _ if class.starts_with("torch.optim.") => torch_plan(fx, class)?,
        _ => {
            return Ok(Support::Skipped(format!(
                "{class}: no mapping onto our presets"
            )));
        }
    };
    anyhow::ensure!(
        matches!(plan.method, Method::ScheduleFreePlus(_))
            == (fx.record_kind == super::fixture::RecordKind::SfPlus),
        "{class}: record_kind {:?} does not fit the mapped preset {:?} (the loss is fed only \
         to ScheduleFree+)",
        fx.record_kind,
        plan.method
    );
    anyhow::ensure!(
        plan.method.is_schedule_free() == fx.record_kind.is_schedule_free(),
        "{class}: record_kind {:?} does not fit the mapped preset {:?}",
        fx.record_kind,
        plan.method
    );
    Ok(Support::Supported(plan))
}

/// Per-group configurations: `default` overridden by each entry of `param_groups`
/// (`lr`, and the weight decay under the name `wd_key`).
pub(super) fn group_configs(
    fx: &Fixture,
    default: GroupConfig,
    wd_key: &str,
) -> anyhow::Result<Vec<GroupConfig>> {
    group_configs_with(fx, default, wd_key, &[])
}

/// [`group_configs`], also accepting the per-group keys `extra` (read elsewhere).
pub(super) fn group_configs_with(
    fx: &Fixture,
    default: GroupConfig,
    wd_key: &str,
    extra: &[&str],
) -> anyhow::Result<Vec<GroupConfig>> {
    let Some(groups) = &fx.param_groups else {
        return Ok(vec![default; fx.num_groups()]);
    };
    anyhow::ensure!(
        groups.len() == fx.num_groups(),
        "param_groups and group_members disagree on the number of groups"
    );
    groups
        .iter()
        .enumerate()
        .map(|(g, m)| {
            let mut kw = Kwargs::new(format!("{} param_groups[{g}]", fx.reference), m);
            kw.ignore(&["params"]);
            kw.ignore(extra);
            let c = GroupConfig {
                lr: kw.f64("lr", default.lr)?,
                weight_decay: kw.f64(wd_key, default.weight_decay)?,
            };
            kw.finish()?;
            Ok(c)
        })
        .collect()
}

fn sf_plan(fx: &Fixture, class: &str) -> anyhow::Result<Plan> {
    let name = class.rsplit('.').next().unwrap_or(class);
    let mut kw = Kwargs::new(class, &fx.optimizer_kwargs);
    kw.ignore(&NO_MATH);
    let kozistr = class.starts_with("pytorch_optimizer.");
    // Only pytorch_optimizer's ScheduleFreeAdamW reads it (its SGD and RAdam drop it, the
    // official classes have none): replay it there, refuse it elsewhere.
    let decoupling_c = if class == "pytorch_optimizer.ScheduleFreeAdamW" {
        kw.f64("decoupling_c", 0.0)?
    } else {
        0.0
    };
    if kozistr && decoupling_c == 0.0 {
        kw.require_f64(
            "decoupling_c",
            0.0,
            "decoupling_c > 0 is ignored by this class upstream",
        )?;
    }
    if kozistr {
        // Present in pytorch_optimizer's ScheduleFree* signatures; only the official maths is mapped.
        kw.ignore(&["eps"]); // ScheduleFreeSGD takes an unused eps
        kw.require_bool("ams_bound", false)?;
        kw.require_bool("use_palm", false)?;
    }
    let method = match name {
        "SGDScheduleFree"
        | "SGDScheduleFreeClosure"
        | "SGDScheduleFreeReference"
        | "ScheduleFreeSGD" => {
            let d = SgdScheduleFree::default();
            let c = SgdScheduleFree {
                lr: kw.f64("lr", d.lr)?,
                momentum: kw.f64("momentum", d.momentum)?,
                weight_decay: kw.f64("weight_decay", d.weight_decay)?,
                warmup_steps: kw.u64("warmup_steps", d.warmup_steps)?,
                r: kw.f64("r", d.r)?,
                weight_lr_power: kw.f64("weight_lr_power", d.weight_lr_power)?,
                decoupling_c,
            };
            if name == "SGDScheduleFreeReference" {
                Method::SgdScheduleFreeReference(SgdScheduleFreeReference(c))
            } else {
                Method::SgdScheduleFree(c)
            }
        }
        "AdamWScheduleFree"
        | "AdamWScheduleFreeClosure"
        | "AdamWScheduleFreePaper"
        | "AdamWScheduleFreeReference"
        | "ScheduleFreeAdamW" => {
            let d = AdamWScheduleFree::default();
            let c = AdamWScheduleFree {
                lr: kw.f64("lr", d.lr)?,
                betas: kw.pair("betas", d.betas)?,
                eps: kw.f64("eps", d.eps)?,
                weight_decay: kw.f64("weight_decay", d.weight_decay)?,
                warmup_steps: kw.u64("warmup_steps", d.warmup_steps)?,
                r: kw.f64("r", d.r)?,
                weight_lr_power: kw.f64("weight_lr_power", d.weight_lr_power)?,
                inner_momentum: kw.f64("inner_momentum", d.inner_momentum)?,
                decoupling_c,
            };
            match name {
                "AdamWScheduleFreePaper" => {
                    Method::AdamWScheduleFreePaper(AdamWScheduleFreePaper(c))
                }
                "AdamWScheduleFreeReference" => {
                    Method::AdamWScheduleFreeReference(AdamWScheduleFreeReference {
                        config: c,
                        decay_at_z: kw.bool("decay_at_z", false)?,
                    })
                }
                _ => Method::AdamWScheduleFree(c),
            }
        }
        "RAdamScheduleFree" | "RAdamScheduleFreeClosure" => {
            let d = RAdamScheduleFree::default();
            Method::RAdamScheduleFree(RAdamScheduleFree {
                lr: kw.f64("lr", d.lr)?,
                betas: kw.pair("betas", d.betas)?,
                eps: kw.f64("eps", d.eps)?,
                weight_decay: kw.f64("weight_decay", d.weight_decay)?,
                r: kw.f64("r", d.r)?,
                weight_lr_power: kw.f64("weight_lr_power", d.weight_lr_power)?,
                silent_sgd_phase: kw.bool("silent_sgd_phase", d.silent_sgd_phase)?,
                decoupling_c,
            })
        }
        "ScheduleFreeWrapper" | "ScheduleFreeWrapperReference" => {
            let d = ScheduleFreeWrapper::default();
            let wrapper = ScheduleFreeWrapper {
                momentum: kw.f64("momentum", d.momentum)?,
                weight_decay_at_y: kw.f64("weight_decay_at_y", d.weight_decay_at_y)?,
                r: kw.f64("r", d.r)?,
                weight_lr_power: kw.f64("weight_lr_power", d.weight_lr_power)?,
                decoupling_c,
            };
            kw.finish()?;
            return wrapper_plan(fx, wrapper, name == "ScheduleFreeWrapperReference");
        }
        _ => anyhow::bail!("{class}: no mapping onto our presets"),
    };
    kw.finish()?;
    let (lr, wd) = match &method {
        Method::SgdScheduleFree(c)
        | Method::SgdScheduleFreeReference(SgdScheduleFreeReference(c)) => (c.lr, c.weight_decay),
        Method::AdamWScheduleFree(c)
        | Method::AdamWScheduleFreePaper(AdamWScheduleFreePaper(c))
        | Method::AdamWScheduleFreeReference(AdamWScheduleFreeReference { config: c, .. }) => {
            (c.lr, c.weight_decay)
        }
        Method::RAdamScheduleFree(c) => (c.lr, c.weight_decay),
        _ => anyhow::bail!("{class}: internal mapping error"),
    };
    let groups = group_configs(
        fx,
        GroupConfig {
            lr,
            weight_decay: wd,
        },
        "weight_decay",
    )?;
    let normalized = vec![false; groups.len()];
    Ok(Plan {
        method: with_group0(method, groups[0]),
        groups,
        normalized,
        table: None,
        averaging: Vec::new(),
    })
}

/// Put group 0's (possibly overridden) lr and weight decay into the preset.
fn with_group0(method: Method, g: GroupConfig) -> Method {
    let GroupConfig { lr, weight_decay } = g;
    match method {
        Method::SgdScheduleFree(c) => Method::SgdScheduleFree(SgdScheduleFree {
            lr,
            weight_decay,
            ..c
        }),
        Method::SgdScheduleFreeReference(SgdScheduleFreeReference(c)) => {
            Method::SgdScheduleFreeReference(SgdScheduleFreeReference(SgdScheduleFree {
                lr,
                weight_decay,
                ..c
            }))
        }
        Method::AdamWScheduleFree(c) => Method::AdamWScheduleFree(AdamWScheduleFree {
            lr,
            weight_decay,
            ..c
        }),
        Method::AdamWScheduleFreePaper(AdamWScheduleFreePaper(c)) => {
            Method::AdamWScheduleFreePaper(AdamWScheduleFreePaper(AdamWScheduleFree {
                lr,
                weight_decay,
                ..c
            }))
        }
        Method::AdamWScheduleFreeReference(AdamWScheduleFreeReference { config, decay_at_z }) => {
            Method::AdamWScheduleFreeReference(AdamWScheduleFreeReference {
                config: AdamWScheduleFree {
                    lr,
                    weight_decay,
                    ..config
                },
                decay_at_z,
            })
        }
        Method::RAdamScheduleFree(c) => Method::RAdamScheduleFree(RAdamScheduleFree {
            lr,
            weight_decay,
            ..c
        }),
        Method::Wrapper {
            wrapper,
            reference,
            base,
            ..
        } => Method::Wrapper {
            wrapper: ScheduleFreeWrapper {
                weight_decay_at_y: weight_decay,
                ..wrapper
            },
            reference,
            base,
            lr,
        },
        Method::TorchAdamW(c) => Method::TorchAdamW(presets::AdamW {
            lr,
            weight_decay,
            ..c
        }),
        Method::TorchSgd(c) => Method::TorchSgd(presets::TorchSgd {
            lr,
            weight_decay,
            ..c
        }),
        // The peak stays the constructor's lr (set by the caller), whatever group 0's lr.
        Method::AdamC(c) => Method::AdamC(presets::AdamC {
            lr,
            weight_decay,
            ..c
        }),
        Method::ScheduleFreePlus(c) => Method::ScheduleFreePlus(ScheduleFreePlus {
            lr,
            weight_decay,
            ..c
        }),
    }
}

fn wrapper_plan(
    fx: &Fixture,
    wrapper: ScheduleFreeWrapper,
    reference: bool,
) -> anyhow::Result<Plan> {
    let base = fx
        .base_optimizer
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{}: wrapper case without base_optimizer", fx.reference))?;
    let class = base.class.as_str();
    let mut kw = Kwargs::new(format!("base optimizer {class}"), &base.kwargs);
    kw.ignore(&NO_MATH);
    kw.require_bool("maximize", false)?;
    // Weight decay inside the base optimizer would act at z; the wrapper preset decays at y only.
    kw.require_f64(
        "weight_decay",
        0.0,
        "decay inside the base optimizer acts at z; use weight_decay_at_y",
    )?;
    let (lr, learner) = match class {
        "torch.optim.sgd.SGD" | "torch.optim.SGD" => {
            let lr = kw.f64("lr", 1e-3)?;
            kw.require_f64("momentum", 0.0, "the wrapper needs a momentum-free base")?;
            kw.ignore(&["dampening"]); // no effect without momentum
            kw.require_bool("nesterov", false)?;
            (lr, WrapperBase::Sgd)
        }
        "torch.optim.adam.Adam" | "torch.optim.Adam" => {
            let lr = kw.f64("lr", 1e-3)?;
            let (beta1, beta2) = kw.pair("betas", (0.9, 0.999))?;
            anyhow::ensure!(
                beta1 == 0.0,
                "base Adam betas[0] = {beta1}: the wrapper needs a momentum-free base"
            );
            let eps = kw.f64("eps", 1e-8)?;
            kw.require_bool("amsgrad", false)?;
            kw.ignore(&["decoupled_weight_decay"]); // irrelevant with weight_decay = 0
            (lr, WrapperBase::Adam { beta2, eps })
        }
        _ => anyhow::bail!(
            "{}: base optimizer {class} has no counterpart learner",
            fx.reference
        ),
    };
    kw.finish()?;
    let groups = group_configs(
        fx,
        GroupConfig {
            lr,
            weight_decay: wrapper.weight_decay_at_y,
        },
        "weight_decay_at_y",
    )?;
    let method = Method::Wrapper {
        wrapper,
        reference,
        base: learner,
        lr,
    };
    let normalized = vec![false; groups.len()];
    Ok(Plan {
        method: with_group0(method, groups[0]),
        groups,
        normalized,
        table: None,
        averaging: Vec::new(),
    })
}

fn torch_plan(fx: &Fixture, class: &str) -> anyhow::Result<Plan> {
    let mut kw = Kwargs::new(class, &fx.optimizer_kwargs);
    kw.ignore(&NO_MATH);
    kw.require_bool("maximize", false)?;
    let method = match class {
        "torch.optim.AdamW"
        | "torch.optim.adamw.AdamW"
        | "torch.optim.Adam"
        | "torch.optim.adam.Adam" => {
            let adamw = class.ends_with("AdamW");
            kw.require_bool("amsgrad", false)?;
            let d = presets::AdamW::default();
            let c = presets::AdamW {
                lr: kw.f64("lr", d.lr)?,
                betas: kw.pair("betas", d.betas)?,
                eps: kw.f64("eps", d.eps)?,
                weight_decay: kw.f64("weight_decay", if adamw { d.weight_decay } else { 0.0 })?,
            };
            if !adamw && !kw.bool("decoupled_weight_decay", false)? {
                // torch Adam's coupled L2 is not one of our presets.
                anyhow::ensure!(
                    c.weight_decay == 0.0,
                    "{class}: coupled weight_decay (L2) has no preset"
                );
            }
            kw.ignore(&["decoupled_weight_decay"]);
            Method::TorchAdamW(c)
        }
        "torch.optim.SGD" | "torch.optim.sgd.SGD" => {
            let d = presets::TorchSgd::default();
            Method::TorchSgd(presets::TorchSgd {
                lr: kw.f64("lr", d.lr)?,
                momentum: kw.f64("momentum", d.momentum)?,
                dampening: kw.f64("dampening", d.dampening)?,
                weight_decay: kw.f64("weight_decay", d.weight_decay)?,
                nesterov: kw.bool("nesterov", d.nesterov)?,
            })
        }
        _ => anyhow::bail!("{class}: no mapping onto our presets"),
    };
    kw.finish()?;
    let (lr, wd) = match &method {
        Method::TorchAdamW(c) => (c.lr, c.weight_decay),
        Method::TorchSgd(c) => (c.lr, c.weight_decay),
        _ => anyhow::bail!("{class}: internal mapping error"),
    };
    let mut groups = group_configs(
        fx,
        GroupConfig {
            lr,
            weight_decay: wd,
        },
        "weight_decay",
    )?;
    let table = lr_table(fx, &mut groups)?;
    let normalized = vec![false; groups.len()];
    Ok(Plan {
        method: with_group0(method, groups[0]),
        groups,
        normalized,
        table: Some(table),
        averaging: Vec::new(),
    })
}

/// `pytorch_optimizer.AdamC` (4.1.0) onto [`presets::AdamC`]: `γ_max` is the constructor's `lr`
/// (the reference's `max_lr`, fixed at construction whatever the groups or schedulers do), the
/// per-group key `normalized` tags that group's parameters, torch schedulers become the lr
/// table as for torch optimizers. Only the default decay mode is mapped (`weight_decouple`,
/// no `fixed_decay`, no `ams_bound`).
fn adamc_plan(fx: &Fixture, class: &str) -> anyhow::Result<Plan> {
    let mut kw = Kwargs::new(class, &fx.optimizer_kwargs);
    kw.ignore(&NO_MATH);
    kw.require_bool("maximize", false)?;
    kw.require_bool("weight_decouple", true)?;
    kw.require_bool("fixed_decay", false)?;
    kw.require_bool("ams_bound", false)?;
    let d = presets::AdamC::default();
    let c = presets::AdamC {
        lr: kw.f64("lr", d.lr)?,
        betas: kw.pair("betas", d.betas)?,
        eps: kw.f64("eps", d.eps)?,
        weight_decay: kw.f64("weight_decay", d.weight_decay)?,
        peak_lr: None,
    };
    kw.finish()?;
    let peak = c.lr;
    let mut groups = group_configs_with(
        fx,
        GroupConfig {
            lr: c.lr,
            weight_decay: c.weight_decay,
        },
        "weight_decay",
        &["normalized"],
    )?;
    let normalized = group_flags(fx, "normalized")?;
    let table = lr_table(fx, &mut groups)?;
    let method = with_group0(
        Method::AdamC(presets::AdamC {
            peak_lr: Some(peak),
            ..c
        }),
        groups[0],
    );
    Ok(Plan {
        method,
        groups,
        normalized,
        table: Some(table),
        averaging: Vec::new(),
    })
}

/// A boolean per-group key of `param_groups` (absent or `null`: false), one value per group.
fn group_flags(fx: &Fixture, key: &str) -> anyhow::Result<Vec<bool>> {
    let Some(groups) = &fx.param_groups else {
        return Ok(vec![false; fx.num_groups()]);
    };
    groups
        .iter()
        .enumerate()
        .map(|(g, m)| match m.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(v) => v.as_bool().ok_or_else(|| {
                anyhow::anyhow!(
                    "{} param_groups[{g}]: `{key}` = {v} is not a boolean",
                    fx.reference
                )
            }),
        })
        .collect()
}

/// Base lr of each group for a torch scheduler (its `initial_lr`): the group's `lr` override or
/// the constructor's.
pub fn initial_lrs(fx: &Fixture, plan: &Plan) -> Vec<f64> {
    let ctor = fx
        .optimizer_kwargs
        .get("lr")
        .and_then(Value::as_f64)
        .unwrap_or(plan.groups[0].lr);
    let over = |m: &Map<String, Value>| m.get("lr").and_then(Value::as_f64);
    match &fx.param_groups {
        Some(groups) => groups.iter().map(|m| over(m).unwrap_or(ctor)).collect(),
        None => vec![ctor; plan.groups.len()],
    }
}

/// The lr schedule of a torch case, as a [`Tabulated`] schedule of the recorded
/// `lr_group_before_step` values (torch schedulers are recursive; the table reproduces them
/// exactly, the closed forms only to a few ulps). Adjusts the groups' lrs to match.
fn lr_table(fx: &Fixture, groups: &mut [GroupConfig]) -> anyhow::Result<Tabulated> {
    anyhow::ensure!(!fx.steps.is_empty(), "{}: no steps", fx.name);
    let seq = |g: usize| {
        fx.steps
            .iter()
            .map(|s| s.lr_group_before_step[g])
            .collect::<Vec<f64>>()
    };
    let first = seq(0);
    let values = if (1..groups.len()).all(|g| seq(g) == first) {
        // Base lr 1 with the absolute recorded lrs: the scheduled lr `1 · value(k)` is then
        // bit for bit torch's group['lr'], which is what its kernels multiply by. Dividing by
        // the base lr and multiplying back is off by an ulp for a few steps of every decaying
        // fixture (e.g. torch_adamw_warmup5_lineardecay30 step 17: 0.028 / 0.05 · 0.05 ≠ 0.028).
        for g in groups.iter_mut() {
            g.lr = 1.0;
        }
        first
    } else {
        // Groups with different base lrs share one schedule: multipliers relative to group
        // 0's base lr (other groups then agree with torch to an ulp).
        let base = groups[0].lr;
        anyhow::ensure!(
            base > 0.0,
            "{}: group 0 has lr 0, cannot tabulate relative lrs",
            fx.name
        );
        first.iter().map(|v| v / base).collect()
    };
    Tabulated::new(values)
        .map_err(|e| anyhow::anyhow!("{}: recorded lrs are not a valid schedule: {e}", fx.name))
}
