//! The serde model of `kustomization.yaml`.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A string-valued field that YAML may also give as a number or boolean.
fn de_string_map<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, String>, D::Error> {
    let raw: Option<IndexMap<String, Value>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, scalar_string(&v)))
        .collect())
}

fn de_string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let raw: Option<Vec<Value>> = Option::deserialize(d)?;
    Ok(raw.unwrap_or_default().iter().map(scalar_string).collect())
}

fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw: Option<Value> = Option::deserialize(d)?;
    Ok(raw.filter(|v| !v.is_null()).map(|v| scalar_string(&v)))
}

/// The text form of a scalar (strings as-is, numbers and booleans printed).
pub fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A kustomization file (`kind: Kustomization` or `kind: Component`). Unknown fields are
/// an error, as in kustomize.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Kustomization {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<Value>,
    #[serde(deserialize_with = "de_string_list")]
    pub resources: Vec<String>,
    #[serde(deserialize_with = "de_string_list")]
    pub bases: Vec<String>,
    #[serde(deserialize_with = "de_string_list")]
    pub components: Vec<String>,
    #[serde(deserialize_with = "de_string_list")]
    pub crds: Vec<String>,
    pub openapi: Option<IndexMap<String, String>>,
    #[serde(deserialize_with = "de_string_list")]
    pub configurations: Vec<String>,
    #[serde(deserialize_with = "de_string_list")]
    pub generators: Vec<String>,
    #[serde(deserialize_with = "de_string_list")]
    pub transformers: Vec<String>,
    #[serde(deserialize_with = "de_string_list")]
    pub validators: Vec<String>,
    pub config_map_generator: Vec<GeneratorArgs>,
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: Option<GeneratorOptions>,
    #[serde(deserialize_with = "de_opt_string")]
    pub name_prefix: Option<String>,
    #[serde(deserialize_with = "de_opt_string")]
    pub name_suffix: Option<String>,
    #[serde(deserialize_with = "de_opt_string")]
    pub namespace: Option<String>,
    pub labels: Vec<Label>,
    #[serde(deserialize_with = "de_string_map")]
    pub common_labels: IndexMap<String, String>,
    #[serde(deserialize_with = "de_string_map")]
    pub common_annotations: IndexMap<String, String>,
    pub images: Vec<Image>,
    pub image_tags: Vec<Image>,
    pub replicas: Vec<Replica>,
    pub patches: Vec<Patch>,
    pub patches_strategic_merge: Vec<Value>,
    pub patches_json6902: Vec<Patch>,
    pub replacements: Vec<Value>,
    pub vars: Vec<Var>,
    pub sort_options: Option<SortOptions>,
    #[serde(deserialize_with = "de_string_list")]
    pub build_metadata: Vec<String>,
    pub helm_charts: Vec<Value>,
    pub helm_chart_inflation_generator: Vec<Value>,
    pub helm_globals: Option<Value>,
}

/// configMapGenerator / secretGenerator entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GeneratorArgs {
    #[serde(deserialize_with = "de_opt_string")]
    pub name: Option<String>,
    #[serde(deserialize_with = "de_opt_string")]
    pub namespace: Option<String>,
    #[serde(deserialize_with = "de_opt_string")]
    pub behavior: Option<String>,
    #[serde(deserialize_with = "de_string_list")]
    pub files: Vec<String>,
    #[serde(deserialize_with = "de_string_list")]
    pub literals: Vec<String>,
    #[serde(deserialize_with = "de_string_list")]
    pub envs: Vec<String>,
    #[serde(deserialize_with = "de_opt_string")]
    pub env: Option<String>,
    #[serde(rename = "type", deserialize_with = "de_opt_string")]
    pub kind: Option<String>,
    pub options: Option<GeneratorOptions>,
}

/// generatorOptions (global or per generator).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GeneratorOptions {
    #[serde(deserialize_with = "de_string_map")]
    pub labels: IndexMap<String, String>,
    #[serde(deserialize_with = "de_string_map")]
    pub annotations: IndexMap<String, String>,
    pub disable_name_suffix_hash: Option<bool>,
    pub immutable: Option<bool>,
}

/// A field spec as written in configurations and `labels[].fields`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FieldSpecArgs {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub path: String,
    pub create: bool,
}

/// A `labels:` entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Label {
    #[serde(deserialize_with = "de_string_map")]
    pub pairs: IndexMap<String, String>,
    pub include_selectors: bool,
    pub include_templates: bool,
    pub fields: Vec<FieldSpecArgs>,
}

/// An `images:` entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Image {
    #[serde(deserialize_with = "de_opt_string")]
    pub name: Option<String>,
    #[serde(deserialize_with = "de_opt_string")]
    pub new_name: Option<String>,
    #[serde(deserialize_with = "de_opt_string")]
    pub new_tag: Option<String>,
    #[serde(deserialize_with = "de_opt_string")]
    pub digest: Option<String>,
    pub tag_suffix: Option<String>,
}

/// A `replicas:` entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Replica {
    pub name: String,
    pub count: i64,
}

/// A resource selector (`target:` of patches).
#[allow(clippy::struct_field_names)]
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Selector {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

/// Options of a `patches:` entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PatchOptions {
    pub allow_name_change: bool,
    pub allow_kind_change: bool,
}

/// A `patches:` or `patchesJson6902:` entry.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Patch {
    pub path: Option<String>,
    pub patch: Option<String>,
    pub target: Option<Selector>,
    pub options: Option<PatchOptions>,
}

/// A `vars:` entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Var {
    pub name: String,
    #[serde(rename = "objref")]
    pub obj_ref: VarTarget,
    #[serde(rename = "fieldref")]
    pub field_ref: Option<VarFieldRef>,
}

/// The object a var reads from.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct VarTarget {
    pub api_version: Option<String>,
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
}

/// The field a var reads.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct VarFieldRef {
    #[serde(rename = "fieldpath")]
    pub field_path: String,
}

/// `sortOptions:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SortOptions {
    pub order: Option<String>,
    pub legacy_sort_options: Option<LegacySortOptions>,
}

/// `sortOptions.legacySortOptions`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LegacySortOptions {
    pub order_first: Vec<String>,
    pub order_last: Vec<String>,
}
