//! Tag selection by `VarMap` name on candle_nn layers: the standard no-decay convention
//! (name-based: candle has no layer types at run time), regex and exact-name selection,
//! tagging at registration, and typed errors.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{
    Conv2dConfig, VarBuilder, VarMap, batch_norm, conv2d, embedding, layer_norm, linear,
    linear_no_bias, rms_norm,
};
use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection};
use schedulefree::learner::Adam;
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{ParamError, ParamTags, PresetConfig};
use schedulefree_candle::{
    CandleAdapterError, ScheduleFreeOptimizer, Selector, TagRules, select_tags,
};

const NONE: ParamTags = ParamTags {
    normalized: false,
    no_decay: false,
};
const NO_DECAY: ParamTags = ParamTags::NO_DECAY;
const NORMALIZED: ParamTags = ParamTags::NORMALIZED;

/// Linear → LayerNorm, Conv2d → BatchNorm, an output Linear, and transformer-style names.
fn model() -> VarMap {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    linear(3, 6, vb.pp("fc1")).unwrap();
    layer_norm(6, 1e-5, vb.pp("ln1")).unwrap();
    conv2d(1, 2, 3, Conv2dConfig::default(), vb.pp("conv")).unwrap();
    batch_norm(2, 1e-5, vb.pp("bn")).unwrap();
    linear(6, 2, vb.pp("head")).unwrap();
    rms_norm(6, 1e-6, vb.pp("blocks.0.input_layernorm")).unwrap();
    linear_no_bias(6, 6, vb.pp("blocks.0.mlp.up")).unwrap();
    embedding(10, 6, vb.pp("embed")).unwrap();
    varmap
}

fn by_name(varmap: &VarMap, rules: &TagRules) -> BTreeMap<String, ParamTags> {
    select_tags(varmap, rules)
        .unwrap()
        .into_iter()
        .map(|v| (v.name, v.tags))
        .collect()
}

fn expect(pairs: &[(&str, ParamTags)]) -> BTreeMap<String, ParamTags> {
    pairs.iter().map(|(n, t)| (n.to_string(), *t)).collect()
}

#[test]
fn standard_rules_exempt_norm_layers_and_biases_by_name() {
    let got = by_name(&model(), &TagRules::standard());
    let want = expect(&[
        ("blocks.0.input_layernorm.weight", NO_DECAY),
        ("blocks.0.mlp.up.weight", NONE),
        ("bn.bias", NO_DECAY),
        ("bn.running_mean", NO_DECAY),
        ("bn.running_var", NO_DECAY),
        ("bn.weight", NO_DECAY),
        ("conv.bias", NO_DECAY),
        ("conv.weight", NONE),
        ("embed.weight", NONE),
        ("fc1.bias", NO_DECAY),
        ("fc1.weight", NONE),
        ("head.bias", NO_DECAY),
        ("head.weight", NONE),
        ("ln1.bias", NO_DECAY),
        ("ln1.weight", NO_DECAY),
    ]);
    assert_eq!(got, want);
    assert!(
        by_name(&model(), &TagRules::new())
            .values()
            .all(|t| *t == NONE)
    );
    // Common layer names of other code bases.
    let r = TagRules::standard();
    for name in [
        "ln_f.weight",
        "h.0.ln_2.bias",
        "encoder.LayerNorm.weight",
        "final_norm.weight",
        "bn2.weight",
        "gn.weight",
    ] {
        assert!(r.tags_for(name, "").no_decay, "{name}");
    }
    for name in [
        "lnx.weight",
        "bnorm_free.weight_v",
        "attn.c_proj.weight",
        "weight",
    ] {
        assert_eq!(
            r.tags_for(name, "").no_decay,
            name.contains("norm"),
            "{name}"
        );
    }
}

#[test]
fn hidden_weights_normalized_except_the_output_layer() {
    let vm = model();
    let rules = TagRules::standard()
        .normalized_regex(r"\.weight$")
        .unwrap()
        .exclude_path("head")
        .exclude_path("embed");
    let got = by_name(&vm, &rules);
    let normalized: Vec<&String> = got
        .iter()
        .filter(|(_, t)| t.normalized)
        .map(|(n, _)| n)
        .collect();
    // Norm gains named `weight` stay out: the standard rules exclude them from `normalized`.
    assert_eq!(
        normalized,
        ["blocks.0.mlp.up.weight", "conv.weight", "fc1.weight"]
    );
    assert_eq!(got["ln1.weight"], NO_DECAY);
    assert_eq!(got["head.weight"], NONE);
    // Exact names, and `exclude_path` as a layer prefix rather than a string prefix.
    let exact = by_name(&vm, &TagRules::new().normalized_path("fc1.weight"));
    assert_eq!(exact.iter().filter(|(_, t)| **t == NORMALIZED).count(), 1);
    assert!(
        TagRules::new()
            .normalized(Selector::ParamName("weight".into()))
            .exclude_path("he")
            .tags_for("head.weight", "")
            .normalized
    );
    let custom = TagRules::new()
        .no_decay_path("embed")
        .no_decay_regex(r"^blocks\.\d+\.mlp\.")
        .unwrap();
    let got = by_name(&vm, &custom);
    assert_eq!(got["embed.weight"], NO_DECAY);
    assert_eq!(got["blocks.0.mlp.up.weight"], NO_DECAY);
    assert_eq!(got["fc1.weight"], NONE);
}

