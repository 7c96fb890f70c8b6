//! One module per subcommand: read state, plan, apply, render.

pub mod completion;
pub mod cross;
pub mod describe;
pub mod export;
pub mod link;
pub mod list;
pub mod mutate;
pub mod trust;
pub mod unlink;
pub mod version;
