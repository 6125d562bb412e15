//! Helm chart rendering for commands that render HelmReleases, through flux-helm.

use std::path::Path;

use serde_json::Value;

use crate::render::ChartRenderer;

/// The chart renderer: flux-helm, with Helm 4's `helm template` defaults and CRDs included
/// (helm-controller installs a chart's CRDs by default).
pub fn renderer() -> Box<dyn ChartRenderer> {
    Box::new(HelmCharts)
}

struct HelmCharts;

impl ChartRenderer for HelmCharts {
    fn render(
        &self,
        chart_dir: &Path,
        release: &str,
        namespace: &str,
        values: &Value,
    ) -> Result<Vec<Value>, String> {
        let chart = flux_helm::load(chart_dir).map_err(|e| e.to_string())?;
        // JSON is YAML: hand the merged values to flux-helm's own value parser.
        let user = flux_helm::yaml::parse(&values.to_string())?;
        let options = flux_helm::RenderOptions {
            release_name: release.to_string(),
            namespace: namespace.to_string(),
            include_crds: true,
            ..flux_helm::RenderOptions::default()
        };
        let manifest = flux_helm::render(chart, &user, &options).map_err(|e| e.to_string())?;
        flux_kustomize::yaml::parse_documents(&manifest)
            .map_err(|e| format!("rendered manifest does not parse: {e}"))
    }
}
