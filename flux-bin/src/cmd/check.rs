//! `flux-rs check`: the cluster meets the prerequisites, the Flux CRDs are installed and
//! established, and the controller Deployments are ready — printed like `flux check`.

use anyhow::bail;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::Api;
use serde_json::Value;

use super::cluster::{block_on, Cluster, ClusterArgs, Log};

/// The oldest Kubernetes minor version we support (as flux: the oldest maintained release).
pub const MIN_KUBERNETES: (u64, u64) = (1, 30);

/// Arguments of `flux-rs check`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # Before installing: is the cluster new enough?
  flux-rs check --pre

  # After installing: CRDs established, controllers ready
  flux-rs check

Exit code 1 when a check fails.")]
pub struct CheckArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Only check the prerequisites (Kubernetes version).
    #[arg(long)]
    pub pre: bool,
}

/// Parses `v1.32.4+k3s1` (or major/minor fields such as `1`/`32+`) into numbers.
pub fn parse_version(git_version: &str, major: &str, minor: &str) -> Option<(u64, u64, u64)> {
    let text = git_version.trim_start_matches('v');
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(str::parse::<u64>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Some((a, b, c)),
        _ => {
            let digits = |s: &str| s.trim_end_matches('+').parse::<u64>().ok();
            Some((digits(major)?, digits(minor)?, 0))
        }
    }
}

/// One line of the CRD section: `Ok(name/version)` or `Err(message)`.
pub fn crd_status(crd: &Value) -> Result<String, String> {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let established = crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    let storage = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .unwrap_or("?");
    if established {
        Ok(format!("{name}/{storage}"))
    } else {
        Err(format!("{name}/{storage}: not established"))
    }
}

/// Whether a Deployment is ready (kstatus Current), with the reason when not.
pub fn deployment_ready(deployment: &Value) -> Result<(), String> {
    match flux_api::health::evaluate(deployment, jiff::Timestamp::now()) {
        Ok(health) if health.status == flux_api::health::HealthStatus::Current => Ok(()),
        Ok(health) => Err(health.message),
        Err(err) => Err(err.to_string()),
    }
}

/// Runs `flux-rs check`; a failed check is an error (exit code 1).
pub fn run(args: &CheckArgs) -> anyhow::Result<()> {
    let log = Log::new();
    block_on(async {
        let cluster = Cluster::connect(&args.cluster).await?;
        let mut failed = false;
        log.action("checking prerequisites");
        let info = cluster.client.apiserver_version().await?;
        match parse_version(&info.git_version, &info.major, &info.minor) {
            Some((major, minor, patch)) if (major, minor) >= MIN_KUBERNETES => {
                log.success(&format!(
                    "Kubernetes {major}.{minor}.{patch} >={}.{}.0-0",
                    MIN_KUBERNETES.0, MIN_KUBERNETES.1
                ));
            }
            Some((major, minor, patch)) => {
                failed = true;
                log.failure(&format!(
                    "Kubernetes {major}.{minor}.{patch} <{}.{}.0-0 (too old)",
                    MIN_KUBERNETES.0, MIN_KUBERNETES.1
                ));
            }
            None => {
                failed = true;
                log.failure(&format!(
                    "Kubernetes version {:?} could not be parsed",
                    info.git_version
                ));
            }
        }
        if args.pre {
            if failed {
                bail!("prerequisites checks failed");
            }
            log.success("prerequisites checks passed");
            return Ok(());
        }

        log.action("checking controllers");
        let deployments: Api<Deployment> =
            Api::namespaced(cluster.client.clone(), &cluster.namespace);
        let list = deployments
            .list(&ListParams::default().labels("app.kubernetes.io/part-of=flux"))
            .await?;
        if list.items.is_empty() {
            failed = true;
            log.failure(&format!(
                "no Flux controllers found in {} namespace (label app.kubernetes.io/part-of=flux)",
                cluster.namespace
            ));
        }
        for deployment in list.items {
            let value = serde_json::to_value(&deployment)?;
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match deployment_ready(&value) {
                Ok(()) => log.success(&format!("{name}: deployment ready")),
                Err(why) => {
                    failed = true;
                    log.failure(&format!("{name}: deployment not ready ({why})"));
                }
            }
            for container in value["spec"]["template"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(image) = container["image"].as_str() {
                    log.action(image);
                }
            }
        }

        log.action("checking crds");
        let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
        let installed = crds.list(&ListParams::default()).await?;
        let installed: Vec<Value> = installed
            .items
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        let mut expected: Vec<String> = flux_api::crds()
            .into_iter()
            .filter_map(|crd| crd.metadata.name)
            .collect();
        expected.sort();
        for name in expected {
            match installed
                .iter()
                .find(|c| c["metadata"]["name"] == name.as_str())
            {
                Some(crd) => match crd_status(crd) {
                    Ok(line) => log.success(&line),
                    Err(line) => {
                        failed = true;
                        log.failure(&line);
                    }
                },
                None => {
                    failed = true;
                    log.failure(&format!("{name}: not installed"));
                }
            }
        }
        if failed {
            bail!("check failed");
        }
        log.success("all checks passed");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions() {
        assert_eq!(parse_version("v1.32.4+k3s1", "1", "32"), Some((1, 32, 4)));
        assert_eq!(parse_version("v1.29.0-eks-1", "", ""), Some((1, 29, 0)));
        assert_eq!(parse_version("weird", "1", "31+"), Some((1, 31, 0)));
        assert_eq!(parse_version("weird", "", ""), None);
    }

    #[test]
    fn crd_lines() {
        let crd = json!({
            "metadata": {"name": "alerts.notification.toolkit.fluxcd.io"},
            "spec": {"versions": [{"name": "v1beta3", "storage": true}]},
            "status": {"conditions": [{"type": "Established", "status": "True"}]}
        });
        assert_eq!(
            crd_status(&crd),
            Ok("alerts.notification.toolkit.fluxcd.io/v1beta3".into())
        );
        let pending = json!({"metadata": {"name": "x"}, "spec": {"versions": [{"name": "v1", "storage": true}]}});
        assert_eq!(crd_status(&pending), Err("x/v1: not established".into()));
    }
}
