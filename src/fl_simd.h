/*
 * fl_simd.h -- portability and vectorisation macros, and the per-ISA naming.
 *
 * Every kernel file is compiled once per instruction set (baseline, avx2+fma,
 * avx512) with -DFL_ISA=<name>; FL_FN(name) gives each copy its suffix, so
 * the copies link side by side and runtime.c picks one table of them.
 *
 * The hot loops are plain C under `#pragma omp simd` (FL_SIMD...): the build
 * passes -fopenmp (or -fopenmp-simd in a serial build), and the pragmas turn
 * into nothing for a compiler that has neither.
 */
#ifndef FL_SIMD_H
#define FL_SIMD_H

#if defined(_MSC_VER)
#define FL_RESTRICT __restrict
#define FL_INLINE static __forceinline
#else
#define FL_RESTRICT __restrict__
#define FL_INLINE static inline __attribute__((always_inline))
#endif

#if defined(_OPENMP) || defined(FL_OPENMP_SIMD)
#define FL_PRAGMA(x) _Pragma(#x)
#define FL_SIMD FL_PRAGMA(omp simd)
#define FL_SIMD_SUM(v) FL_PRAGMA(omp simd reduction(+:v))
#define FL_SIMD_MAX(v) FL_PRAGMA(omp simd reduction(max:v))
#define FL_SIMD_SUM2(a, b) FL_PRAGMA(omp simd reduction(+:a, b))
#define FL_SIMD_SUM3(a, b, c) FL_PRAGMA(omp simd reduction(+:a, b, c))
#else
#define FL_SIMD
#define FL_SIMD_SUM(v)
#define FL_SIMD_MAX(v)
#define FL_SIMD_SUM2(a, b)
#define FL_SIMD_SUM3(a, b, c)
#endif

#ifndef FL_ISA
#define FL_ISA baseline
#endif
#define FL_CAT_(a, b) a##_##b
#define FL_CAT(a, b) FL_CAT_(a, b)
#define FL_CAT3(a, b, c) FL_CAT(FL_CAT(a, b), c)

/* FL_FN(fl_ce_rows_block) -> fl_ce_rows_block_avx2 in the avx2 copy, and so on. */
#define FL_FN(name) FL_CAT(name, FL_ISA)

#endif /* FL_SIMD_H */
