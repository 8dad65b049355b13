"""Build of fastloss's C extension.

What happens here:

* OpenMP is probed once: a tiny program is compiled, linked and run with the
  candidate flag. Without OpenMP the package builds serial (with a loud
  warning), unless FASTLOSS_REQUIRE_OPENMP=1, in which case the build fails.
* The loss-family sources (src/cross_entropy.c, bce.c, regression.c) and math_eval.c are compiled once
  per instruction set: "baseline" with the compiler's default target, and on
  x86-64 also "avx2" (-mavx2 -mfma) and "avx512" when the compiler takes the
  flags. runtime.c picks one at import from what the CPU supports.
* Never -ffast-math: it breaks NaN/Inf semantics and can flip the FPU into
  flush-to-zero for the whole process. -ffp-contract=off: GCC's default may
  fuse a * b + c differently in two specialisations of the same loop, and the
  fused and separate calls must agree bitwise; the FMAs the math wants are
  written out (FL_FMA in src/fl_internal.h). -fno-math-errno and -fno-trapping-math
  change no IEEE result and let GCC vectorise the polynomial exp and blends.
* The flags and the compiler used are written to fastloss/_build_info.json for
  fastloss.show_config().
"""

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

# Compiled once per instruction set (the loss families and the math test hook).
ISA_SOURCES = ["src/cross_entropy.c", "src/bce.c", "src/regression.c", "src/math_eval.c"]
HEADERS = ["src/fastloss.h", "src/fl_internal.h"]
BASE_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-strict-aliasing",
              "-ffp-contract=off"]
# name -> extra flags; baseline has none. Only on x86-64.
X86_ISAS = [
    ("avx2", ["-mavx2", "-mfma"]),
    ("avx512", ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma",
                "-mprefer-vector-width=512"]),
]

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


class BuildExt(build_ext):
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
            cflags = base + omp_flags
            ext.extra_compile_args = cflags
            ext.extra_link_args = list(omp_flags)
            ext.define_macros += [(f"FL_HAVE_{name.upper()}", "1") for name, _ in isas[1:]]
            for name, flags in isas:
                macros = [("FL_ISA", name)] + ([("FL_BUILD_ENTRY", "1")] if name == "baseline" else [])
                objs = compiler.compile(
                    ISA_SOURCES,
                    output_dir=os.path.join(self.build_temp, "isa_" + name),
                    macros=macros,
                    include_dirs=["src"],
                    extra_postargs=cflags + flags,
                    depends=HEADERS,
                    debug=self.debug,
                )
                ext.extra_objects = list(ext.extra_objects or []) + objs

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
        super().build_extensions()

    def copy_extensions_to_source(self):
        # --inplace / editable builds: the build info goes beside the extension.
        super().copy_extensions_to_source()
        src = os.path.join(self.build_lib, "fastloss", "_build_info.json")
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join("fastloss", "_build_info.json"))


extensions = [
    Extension(
        "fastloss._core",
        sources=["fastloss/_core.pyx", "src/runtime.c"],
        include_dirs=["src", np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=HEADERS + ISA_SOURCES,
    )
]

setup(
    ext_modules=cythonize(extensions, language_level=3,
                          compiler_directives={"boundscheck": False, "wraparound": False}),
    cmdclass={"build_ext": BuildExt},
    package_data={"fastloss": ["_build_info.json", "*.pyx", "*.pxd"]},
)
