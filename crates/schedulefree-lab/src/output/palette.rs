//! The lab's one palette: matplotlib's tab10 for anything drawn in order (sweeps, budgets,
//! decay policies) and one fixed colour per method, the same in every figure.

use plotters::style::RGBColor;

/// matplotlib's tab10, in its order.
pub const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th colour of a series drawn in order (tab10, repeating after 10).
pub fn cycle(i: usize) -> RGBColor {
    TAB10[i % TAB10.len()]
}

/// Schedule-Free (tab10 red).
pub const SCHEDULE_FREE: RGBColor = TAB10[3];
/// ScheduleFree+ (a dark red: a relative of Schedule-Free, distinct from every tab10 colour).
pub const SCHEDULE_FREE_PLUS: RGBColor = RGBColor(128, 0, 64);
/// Linear decay to 0 (tab10 blue).
pub const LINEAR_DECAY: RGBColor = TAB10[0];
/// Cosine decay to 0 (tab10 purple).
pub const COSINE: RGBColor = TAB10[4];
/// Constant lr (tab10 grey).
pub const CONSTANT: RGBColor = TAB10[7];
/// Polyak–Ruppert averaging (tab10 green).
pub const POLYAK: RGBColor = TAB10[2];
/// Primal averaging (tab10 orange).
pub const PRIMAL: RGBColor = TAB10[1];
/// `1/√t` decay (tab10 olive).
pub const INVERSE_SQRT: RGBColor = TAB10[8];
/// Step decay (tab10 brown).
pub const STEP: RGBColor = TAB10[5];
/// Schedule refined from ℓ2 gradient norms (tab10 cyan).
pub const REFINED_L2: RGBColor = TAB10[9];
/// Schedule refined from ℓ1 gradient norms (tab10 pink).
pub const REFINED_L1: RGBColor = TAB10[6];
/// A user's own schedule (black).
pub const CUSTOM: RGBColor = RGBColor(0, 0, 0);
/// Measured inputs rather than a method (gradient-norm logs): tab10 grey.
pub const DATA: RGBColor = TAB10[7];
