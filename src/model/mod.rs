//! What a model is, independent of where it runs: hyper-parameters read from GGUF metadata,
//! the tensors an architecture needs, and the [`ForwardPlan`] every backend executes.

mod arch;
mod config;
mod load;
mod stream;
mod plan;
pub mod relative;
mod rope;
mod weights;

pub use arch::{names::TOKEN_EMBD, Activation, ArchSpec, Ffn, Norm, Positions, RopeStyle};
pub use rope::{RopeSpec, Yarn};
pub use config::{ModelConfig, Pooling};
pub use load::{load_model_file, open_file, read_model_header, LoadProgress, Model};
pub use stream::{ModelStream, NewWeights, PutWeight};
pub use plan::{Act, ForwardPlan, Op, WeightId, WeightSpec};
pub use weights::QTensor;
