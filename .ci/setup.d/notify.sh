#!/usr/bin/env bash
# flux-notify: the NATS provider test publishes to a real nats-server started on a random
# loopback port by the test itself (it is skipped, with a notice, when the binary is absent).
set -euo pipefail
if ! command -v nats-server >/dev/null 2>&1; then
    apt-get update
    apt-get install -y nats-server
fi
