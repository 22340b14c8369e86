#!/usr/bin/env bash
# Installs the system packages the tests talk to (real peers, not mocks).
# Idempotent: does nothing when everything is already there.
set -euo pipefail
need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "test-deps: missing ${need[*]} (run as root or install them)" >&2
    fi
fi
