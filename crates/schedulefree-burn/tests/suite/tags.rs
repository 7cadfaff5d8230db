//! Tag selection on real burn modules: the standard no-decay convention, layer-type and
//! regex selection, the container-type naming the owner lookup relies on, and the tags the
//! optimizer registers.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use schedulefree::{AdamC, ParamTags, PresetConfig, schedule::ScheduleConfig};
use schedulefree_burn::{BurnAdapterError, ModelOptimizer, Selector, TagRules, select_tags};

/// Linear → LayerNorm, Conv2d → BatchNorm, and an output Linear.
#[derive(Module, Debug)]
struct Net {
    fc: Linear,
    ln: LayerNorm,
    conv: Conv2d,
    bn: BatchNorm,
    head: Linear,
}

impl Net {
    fn new(device: &Device) -> Self {
        Net {
            fc: LinearConfig::new(4, 6).init(device),
            ln: LayerNormConfig::new(6).init(device),
            conv: Conv2dConfig::new([1, 2], [3, 3]).init(device),
            bn: BatchNormConfig::new(2).init(device),
            head: LinearConfig::new(6, 3).init(device),
        }
    }
}

/// A module with a parameter of its own (not inside a burn layer).
#[derive(Module, Debug)]
struct Gate {
    scale: Param<Tensor<1>>,
}

/// Nested containers: `Vec`, arrays, tuples and `Option` around burn layers.
#[derive(Module, Debug)]
struct Block {
    layers: Vec<Linear>,
    norm: LayerNorm,
}

#[derive(Module, Debug)]
struct Deep {
    blocks: Vec<Block>,
    twins: [Linear; 2],
    pair: (Linear, LayerNorm),
    maybe: Option<Linear>,
    none: Option<Linear>,
    gate: Gate,
}

impl Deep {
    fn new(device: &Device) -> Self {
        let lin = |i, o| LinearConfig::new(i, o).init(device);
        Deep {
            blocks: (0..2)
                .map(|_| Block {
                    layers: vec![lin(3, 3), lin(3, 3)],
                    norm: LayerNormConfig::new(3).init(device),
                })
                .collect(),
            twins: [lin(3, 2), lin(3, 2)],
            pair: (lin(2, 2), LayerNormConfig::new(2).init(device)),
            maybe: Some(lin(2, 1)),
            none: None,
            gate: Gate {
                scale: Param::from_tensor(Tensor::from_data(
                    TensorData::new(vec![1.0_f32; 3], [3]),
                    device,
                )),
            },
        }
    }
}

fn by_path<M: Module>(m: &M, rules: &TagRules) -> BTreeMap<String, (String, ParamTags)> {
    select_tags(m, rules)
        .expect("readable")
        .into_iter()
        .map(|p| (p.path, (p.owner, p.tags)))
        .collect()
}

const NONE: ParamTags = ParamTags {
    normalized: false,
    no_decay: false,
};
const NO_DECAY: ParamTags = ParamTags::NO_DECAY;
const NORMALIZED: ParamTags = ParamTags::NORMALIZED;

#[test]
fn standard_rules_exempt_norm_layers_and_biases() {
    let net = Net::new(&Device::default());
    let got = by_path(&net, &TagRules::standard());
    let want: BTreeMap<String, (String, ParamTags)> = [
        ("fc.weight", "Linear", NONE),
        ("fc.bias", "Linear", NO_DECAY),
        ("ln.gamma", "LayerNorm", NO_DECAY),
        ("ln.beta", "LayerNorm", NO_DECAY),
        ("conv.weight", "Conv2d", NONE),
        ("conv.bias", "Conv2d", NO_DECAY),
        ("bn.gamma", "BatchNorm", NO_DECAY),
        ("bn.beta", "BatchNorm", NO_DECAY),
        // burn stores the running statistics as float tensors; they never get a gradient.
        ("bn.running_mean", "BatchNorm", NO_DECAY),
        ("bn.running_var", "BatchNorm", NO_DECAY),
        ("head.weight", "Linear", NONE),
        ("head.bias", "Linear", NO_DECAY),
    ]
    .into_iter()
    .map(|(p, o, t)| (p.to_string(), (o.to_string(), t)))
    .collect();
    assert_eq!(got, want);
    assert!(
        by_path(&net, &TagRules::new())
            .values()
            .all(|(_, t)| *t == NONE),
        "no rules, no tags"
    );
}

