//! Empty build script: it exists so that `[build-dependencies]` take part in host-side feature
//! resolution (see Cargo.toml).

fn main() {}
