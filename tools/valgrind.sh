#!/usr/bin/env bash
# Run a selection of the test suite under valgrind memcheck, against a build
# of fastloss (with -g) in a temporary copy of the working tree.
#
#   tools/valgrind.sh                  # the default selection (below)
#   tools/valgrind.sh tests/errors/test_errors.py -k out   # any pytest arguments
#
# PYTHONMALLOC=malloc sends every Python allocation through malloc, so that
# memcheck sees object boundaries (pymalloc's arenas would hide them).
# Memcheck slows Python down some 30-50x, hence a selection: one test module
# per kernel path family, with inputs small enough to finish in minutes.
#
# Fails (exit 1) on any memcheck error (invalid read/write, use of an
# uninitialised value, bad free) and any "definitely lost" block whose stack
# passes through fastloss (the C kernels or the _core binding), and when a
# test fails. Records entirely inside CPython or libc are counted in the
# summary but are not fatal (see below).
#
# Environment: PYTHON (default python3; needs numpy, Cython, setuptools,
# pytest, hypothesis), KEEP=1 keeps the temporary directory.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/tools/_build_copy.sh"
py=${PYTHON:-python3}
# The interpreter itself, not a wrapper script (pyenv shims, for one, are bash
# scripts: memcheck would check bash).
py=$("$py" -c 'import sys; print(sys.executable)')
command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/fastloss-valgrind.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "valgrind: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

# A copy of the working tree (tracked and untracked, not ignored, files).
copy_tree "$repo" "$py" "$work"

echo "valgrind: building in $work (-g)"
build_in "$work" "$py" CFLAGS=-g || exit 1

if [ $# -eq 0 ]; then
    # Every kernel path: CE short rows (c <= 16), long rows, split rows
    # (c >= 32768), the elementwise losses, the OpenMP block driver, every
    # error path (tests/errors: the public API's and the binding's own), the
    # numerical edge cases, and the families with tests of their own (NLL,
    # rows, pairwise, embedding). The biggest shapes are left out for time
    # (the block driver and split path are still reached).
    set -- tests/values/test_losses.py tests/errors tests/values/test_edges.py \
        tests/values/test_cross_entropy.py tests/values/test_nll_loss.py \
        tests/values/test_multilabel_soft_margin.py tests/values/test_multi_margin.py \
        tests/values/test_margin_ranking_loss.py tests/values/test_gaussian_nll_loss.py \
        tests/values/test_cosine_embedding_loss.py tests/values/test_triplet_margin_loss.py \
        -q -x \
        -k "not 256x1000 and not 1000003 and not 4x131072"
fi

start=$(date +%s)
set +e
(
    cd "$work"
    export PYTHONMALLOC=malloc PYTHONPATH="$work" PYTHONDONTWRITEBYTECODE=1
    unset FASTLOSS_WHEEL_TEST
    # --vex-guest-max-insns=25: the AVX2 short-row tile (masked loads and 8x8
    # transposes, unrolled per C) made a superblock of the default 60 guest
    # instructions exhaust VEX's temporary storage ("the impossible happened").
    valgrind --tool=memcheck --vex-guest-max-insns=25 \
        --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=none \
        --num-callers=40 --log-file="$work/memcheck.log" \
        "$py" -m pytest -p no:cacheprovider -p no:faulthandler "$@"
) > "$work/pytest.log" 2>&1
rc=$?
grep -E "^(FAILED|ERROR) " "$work/pytest.log" | head -20 || true
tail -1 "$work/pytest.log"
set -e
elapsed=$(( $(date +%s) - start ))

log="$work/memcheck.log"
# Memcheck also flags CPython and glibc themselves (the small-int cache and
# the eval loop of an optimised interpreter, SSE/AVX string compares: known
# false positives). What counts is every error record, and every "definitely
# lost" record, with a frame in fastloss's own code: the binding or a source
# file under src/.
summary=$("$py" - "$log" "$work/src" <<'EOF'
import os, re, sys
log, src = sys.argv[1], sys.argv[2]
ours = ["_core.c", "_core.pyx"] + sorted(os.listdir(src))
frame = re.compile(r"\((?:%s):\d+\)|_core\.cpython" % "|".join(re.escape(f) for f in ours))
records = [r for r in re.split(r"\n==\d+== \n", open(log).read()) if re.search(r"(at|by) 0x", r)]
errors = [r for r in records if "blocks are" not in r]
leaks = [r for r in records if "definitely lost in loss record" in r]
bad = [r for r in errors + leaks if frame.search(r)]
print(len(bad), len(errors) - len([r for r in errors if frame.search(r)]),
      len(leaks) - len([r for r in leaks if frame.search(r)]))
for r in bad[:5]:
    print(r, file=sys.stderr)
EOF
)
read -r ours others leaks <<< "$summary"
echo "----- memcheck summary ($log)"
grep -E "ERROR SUMMARY|definitely lost:|indirectly lost:|possibly lost:|still reachable:" "$log" |
    sed 's/^==[0-9]*== */  /' || true
echo "  records with a fastloss frame: $ours; error records elsewhere (CPython, libc): $others;" \
     "definitely-lost records elsewhere: $leaks"
if [ "$ours" != 0 ]; then
    echo "valgrind: FAILED: $ours memcheck record(s) in fastloss code, pytest exit $rc, ${elapsed}s"
    exit 1
fi
if [ "$rc" != 0 ]; then
    echo "valgrind: FAILED: pytest exit $rc, ${elapsed}s"
    exit 1
fi
echo "valgrind: clean: 0 memcheck errors and 0 definitely-lost blocks in fastloss code, tests passed, ${elapsed}s"
