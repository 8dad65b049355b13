# Sourced by tools/sanitize.sh and tools/valgrind.sh: build fastloss in a
# temporary copy of the working tree, never touching the checkout's own
# in-place build outputs.

# copy_tree REPO PY DEST: the tracked and untracked (not ignored) files of REPO.
copy_tree() {
    local repo=$1 py=$2 dest=$3
    (cd "$repo" && git ls-files -z -co --exclude-standard) |
        (cd "$repo" && "$py" -c '
import os, shutil, sys
dest = sys.argv[1]
for f in sys.stdin.buffer.read().split(b"\0"):
    f = f.decode()
    if f and os.path.isfile(f):
        os.makedirs(os.path.join(dest, os.path.dirname(f)), exist_ok=True)
        shutil.copy2(f, os.path.join(dest, f))
' "$dest")
}

# build_in DIR PY [VAR=value ...]: build_ext --inplace in DIR with OpenMP
# required and the given environment; DIR/build.log keeps the output, whose
# tail is shown on failure.
build_in() {
    local dir=$1 py=$2
    shift 2
    (cd "$dir" && env "$@" FASTLOSS_REQUIRE_OPENMP=1 "$py" setup.py -q build_ext --inplace \
        > "$dir/build.log" 2>&1) || { tail -40 "$dir/build.log"; return 1; }
}