#[test]
fn layer_type_selection_excludes_the_output_layer() {
    let net = Net::new(&Device::default());
    let rules = TagRules::standard()
        .normalized_layer_type("Linear", "weight")
        .exclude_path("head");
    let got = by_path(&net, &rules);
    assert_eq!(got["fc.weight"].1, NORMALIZED);
    assert_eq!(got["head.weight"].1, NONE, "excluded");
    assert_eq!(got["conv.weight"].1, NONE, "another layer type");
    assert_eq!(got["fc.bias"].1, NO_DECAY, "only the weight field");
    let normalized: Vec<&String> = got
        .iter()
        .filter(|(_, (_, t))| t.normalized)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(normalized, ["fc.weight"]);
    // Conv weights feed the BatchNorm: select them as well.
    let got = by_path(&net, &rules.normalized_layer_type("Conv2d", "weight"));
    assert_eq!(got["conv.weight"].1, NORMALIZED);
    // `exclude_path` is a module prefix, not a string prefix.
    let r = TagRules::new()
        .normalized(Selector::ParamName("weight".into()))
        .exclude_path("he");
    assert!(r.tags_for("head.weight", "Linear").normalized);
    assert!(
        !TagRules::new()
            .normalized_path("head.weight")
            .exclude_path("head.weight")
            .tags_for("head.weight", "")
            .normalized
    );
}

#[test]
fn standard_rules_keep_gains_and_biases_out_of_normalized() {
    let net = Net::new(&Device::default());
    let everything = TagRules::standard().normalized_regex(".*").expect("valid");
    let got = by_path(&net, &everything);
    let normalized: Vec<&String> = got
        .iter()
        .filter(|(_, (_, t))| t.normalized)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(normalized, ["conv.weight", "fc.weight", "head.weight"]);
    // Without the standard rules nothing is excluded.
    let all = by_path(
        &net,
        &TagRules::new().normalized_regex(".*").expect("valid"),
    );
    assert!(all.values().all(|(_, t)| t.normalized));
}

#[test]
fn regex_and_path_selection() {
    let deep = Deep::new(&Device::default());
    let rules = TagRules::standard()
        .normalized_regex(r"^blocks\.\d+\.layers\.\d+\.weight$")
        .expect("valid")
        .no_decay_path("twins.1")
        .no_decay_regex(r"^gate\.")
        .expect("valid");
    let got = by_path(&deep, &rules);
    for (path, (_, tags)) in &got {
        let hidden =
            path.starts_with("blocks.") && path.contains(".layers.") && path.ends_with(".weight");
        assert_eq!(tags.normalized, hidden, "{path}");
    }
    assert_eq!(got["twins.1.weight"].1, NO_DECAY);
    assert_eq!(got["twins.0.weight"].1, NONE);
    assert_eq!(got["gate.scale"].1, NO_DECAY);
    let exact = by_path(
        &deep,
        &TagRules::new().normalized_path("blocks.1.layers.0.weight"),
    );
    let selected: Vec<&String> = exact
        .iter()
        .filter(|(_, (_, t))| t.normalized)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(selected, ["blocks.1.layers.0.weight"]);
}

#[test]
fn invalid_regexes_are_typed_errors() {
    for r in [
        TagRules::new().normalized_regex("layers.(").map(|_| ()),
        TagRules::new().no_decay_regex("[z-a]").map(|_| ()),
        TagRules::new().exclude_regex("(?P<").map(|_| ()),
    ] {
        match r.map_err(BurnAdapterError::from) {
            Err(BurnAdapterError::Regex { pattern, message }) => {
                assert!(!pattern.is_empty() && !message.is_empty());
                assert!(
                    BurnAdapterError::Regex {
                        pattern: pattern.clone(),
                        message
                    }
                    .to_string()
                    .contains(&pattern)
                );
            }
            other => panic!("expected a Regex error, got {other:?}"),
        }
    }
}

