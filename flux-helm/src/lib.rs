//! Helm chart loading, values coalescing and Go-template rendering compatible with
//! `helm template` (Helm 4.3.1 output).
//!
//! ```no_run
//! use flux_helm::{template, RenderOptions};
//! let opts = RenderOptions { release_name: "rel".into(), namespace: "ns1".into(), ..Default::default() };
//! let out = template(std::path::Path::new("charts/podinfo"), &[], &[], &opts).unwrap();
//! print!("{out}");
//! ```

// Go-compatible error values are large by nature and built rarely; the string building below
// mirrors Go's output code closely, which these lints would obscure.
#![allow(
    clippy::result_large_err,
    clippy::format_push_string,
    clippy::case_sensitive_file_extension_comparisons,
    clippy::many_single_char_names,
    clippy::unused_self,
    clippy::float_cmp,
    clippy::collapsible_match
)]

pub mod chart;
mod error;
pub mod files;
pub mod funcs;
mod head;
pub mod json;
pub mod release;
pub mod render;
mod schema;
mod sha1;
pub mod template;
mod toml;
pub mod value;
pub mod values;
pub mod yaml;

pub use chart::{load, load_archive, package, Chart};
pub use error::{Error, Result};
pub use render::{
    render, render_in, render_release, template, Lookup, ReleaseEnv, RenderOptions, Rendered,
};
pub use value::Value;
