//! ScheduleFree+ fixtures (`schedulefree.AdamCScheduleFreePlusPaper`, record kind `sf_plus`)
//! onto [`ScheduleFreePlus`]: the official class stores the bias-corrected L1 EMA back
//! ([`L1Ema::Reference`]); the `(grad_l1_ema stored raw)` fixtures were made with it patched
//! to store the raw EMA, our default ([`L1Ema::Raw`]).

use schedulefree::learner::L1Ema;
use schedulefree::{GroupConfig, ScheduleFreePlus};

use super::fixture::Fixture;
use super::kwargs::Kwargs;
use super::method::{Method, NO_MATH, Plan, Support, group_configs};

/// The official class.
pub const CLASS: &str = "schedulefree.AdamCScheduleFreePlusPaper";
/// The official class patched to store the raw EMA.
pub const CLASS_RAW_EMA: &str = "schedulefree.AdamCScheduleFreePlusPaper (grad_l1_ema stored raw)";

/// Per-group keys the reference reads per group that our preset keeps optimizer-wide.
const OPTIMIZER_WIDE: [&str; 3] = ["r", "weight_lr_power", "c_warmup"];

/// The plan of a ScheduleFree+ fixture (`class` is [`CLASS`] or [`CLASS_RAW_EMA`]).
///
/// # Errors
/// An argument we cannot map.
pub fn plan(fx: &Fixture, class: &str) -> anyhow::Result<Support> {
    let ema = if class == CLASS_RAW_EMA {
        L1Ema::Raw
    } else {
        L1Ema::Reference
    };
    let mut kw = Kwargs::new(class, &fx.optimizer_kwargs);
    kw.ignore(&NO_MATH);
    let d = ScheduleFreePlus::default();
    let c = ScheduleFreePlus {
        lr: kw.f64("lr", d.lr)?,
        betas: kw.pair("betas", d.betas)?,
        sf_beta1: kw.f64("sf_beta1", d.sf_beta1)?,
        eps: kw.f64("eps", d.eps)?,
        weight_decay: kw.f64("weight_decay", d.weight_decay)?,
        r: kw.f64("r", d.r)?,
        polyak_beta: kw.f64("polyak_beta", d.polyak_beta)?,
        c_warmup: kw.u64("c_warmup", d.c_warmup)?,
        sf_beta1_anneal_steps: kw.u64("sf_beta1_anneal_steps", d.sf_beta1_anneal_steps)?,
        sf_beta1_max: kw.f64("sf_beta1_max", d.sf_beta1_max)?,
        weight_lr_power: kw.f64("weight_lr_power", d.weight_lr_power)?,
        ema,
    };
    kw.finish()?;
    for (g, m) in fx.param_groups.iter().flatten().enumerate() {
        if let Some(key) = OPTIMIZER_WIDE.iter().find(|k| m.contains_key(**k)) {
            return Ok(Support::Skipped(format!(
                "param_groups[{g}] sets `{key}`: ScheduleFreePlus keeps r, weight_lr_power and \
                 c_warmup for all groups"
            )));
        }
    }
    let groups = group_configs(
        fx,
        GroupConfig {
            lr: c.lr,
            weight_decay: c.weight_decay,
        },
        "weight_decay",
    )?;
    let method = Method::ScheduleFreePlus(ScheduleFreePlus {
        lr: groups[0].lr,
        weight_decay: groups[0].weight_decay,
        ..c
    });
    let normalized = vec![false; groups.len()];
    Ok(Support::Supported(Plan {
        method,
        groups,
        normalized,
        table: None,
    }))
}
