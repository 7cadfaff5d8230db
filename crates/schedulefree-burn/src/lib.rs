//! # schedulefree-burn
//!
//! burn 0.22 adapter for the `schedulefree` optimizers. It owns no optimizer math: it moves
//! burn tensors to host buffers, calls the core, and moves the results back.
//!
//! (Full documentation below is being written.)

mod batch_norm;
mod checkpoint;
mod error;
mod model_optimizer;
mod module_params;
mod schedule_lr;
mod tensor_optimizer;
mod train_loop;

pub use batch_norm::recalibrate_batch_norm;
pub use checkpoint::{CHECKPOINT_FILE, CHECKPOINT_VERSION, checkpoint_model_path, load_checkpoint, save_checkpoint};
pub use error::BurnAdapterError;
pub use model_optimizer::{MODEL_OPTIMIZER_FILE_VERSION, ModelOptimizer};
pub use schedule_lr::ScheduleLr;
pub use schedulefree::PresetConfig;
pub use tensor_optimizer::{TensorOptimizer, TensorState};
pub use train_loop::{EpochReport, TrainLoop};
