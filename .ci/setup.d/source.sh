#!/usr/bin/env bash
# Servers the flux-source tests start on 127.0.0.1 (git daemon / http-backend behind lighttpd,
# lighttpd with TLS client certificates, sshd, docker-registry for OCI, moto's S3 server), plus
# gpg (signed commits/tags for spec.verify) and openssl (test certificates).
# Idempotent; runs as root on fresh Debian.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v git >/dev/null || need+=(git)
[ -x /usr/lib/git-core/git-http-backend ] || need+=(git)
command -v lighttpd >/dev/null || need+=(lighttpd)
[ -e /usr/lib/lighttpd/mod_openssl.so ] || need+=(lighttpd-mod-openssl)
command -v gpg >/dev/null || need+=(gnupg)
command -v gpg-agent >/dev/null || need+=(gpg-agent)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v python3 >/dev/null || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update
    apt-get install -y --no-install-recommends "${need[@]}"
fi
# docker-registry's package starts a system service on :5000; the tests run their own instance.
systemctl disable --now docker-registry >/dev/null 2>&1 || true
if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
    python3 -m pip install --quiet 'moto[server]' || python3 -m pip install --quiet --break-system-packages 'moto[server]'
fi
