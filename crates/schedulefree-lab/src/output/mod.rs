//! What every experiment writes through: one [`csv`] writer, one [`palette`], one figure
//! layer ([`figure`]: PNG/SVG files, axes, legends) and one chart of curves ([`panels`]) one markdown [`table`] writer and atomic [`text`] files.

pub mod csv;
pub mod figure;
pub mod palette;
pub mod panels;
pub mod table;
pub mod text;

pub use figure::{Figure, save_png, save_png_svg};
pub use panels::{Panel, Panels, Series};
pub use text::{write_json, write_text};
