#!/usr/bin/env bash
# Build fastloss with AddressSanitizer + UndefinedBehaviorSanitizer (gcc) in a
# temporary copy of the working tree, and run the test suite under it.
#
#   tools/sanitize.sh                     # the whole suite
#   tools/sanitize.sh tests/errors -x     # any pytest arguments
#
# How a sanitized *extension* runs in a stock CPython:
#   * libasan must be the first library loaded, so it goes in LD_PRELOAD
#     (the extension is linked against it; python itself is not), followed by
#     libstdc++: ASan resolves the real __cxa_throw when it starts, and a C++
#     extension that throws later (matplotlib's ft2font, imported by
#     tests/tools/test_demo.py) otherwise aborts with "CHECK failed: ...
#     real___cxa_throw";
#   * detect_leaks=0: CPython never frees its interned objects, so LeakSanitizer
#     would drown the report (leaks are checked by tests/hardening/test_memory.py
#     and tools/valgrind.sh instead);
#   * PYTHONMALLOC=malloc sends Python's small objects through ASan's malloc
#     too, so an overrun into a neighbouring object is caught;
#   * UBSan is built with -fno-sanitize-recover: undefined behaviour stops the
#     process instead of scrolling past in captured output;
#   * pytest runs with --capture=sys: with its default fd-level capture a
#     sanitizer report (written by C to fd 2) would be swallowed with the
#     test's output, or lost outright when the sanitizer ends the process.
#     The whole output is kept in $work/pytest.log and searched for reports;
#     any report fails the run.
#
# Environment: PYTHON (default: python3; needs numpy, Cython, setuptools,
# pytest, hypothesis), KEEP=1 keeps the temporary directory,
# SANITIZE_FLAGS overrides the -fsanitize list.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/tools/_build_copy.sh"
py=${PYTHON:-python3}
cc=${CC:-gcc}
work=$(mktemp -d "${TMPDIR:-/tmp}/fastloss-sanitize.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "sanitize: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

# 1. A copy of the working tree: tracked and untracked (not ignored) files,
#    never the in-place build outputs of the checkout.
copy_tree "$repo" "$py" "$work"

# 2. The sanitized build. The flags go in CC itself so that they reach every
#    compile (the per-ISA objects included), the shared-library link and
#    setup.py's OpenMP probe, which links and runs a program (with the flags
#    only in CFLAGS that link fails and the build silently goes serial).
#    setup.py's own -O3 comes later on the command line and wins.
#    (The instrumented build vectorises differently from the release build;
#    the bitwise "fused == separate calls" tests hold in it only because
#    setup.py builds with -ffp-contract=off, which this run first exposed.)
flags=${SANITIZE_FLAGS:--fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all}
flags="$flags -fno-omit-frame-pointer -g"
echo "sanitize: building in $work with: $flags"
build_in "$work" "$py" CC="$cc $flags" || exit 1
so=$(ls "$work"/fastloss/_core*.so)
ldd "$so" | grep libasan >/dev/null || { echo "sanitize: $so is not linked against libasan" >&2; exit 1; }

libasan=$("$cc" -print-file-name=libasan.so)
[ -f "$libasan" ] || { echo "sanitize: libasan not found ($libasan)" >&2; exit 1; }
libstdcxx=$("$cc" -print-file-name=libstdc++.so)
[ -f "$libstdcxx" ] || libstdcxx=

# 3. The tests, against the sanitized copy (python -m pytest puts $work first on sys.path).
start=$(date +%s)
set +e
(
    cd "$work"
    export LD_PRELOAD="$libasan${libstdcxx:+ $libstdcxx}"
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:alloc_dealloc_mismatch=0:strict_string_checks=1:check_initialization_order=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export PYTHONMALLOC=malloc
    export PYTHONPATH="$work"
    export PYTHONDONTWRITEBYTECODE=1
    unset FASTLOSS_WHEEL_TEST  # (tests/tools/test_wheel.py builds and installs a wheel: not here)
    if [ $# -eq 0 ]; then set -- tests -q; fi
    "$py" -m pytest -p no:cacheprovider --capture=sys "$@"
) 2>&1 | tee "$work/pytest.log"
rc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))

pattern='runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer'
reports=$(grep -cE "$pattern" "$work/pytest.log" || true)
if [ "$reports" != 0 ]; then
    echo "===== sanitizer reports:"
    grep -E -A3 "$pattern" "$work/pytest.log" | head -60
    echo "sanitize: FAILED: $reports sanitizer report line(s), pytest exit $rc, ${elapsed}s"
    exit 1
fi
if [ $rc -ne 0 ]; then
    echo "sanitize: FAILED: pytest exit $rc (no sanitizer report), ${elapsed}s"
    exit $rc
fi
echo "sanitize: clean: ASan + UBSan ($flags), 0 reports, pytest passed in ${elapsed}s"
