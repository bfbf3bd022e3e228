#!/usr/bin/env bash
# install-deps.sh - installs the Debian packages squish needs to build and test, if any
# are missing. Idempotent and quick when everything is present. Uses sudo when not root.
set -euo pipefail

pkgs=(build-essential pkg-config libhdf5-dev hdf5-tools libyaml-dev libcjson-dev liblapacke-dev libopenblas-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "squish: missing packages: ${missing[*]}; install their equivalents (HDF5, libyaml, cJSON, LAPACKE, OpenBLAS, pkg-config) and rerun" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "squish: missing packages: ${missing[*]}; run as root or install sudo" >&2; exit 1; fi
fi
echo "squish: installing missing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
echo "squish: dependencies installed" >&2
