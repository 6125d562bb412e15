//! The file formats sops reads and writes.

pub mod dotenv;
pub mod ini;
pub mod json;
pub mod yaml;
