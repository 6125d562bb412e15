//! One module per command group.

pub mod completion;
pub mod source;
