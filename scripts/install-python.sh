#!/usr/bin/env bash
# Makes `import pcmsim` work from any directory for Debian's Python: writes a pcmsim.pth file
# into its site directory listing <build>/python (the compiled _pcmsim) and <source>/python (the
# pure-Python package). pcmsim/__init__.py joins the two `pcmsim` folders into one package, so
# edits to the .py files take effect without a rebuild.
#   scripts/install-python.sh [BUILD_DIR=build] [PYTHON=/usr/bin/python3]
# PCMSIM_SITE_DIR overrides the target folder (tests). When the folder is not writable, prints
# what to do instead and exits 0 (the build is still usable through PYTHONPATH).
set -uo pipefail
src_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$(realpath -m "${1:-build}")"
python="${2:-/usr/bin/python3}"

if ! ls "$build_dir"/python/pcmsim/_pcmsim*.so >/dev/null 2>&1; then
  echo "install-python: no compiled module in $build_dir/python/pcmsim (build first); skipped"
  exit 0
fi
site_dir="${PCMSIM_SITE_DIR:-}"
if [[ -z "$site_dir" ]]; then
  # The first site directory Debian's Python reads (/usr/local/lib/python3.X/dist-packages).
  site_dir="$("$python" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)" || site_dir=""
fi
if [[ -z "$site_dir" ]]; then
  echo "install-python: cannot ask $python for its site directory; skipped"
  exit 0
fi
pth="$site_dir/pcmsim.pth"
content="$build_dir/python
$src_dir/python"
if mkdir -p "$site_dir" 2>/dev/null && [[ -w "$site_dir" ]] \
    && printf '%s\n' "$content" > "$pth.tmp.$$" 2>/dev/null && mv "$pth.tmp.$$" "$pth"; then
  echo "install-python: $pth -> $build_dir/python, $src_dir/python"
else
  rm -f "$pth.tmp.$$" 2>/dev/null
  echo "install-python: cannot write $pth (not writable). To use pcmsim from Python, either"
  echo "  sudo sh -c 'printf \"%s\\n\" \"$build_dir/python\" \"$src_dir/python\" > $pth'"
  echo "or"
  echo "  export PYTHONPATH=\"$build_dir/python:$src_dir/python\${PYTHONPATH:+:\$PYTHONPATH}\""
fi
exit 0
