//! `sflab` binary (placeholder until the experiment driver lands).

fn main() {}
