#!/usr/bin/env bash
# What the SIP throughput comparison needs: SIPp and, for the ratio, Kamailio
# (Debian packages sip-tester and kamailio). Installed only when missing.
set -euo pipefail
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v kamailio >/dev/null 2>&1 || missing+=(kamailio)
if ((${#missing[@]})); then
    echo "bench-deps: installing ${missing[*]}" >&2
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q "${missing[@]}" >/dev/null
    else
        sudo apt-get install -y -q "${missing[@]}" >/dev/null
    fi
fi
