"""Build of fastloss's C extension.

What happens here:

* OpenMP is probed once: a tiny program is compiled, linked and run with the
  candidate flag. Without OpenMP the package builds serial (with a loud
  warning), unless FASTLOSS_REQUIRE_OPENMP=1, in which case the build fails.
* tools/codegen.py first rewrites what is generated from the loss
  declarations (fastloss/_spec/) when a declaration changed.
* The hot loops (ISA_SOURCES: the cross-entropy strategies, the generated
  elementwise kernels, math_eval.c) are compiled once per instruction set:
  "baseline" with the compiler's default target, and on x86-64 also "avx2"
  (-mavx2 -mfma) and "avx512" when the compiler takes the flags. runtime.c
  picks one at import from what the CPU supports.
* Every translation unit is compiled by BuildExt itself, in parallel, and
  only when its source, a header it includes (gcc -MMD) or the flags changed
  since the last build in build/ (`python setup.py build_ext --inplace`
  after `pip install -e .` rebuilds just that).
* Never -ffast-math: it breaks NaN/Inf semantics and can flip the FPU into
  flush-to-zero for the whole process. -ffp-contract=off: GCC's default may
  fuse a * b + c differently in two specialisations of the same loop, and the
  fused and separate calls must agree bitwise; the FMAs the math wants are
  written out (FL_FMA in src/fl_math.h). -fno-math-errno and -fno-trapping-math
  change no IEEE result and let GCC vectorise the polynomial exp and blends.
* The flags and the compiler used are written to fastloss/_build_info.json for
  fastloss.show_config().
"""

import concurrent.futures
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import codegen  # noqa: E402  (tools/codegen.py: the files generated from fastloss/_spec/)

sys.path.pop(0)

# Compiled once per instruction set: the hot loops.
ISA_SOURCES = [
    "src/cross_entropy/rows.c", "src/cross_entropy/tiles.c", "src/cross_entropy/kdim.c",
    "src/cross_entropy/soft.c", "src/cross_entropy/split.c",
    "src/generated/elementwise_kernels.c", "src/math_eval.c",
    "src/rows/rows.c", "src/pairwise/pairwise.c", "src/embedding/embedding.c",
]
# Compiled once, with the baseline flags: entry points, threads, dispatch.
ONCE_SOURCES = ["src/runtime.c", "src/cross_entropy/entry.c", "src/elementwise/driver.c",
                "src/nll/nll.c"]
BASE_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-strict-aliasing",
              "-ffp-contract=off"]
# name -> extra flags; baseline has none. Only on x86-64.
X86_ISAS = [
    ("avx2", ["-mavx2", "-mfma"]),
    ("avx512", ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma",
                "-mprefer-vector-width=512"]),
]


def _headers():
    found = []
    for folder, _, files in os.walk(os.path.join(ROOT, "src")):
        found += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files
                  if f.endswith(".h") or f == "template.c"]
    return sorted(found)


OMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d\\n", n);
        return n > 0 ? 0 : 1;
    }
    """
)


def _is_x86_64():
    return platform.machine().lower() in ("x86_64", "amd64")


def _try_compile(compiler, code, flags, link=False, run=False):
    """Compile (and optionally link and run) `code` with `flags`; True on success."""
    tmp = tempfile.mkdtemp(prefix="fastloss-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
        if link:
            exe = os.path.join(tmp, "probe")
            compiler.link_executable(objs, exe, extra_postargs=flags)
            if run:
                subprocess.run([exe], check=True, capture_output=True, timeout=60)
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _up_to_date(obj, src):
    """True when `obj` is newer than `src` and every header its dependency
    file (gcc -MMD) lists."""
    dep = obj + ".d"
    if not (os.path.exists(obj) and os.path.exists(dep)):
        return False
    mtime = os.path.getmtime(obj)
    with open(dep) as f:
        text = f.read().replace("\\\n", " ")
    paths = text.split(":", 1)[1].split() if ":" in text else [src]
    try:
        return all(os.path.getmtime(p) <= mtime for p in paths + [src])
    except OSError:
        return False


def _jobs():
    env = os.environ.get("FASTLOSS_BUILD_JOBS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class BuildExt(build_ext):
    """Compiles every translation unit itself: in parallel (one job per CPU,
    or FASTLOSS_BUILD_JOBS), and only those whose source, headers or flags
    changed since the last build (gcc's -MMD dependency files), then links."""

    def _compile_units(self, units, unix):
        """units: (source, output folder, macros, flags). Returns the objects."""
        compiler = self.compiler

        def one(unit):
            src, out_dir, macros, flags = unit
            obj = compiler.object_filenames([src], output_dir=out_dir)[0]
            if unix and not self.force and _up_to_date(obj, src):
                return obj, False
            deps = ["-MMD", "-MF", obj + ".d"] if unix else []
            compiler.compile([src], output_dir=out_dir, macros=macros,
                             include_dirs=["src", np.get_include(), sysconfig_include()],
                             extra_postargs=flags + deps, debug=self.debug)
            return obj, True

        with concurrent.futures.ThreadPoolExecutor(_jobs()) as pool:
            results = list(pool.map(one, units))
        built = sum(1 for _, fresh in results if fresh)
        print(f"fastloss: compiled {built} of {len(units)} translation units "
              f"({_jobs()} jobs; the others were up to date)")
        return [obj for obj, _ in results]

    def build_extensions(self):
        compiler = self.compiler
        unix = compiler.compiler_type == "unix"
        base = list(BASE_FLAGS) if unix else ["/O2"]

        omp_flags = []
        for cand in (["-fopenmp"], ["-Xpreprocessor", "-fopenmp"], ["/openmp"]):
            if _try_compile(compiler, OMP_TEST, cand, link=True, run=True):
                omp_flags = cand
                break
        if not omp_flags:
            if os.environ.get("FASTLOSS_REQUIRE_OPENMP") == "1":
                raise RuntimeError(
                    "FASTLOSS_REQUIRE_OPENMP=1 but the compiler could not build and run an "
                    "OpenMP program; install an OpenMP runtime (e.g. libgomp) or unset it"
                )
            bar = "*" * 78
            print(f"\n{bar}\nWARNING: no working OpenMP; fastloss will run on ONE thread.\n{bar}\n",
                  file=sys.stderr)
            simd = ["-fopenmp-simd"]
            if unix and _try_compile(compiler, "int main(void){return 0;}", simd):
                base += simd + ["-DFL_OPENMP_SIMD"]

        isas = [("baseline", [])]
        if unix and _is_x86_64():
            for name, flags in X86_ISAS:
                test = "#include <immintrin.h>\nint main(void){return 0;}\n"
                if _try_compile(compiler, test, flags):
                    isas.append((name, flags))

        for ext in self.extensions:
            cflags = base + omp_flags + list(ext.extra_compile_args or [])
            have = [(f"FL_HAVE_{name.upper()}", "1") for name, _ in isas[1:]]
            # Objects live in a folder per set of flags, so a change of compiler
            # or flags never reuses an object built with others.
            tag = hashlib.sha256(json.dumps(
                [getattr(compiler, "compiler_so", ""), cflags, isas, self.debug]).encode()
            ).hexdigest()[:10]
            root = os.path.join(self.build_temp, f"fastloss-{tag}")
            units = []
            for name, flags in isas:
                macros = [("FL_ISA", name)] + have
                if name == "baseline":
                    macros.append(("FL_BUILD_ENTRY", "1"))
                units += [(src, os.path.join(root, "isa_" + name), macros, cflags + flags)
                          for src in ISA_SOURCES]
            once_macros = have + [("FL_BUILD_ENTRY", "1")] + list(ext.define_macros)
            units += [(src, os.path.join(root, "once"), once_macros, cflags)
                      for src in ONCE_SOURCES + list(ext.sources)]
            ext.extra_objects = self._compile_units(units, unix)
            ext.sources = []
            ext.extra_link_args = list(omp_flags)

            info = {
                "compiler": " ".join(getattr(compiler, "compiler_so", [compiler.compiler_type])),
                "compile_flags": cflags,
                "openmp_flags": omp_flags,
                "isas": {name: flags for name, flags in isas},
                "python": sys.version.split()[0],
                "numpy_build": np.__version__,
            }
            out_dir = os.path.dirname(self.get_ext_fullpath(ext.name))
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, "_build_info.json"), "w") as f:
                json.dump(info, f, indent=1)
        self.force = True   # always link: the objects above decide what was rebuilt
        super().build_extensions()

    def copy_extensions_to_source(self):
        # --inplace / editable builds: the build info goes beside the extension.
        super().copy_extensions_to_source()
        src = os.path.join(self.build_lib, "fastloss", "_build_info.json")
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join("fastloss", "_build_info.json"))


def sysconfig_include():
    import sysconfig

    return sysconfig.get_paths()["include"]


codegen.write_all(ROOT)

extensions = [
    Extension(
        "fastloss._core",
        sources=["fastloss/_core.pyx"],
        include_dirs=["src", np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=_headers() + ISA_SOURCES + ONCE_SOURCES,
    )
]

setup(
    ext_modules=cythonize(extensions, language_level=3,
                          compiler_directives={"boundscheck": False, "wraparound": False}),
    cmdclass={"build_ext": BuildExt},
    package_data={"fastloss": ["_build_info.json", "*.pyx", "*.pxd", "*.pxi", "py.typed"]},
)