/// burn names containers `Struct:<Type>`, `Vec`, `Array`, `Tuple` and calls nothing for
/// `Option`; the owner is the struct that declares the parameter field.
#[test]
fn owner_is_the_innermost_struct_through_nested_containers() {
    let deep = Deep::new(&Device::default());
    let got: BTreeMap<String, String> = by_path(&deep, &TagRules::new())
        .into_iter()
        .map(|(p, (o, _))| (p, o))
        .collect();
    let want: BTreeMap<String, String> = [
        ("blocks.0.layers.0.weight", "Linear"),
        ("blocks.0.layers.0.bias", "Linear"),
        ("blocks.0.layers.1.weight", "Linear"),
        ("blocks.0.layers.1.bias", "Linear"),
        ("blocks.0.norm.gamma", "LayerNorm"),
        ("blocks.0.norm.beta", "LayerNorm"),
        ("blocks.1.layers.0.weight", "Linear"),
        ("blocks.1.layers.0.bias", "Linear"),
        ("blocks.1.layers.1.weight", "Linear"),
        ("blocks.1.layers.1.bias", "Linear"),
        ("blocks.1.norm.gamma", "LayerNorm"),
        ("blocks.1.norm.beta", "LayerNorm"),
        ("twins.0.weight", "Linear"),
        ("twins.0.bias", "Linear"),
        ("twins.1.weight", "Linear"),
        ("twins.1.bias", "Linear"),
        ("pair.0.weight", "Linear"),
        ("pair.0.bias", "Linear"),
        ("pair.1.gamma", "LayerNorm"),
        ("pair.1.beta", "LayerNorm"),
        ("maybe.weight", "Linear"),
        ("maybe.bias", "Linear"),
        ("gate.scale", "Gate"),
    ]
    .into_iter()
    .map(|(p, o)| (p.to_string(), o.to_string()))
    .collect();
    assert_eq!(got, want);
    // Layer types select through any nesting.
    let std = by_path(
        &deep,
        &TagRules::standard().normalized_layer_type("Linear", "weight"),
    );
    assert_eq!(std["pair.1.gamma"].1, NO_DECAY);
    assert_eq!(std["blocks.1.norm.beta"].1, NO_DECAY);
    assert_eq!(std["twins.0.weight"].1, NORMALIZED);
    assert_eq!(std["maybe.weight"].1, NORMALIZED);
    assert_eq!(std["gate.scale"].1, NONE);
}

#[test]
fn burn_linear_weight_is_input_by_output() {
    // Output unit j is column j of the weight: projecting output units means axis 1.
    let device = Device::default();
    let lin = LinearConfig::new(3, 5).init(&device);
    assert_eq!(lin.weight.val().dims(), [3, 5]);
    let w = lin
        .weight
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
    let b = lin
        .bias
        .as_ref()
        .expect("bias")
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
    let e1 = Tensor::<2>::from_data(TensorData::new(vec![0.0_f32, 1.0, 0.0], [1, 3]), &device);
    let out = lin
        .forward(e1)
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
    for j in 0..5 {
        assert!(
            (out[j] - b[j] - w[5 + j]).abs() < 1e-6,
            "output {j} = row 1, column {j}"
        );
    }
}

#[test]
fn the_optimizer_registers_the_selected_tags() {
    let device = Device::default().autodiff();
    let net = Net::new(&device);
    let rules = TagRules::standard()
        .normalized_layer_type("Linear", "weight")
        .exclude_path("head");
    let preset = PresetConfig::AdamC {
        config: AdamC {
            lr: 1e-2,
            weight_decay: 0.1,
            ..Default::default()
        },
        schedule: ScheduleConfig::Constant {},
    };
    let mut optim = ModelOptimizer::new(preset)
        .expect("valid")
        .with_tag_rules(rules.clone());
    let x = Tensor::<2>::from_data(
        TensorData::new(
            (0..8).map(|i| (i as f32 * 0.7).sin()).collect::<Vec<_>>(),
            [2, 4],
        ),
        &device,
    );
    let img = Tensor::<4>::from_data(
        TensorData::new(
            (0..32).map(|i| (i as f32 * 0.3).cos()).collect::<Vec<_>>(),
            [2, 1, 4, 4],
        ),
        &device,
    );
    let loss = net
        .head
        .forward(net.ln.forward(net.fc.forward(x)))
        .powf_scalar(2.0)
        .mean()
        + net
            .bn
            .forward(net.conv.forward(img))
            .powf_scalar(2.0)
            .mean();
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    let (net, _) = optim.step(net, grads).expect("step");
    let selected = select_tags(&net, &rules).expect("readable");
    let stepped: Vec<&String> = optim.param_shapes().keys().collect();
    assert_eq!(
        stepped.len(),
        10,
        "every parameter except the running statistics: {stepped:?}"
    );
    for p in &selected {
        match optim.core().param_tags(&p.path) {
            Some(tags) => assert_eq!(tags, p.tags, "{}", p.path),
            None => assert!(
                p.path.starts_with("bn.running"),
                "{} not registered",
                p.path
            ),
        }
    }
    let line = selected
        .iter()
        .find(|p| p.path == "fc.weight")
        .expect("listed")
        .to_string();
    assert_eq!(line, "fc.weight (Linear) [4, 6]: normalized");
}
