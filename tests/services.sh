#!/usr/bin/env bash
# Installs the real services the integration tests run against. Idempotent; needs root.
# Tests start and stop their own instances (each on its own port / directory).
set -euo pipefail

need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v mtail >/dev/null || need+=(mtail)
if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "tests/services.sh: need root to install: ${need[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "services: prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}'), mtail ok"
