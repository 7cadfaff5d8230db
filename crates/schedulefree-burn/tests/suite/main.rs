//! The burn adapter's integration tests, one module per subject, in one binary: each test
//! binary compiles the framework's generic code it uses again, so separate files cost a
//! quarter of a minute of build each.

mod batch_norm;
mod checkpoint;
mod common;
mod data_parallel;
mod device_step;
mod new_methods;
mod parity;
mod schedule_free_plus;
mod schedule_lr;
mod tags;
mod train_loop;
