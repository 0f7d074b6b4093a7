#!/usr/bin/env bash
# Installs the Debian packages a batchlab job needs, when they are missing.
#   start: the data set and Jupyter (npm start serves the notebooks)
#   test:  the above, nbclient/nbconvert and Chromium for the integration and browser tests,
#          jupyter-console and tmux (a real terminal client), Jupyter's kernel conformance suite,
#          torchvision (the semantic reference) and real photos (a wallpaper package)
#   bench: the data set and PyTorch/torchvision (the peer the benchmarks compare against)
set -euo pipefail
mode="${1:-start}"
# libjpeg62-turbo-dev: the headers the native addon's JPEG decoder builds against (native/decode.cc).
pkgs=(dataset-fashion-mnist libjpeg62-turbo-dev)
case "$mode" in
  start) pkgs+=(jupyter-notebook jupyter-server jupyter-client python3-ipykernel) ;;
  test) pkgs+=(jupyter-notebook jupyter-server jupyter-client jupyter-nbconvert python3-nbclient python3-ipykernel chromium
    jupyter-console tmux python3-jupyter-kernel-test python3-torchvision plasma-workspace-wallpapers) ;;
  bench) pkgs+=(python3-torch python3-torchvision plasma-workspace-wallpapers) ;;
  *) echo "setup-system.sh: unknown mode '$mode' (expected start, test or bench)" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "batchlab: please install these Debian/Ubuntu packages: ${missing[*]}" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "batchlab: run as root or install: apt-get install ${missing[*]}" >&2; exit 1
  fi
fi
echo "batchlab: installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  $sudo apt-get update -qq
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# `npm install` builds the addon before `npm start` / `npm test` run this script: when the JPEG
# headers arrive only now, build it again so that it decodes JPEGs natively.
if [[ " ${missing[*]} " == *" libjpeg62-turbo-dev "* ]] && [ -d "$(dirname "$0")/../build" ]; then
  echo "batchlab: rebuilding the native addon with libjpeg-turbo" >&2
  node "$(dirname "$0")/build-native.js"
fi
