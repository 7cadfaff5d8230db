//! Build-only crate with no code: it asks for the workspace-wide feature set of the few
//! dependencies whose features would otherwise differ between `cargo test --workspace` and
//! `cargo run -p schedulefree-lab`, so the two commands share one build. See its `Cargo.toml`.