#[test]
fn the_norm_layer_pattern_is_configurable() {
    let r = TagRules::standard_with(r"^(attn_norm|final)$").unwrap();
    assert!(r.tags_for("final.weight", "").no_decay);
    assert!(r.tags_for("blocks.3.attn_norm.weight", "").no_decay);
    assert_eq!(
        r.tags_for("ln1.weight", ""),
        NONE,
        "no longer a norm layer name"
    );
    assert_eq!(r.tags_for("ln1.bias", ""), NO_DECAY, "biases still are");
}

#[test]
fn invalid_regexes_are_typed_errors() {
    let results = [
        TagRules::new().normalized_regex("fc(").map(|_| ()),
        TagRules::new().no_decay_regex("[z-a]").map(|_| ()),
        TagRules::new().exclude_regex("(?P<").map(|_| ()),
        TagRules::standard_with("(").map(|_| ()),
    ];
    for r in results {
        let e = CandleAdapterError::from(r.expect_err("an invalid pattern"));
        assert!(
            matches!(e, CandleAdapterError::Regex { .. }) && e.to_string().contains("regex"),
            "{e}"
        );
    }
}

#[test]
fn candle_linear_weight_is_output_by_input() {
    // Output unit j is row j of the weight: projecting output units means axis 0.
    let vm = VarMap::new();
    let lin = linear(
        3,
        5,
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu).pp("l"),
    )
    .unwrap();
    assert_eq!(lin.weight().dims(), [5, 3]);
    let w = lin
        .weight()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = lin.bias().unwrap().to_vec1::<f32>().unwrap();
    let e1 = Tensor::new(&[[0f32, 1.0, 0.0]], &Device::Cpu).unwrap();
    let out = lin
        .forward(&e1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for j in 0..5 {
        assert!(
            (out[j] - b[j] - w[3 * j + 1]).abs() < 1e-6,
            "output {j} = row {j}, column 1"
        );
    }
}

fn projected(axis: usize) -> PresetConfig {
    PresetConfig::Composed(Composed {
        learner: LearnerConfig::Adam(Adam::default()),
        conversion: ConversionConfig::LastIterate,
        decay: DecayConfig {
            base: AnyDecay::Decoupled,
            normalized: NormalizedPolicy::Projected(Projection {
                axis,
                ..Default::default()
            }),
        },
        schedule: ScheduleConfig::Constant {},
        lr: 1e-2,
        weight_decay: 0.1,
    })
}

#[test]
fn vars_are_tagged_when_they_register() {
    let vm = model();
    let rules = TagRules::standard()
        .normalized_regex(r"\.weight$")
        .unwrap()
        .exclude_path("head");
    let opt = ScheduleFreeOptimizer::from_varmap_tagged(&vm, projected(0), &rules).unwrap();
    let selected = select_tags(&vm, &rules).unwrap();
    let registered: Vec<(String, ParamTags)> = opt.tags();
    assert_eq!(
        registered,
        selected
            .iter()
            .map(|v| (v.name.clone(), v.tags))
            .collect::<Vec<_>>()
    );
    for v in &selected {
        assert_eq!(opt.param_tags(&v.name), Some(v.tags), "{}", v.name);
    }
    assert_eq!(opt.param_tags("nope"), None);
    let line = selected
        .iter()
        .find(|v| v.name == "fc1.weight")
        .unwrap()
        .to_string();
    assert_eq!(line, "fc1.weight [6, 3]: normalized");
    // Untagged construction registers no tags.
    let plain = ScheduleFreeOptimizer::from_varmap(&vm, projected(0)).unwrap();
    assert!(plain.tags().iter().all(|(_, t)| *t == NONE));
    // A projection axis that a normalized var lacks is refused at registration.
    let err = ScheduleFreeOptimizer::from_varmap_tagged(
        &vm,
        projected(2),
        &TagRules::new().normalized_path("fc1.weight"),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            CandleAdapterError::Param(ParamError::ProjectionAxis { .. })
        ),
        "{err}"
    );
}
