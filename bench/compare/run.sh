#!/usr/bin/env bash
# Installs PyTorch and OpenBLAS (Debian packages) if missing, then runs the comparison.
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
/usr/bin/python3 -c "import torch" 2>/dev/null || need+=(python3-torch)
[ -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 ] || need+=(libopenblas0-openmp)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${need[@]}" || { apt-get update && apt-get install -y "${need[@]}"; }
fi
exec /usr/bin/python3 bench/compare/compare.py "$@"
