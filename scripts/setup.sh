# Sourced by demo.sh and test.sh: a virtual environment in .venv with wganlab installed.
# WGANLAB_TORCH overrides the torch requirement (default: the 2.13.0 release, CPU build here).
set -euo pipefail
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Install torch first and by exact version, so the project's "torch>=2.6" pulls nothing bigger.
.venv/bin/python -m pip install -q "${WGANLAB_TORCH:-torch==2.13.0}"
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"

apt_install() {  # best effort: only as root with apt-get; never fatal
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; } ||
      echo "note: could not install $* with apt-get"
  fi
}
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  apt_install dataset-fashion-mnist
fi
