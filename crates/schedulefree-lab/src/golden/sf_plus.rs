//! ScheduleFree+ fixtures (`schedulefree.AdamCScheduleFreePlusPaper`, record kind `sf_plus`)
//! onto [`ScheduleFreePlus`]: the official class stores the bias-corrected L1 EMA back
//! ([`L1Ema::Reference`]); the `(grad_l1_ema stored raw)` fixtures were made with it patched
//! to store the raw EMA, our default ([`L1Ema::Raw`]).

use schedulefree::conversion::GroupAveraging;
use schedulefree::learner::L1Ema;
use schedulefree::{GroupConfig, ScheduleFreePlus};
use serde_json::Value;

use super::fixture::Fixture;
use super::kwargs::Kwargs;
use super::method::{Method, NO_MATH, Plan, Support, group_configs_with};

/// The official class.
pub const CLASS: &str = "schedulefree.AdamCScheduleFreePlusPaper";
/// The official class patched to store the raw EMA.
pub const CLASS_RAW_EMA: &str = "schedulefree.AdamCScheduleFreePlusPaper (grad_l1_ema stored raw)";

/// Per-group keys of the reference besides `lr` and `weight_decay`.
const PER_GROUP: [&str; 3] = ["r", "weight_lr_power", "c_warmup"];

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
    let groups = group_configs_with(
        fx,
        GroupConfig {
            lr: c.lr,
            weight_decay: c.weight_decay,
        },
        "weight_decay",
        &PER_GROUP,
    )?;
    let averaging = fx
        .param_groups
        .iter()
        .flatten()
        .enumerate()
        .map(|(g, m)| group_averaging(m, g))
        .collect::<anyhow::Result<Vec<_>>>()?;
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
        averaging,
    }))
}

/// A group's `r`, `weight_lr_power` and `c_warmup` overrides.
fn group_averaging(m: &serde_json::Map<String, Value>, g: usize) -> anyhow::Result<GroupAveraging> {
    let num = |key: &str| -> anyhow::Result<Option<f64>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                anyhow::anyhow!("{CLASS} param_groups[{g}]: `{key}` = {v} is not a number")
            }),
        }
    };
    let c_warmup = match num("c_warmup")? {
        Some(v) if v >= 0.0 && v.fract() == 0.0 => Some(v as u64),
        Some(v) => anyhow::bail!("{CLASS} param_groups[{g}]: c_warmup = {v} is not a count"),
        None => None,
    };
    Ok(GroupAveraging {
        r: num("r")?,
        weight_lr_power: num("weight_lr_power")?,
        c_warmup,
    })
}
