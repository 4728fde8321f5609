#!/usr/bin/env bash
# Installs and starts the real services the integration tests run against. Idempotent; needs root.
# Each file in services.d/ adds the Debian packages it needs to `need` and may define a
# `start_<name>` function, called after installation. Tests start and stop their own
# instances (each on its own port / directory) wherever the service allows it.
set -euo pipefail
here=$(dirname "$0")

need=()
starts=()
for part in "$here"/services.d/*.sh; do
    # shellcheck source=/dev/null
    source "$part"
done
if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "tests/services.sh: need root to install: ${need[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for start in "${starts[@]}"; do
    "$start"
done
echo "services: ready (${need[*]:-nothing to install})"
