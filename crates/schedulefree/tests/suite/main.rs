//! The core's integration tests, one module per subject, in one binary: each test binary
//! compiles the kernels it uses again, so separate files cost minutes of build each. Tests
//! that need a binary of their own (a counting global allocator, a child process to kill)
//! stay in `tests/`.

mod conformance;
mod corrected_decay;
mod documented_behaviours;
mod edge_cases;
mod errors;
mod external_step;
mod grad_norms;
mod group_averaging;
mod identities;
mod inspection;
mod learners;
mod magnitude;
mod normalization;
mod one_pass;
mod online_to_batch;
mod oracle;
mod projection;
mod refine;
mod resume;
mod resume_new;
mod schedule_free_plus;
mod schedules;
mod sharding;
mod split_mix;
mod state_compat;
