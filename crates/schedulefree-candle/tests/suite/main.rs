//! The candle adapter's integration tests, one module per subject, in one binary: each test
//! binary compiles the framework's generic code it uses again, so separate files cost a
//! quarter of a minute of build each.

mod common;
mod construction;
mod device_step;
mod golden_device;
mod modes;
mod new_methods;
mod parity;
mod resume;
mod state_file;
mod tags;
