#!/usr/bin/env bash
# One-command set-up: creates .venv, installs every dependency and writes default local.py files
# (never overwriting existing ones), and visdom's web assets so that its server works offline.
# Usage: bash install.sh [--with-chromium]   (Chromium, and npm if missing, for the browser test)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
WITH_CHROMIUM=0
for arg in "$@"; do
  case "$arg" in
    --with-chromium) WITH_CHROMIUM=1 ;;
    *) echo "install.sh: unknown option '$arg' (known: --with-chromium)" >&2; exit 2 ;;
  esac
done

# Debian packages: libturbojpeg0 for jpeg4py (optional: frames fall back to OpenCV without it).
APT_PKGS=(libturbojpeg0)
[ "$WITH_CHROMIUM" = 1 ] && APT_PKGS+=(chromium)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# npm fetches visdom's web assets (below); the browser test needs them, so --with-chromium brings it too.
if [ "$WITH_CHROMIUM" = 1 ] && ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "install.sh: not root, so these Debian packages were not installed: ${missing[*]}" >&2
    echo "  install them with: sudo apt-get install ${missing[*]}" >&2
    echo "  (without libturbojpeg0, frames are decoded with OpenCV instead of jpeg4py)" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip
# visdom 0.2.4 is an sdist whose build needs pkg_resources: build it without isolation against setuptools<70.
"$VPY" -m pip install -q "setuptools<70" wheel
"$VPY" -m pip install -q --no-build-isolation "visdom==0.2.4"
"$VPY" -m pip install -q -r requirements.txt

# visdom's JavaScript/CSS/fonts/MathJax from npm, so that `python -m visdom.server` starts offline
# (it downloads them at every start otherwise, and dies without internet). Never fails the install.
if command -v npm >/dev/null 2>&1; then
  "$VPY" tracking/visdom_assets.py || echo "install.sh: WARNING: visdom's web assets were not installed (see above);" \
    "python -m visdom.server will try to download them. Retry: $VPY tracking/visdom_assets.py" >&2
else
  echo "install.sh: WARNING: npm not found, so visdom's web assets were not installed; python -m visdom.server" \
    "needs internet at start. Install npm and run: $VPY tracking/visdom_assets.py" >&2
fi

# The VOT toolkit in its own environment, .venv-vot: it pulls opencv-python, numba and llvmlite, which must not sit
# beside opencv-python-headless in .venv. Our tracker runs in .venv (TraX bindings: vot-trax, in requirements.txt);
# tests/test_vot_toolkit.py runs .venv-vot/bin/vot as a subprocess. Made once; never fails the install.
VOT_PINS=(vot-toolkit==0.7.4 attributee==0.1.9)
if [ -x .venv-vot/bin/vot ]; then
  echo "install.sh: keeping the existing .venv-vot (VOT toolkit)"
elif { [ -x .venv-vot/bin/python ] || "$PY" -m venv .venv-vot; } && .venv-vot/bin/python -m pip install -q "${VOT_PINS[@]}"; then
  echo "install.sh: VOT toolkit installed in .venv-vot (${VOT_PINS[*]})"
else
  rm -rf .venv-vot
  echo "install.sh: WARNING: the VOT toolkit was not installed (PyPI unreachable?); tests/test_vot_toolkit.py skips" \
    "its vot evaluate/analysis test. Retry: bash install.sh" >&2
fi

# Default local.py files (train and test); existing ones are kept as they are.
if [ -f lib/train/admin/local.py ] && [ -f lib/test/evaluation/local.py ]; then
  echo "install.sh: keeping the existing lib/train/admin/local.py and lib/test/evaluation/local.py"
else
  "$VPY" tracking/create_default_local_file.py --workspace_dir . --data_dir ./data --save_dir ./output --keep_existing
fi
echo "install.sh: done. Activate with: source .venv/bin/activate"
