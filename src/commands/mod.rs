//! One module per subcommand: read state, (plan, apply,) render.

pub mod list;
pub mod version;
