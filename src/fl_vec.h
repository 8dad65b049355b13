/*
 * fl_vec.h -- explicit SIMD for the hottest loops, one implementation per ISA.
 *
 * Where GCC's vectoriser leaves speed behind (a max reduction on one latency
 * chain, a clamp compiled to compare + blend, constants spilled from
 * registers, no unrolling), a loop is written once with these operations and
 * compiled per instruction set: FL_VEC is 1 in the avx2 (8 lanes) and
 * avx512 (16 lanes) copies, 0 in the baseline copy, which keeps the plain-C
 * loops (vectorised by GCC for SSE2, or NEON elsewhere).
 *
 * fl_vexp_nonpos is fl_exp_nonpos (fl_math.h) operation for operation, so a
 * vector lane gives the very bits the scalar function gives.
 */
#ifndef FL_VEC_H
#define FL_VEC_H

#include "fl_math.h"

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define FL_VEC 1
#define FL_VLEN 16
typedef __m512 fl_vf;
typedef __m512d fl_vd;      /* FL_VLEN / 2 doubles */
#define fl_vload(p) _mm512_loadu_ps(p)
#define fl_vstore(p, v) _mm512_storeu_ps((p), (v))
#define fl_vstream(p, v) _mm512_stream_ps((p), (v))     /* p aligned to FL_VLEN floats */
#define fl_vset1(a) _mm512_set1_ps(a)
#define fl_vzero() _mm512_setzero_ps()
#define fl_vadd(a, b) _mm512_add_ps((a), (b))
#define fl_vsub(a, b) _mm512_sub_ps((a), (b))
#define fl_vmul(a, b) _mm512_mul_ps((a), (b))
#define fl_vfma(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define fl_vmax(a, b) _mm512_max_ps((a), (b))   /* (a > b) ? a : b: b when either is NaN */
#define fl_vshl23(t) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t), 23))
#define fl_vdzero() _mm512_setzero_pd()
#define fl_vdadd(a, b) _mm512_add_pd((a), (b))
#define fl_vd_lo(v) _mm512_cvtps_pd(_mm512_castps512_ps256(v))
#define fl_vd_hi(v) _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))
FL_INLINE void fl_vd_store(double *p, fl_vd v) { _mm512_storeu_pd(p, v); }
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define FL_VEC 1
#define FL_VLEN 8
typedef __m256 fl_vf;
typedef __m256d fl_vd;
#define fl_vload(p) _mm256_loadu_ps(p)
#define fl_vstore(p, v) _mm256_storeu_ps((p), (v))
#define fl_vstream(p, v) _mm256_stream_ps((p), (v))     /* p aligned to FL_VLEN floats */
#define fl_vset1(a) _mm256_set1_ps(a)
#define fl_vzero() _mm256_setzero_ps()
#define fl_vadd(a, b) _mm256_add_ps((a), (b))
#define fl_vsub(a, b) _mm256_sub_ps((a), (b))
#define fl_vmul(a, b) _mm256_mul_ps((a), (b))
#define fl_vfma(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define fl_vmax(a, b) _mm256_max_ps((a), (b))   /* (a > b) ? a : b: b when either is NaN */
#define fl_vshl23(t) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23))
#define fl_vdzero() _mm256_setzero_pd()
#define fl_vdadd(a, b) _mm256_add_pd((a), (b))
#define fl_vd_lo(v) _mm256_cvtps_pd(_mm256_castps256_ps128(v))
#define fl_vd_hi(v) _mm256_cvtps_pd(_mm256_extractf128_ps((v), 1))
FL_INLINE void fl_vd_store(double *p, fl_vd v) { _mm256_storeu_pd(p, v); }
#else
#define FL_VEC 0
#endif

#if FL_VEC

/* Orders this thread's streaming stores before whatever follows (the end of
 * a block: another thread may read the gradient next). */
FL_INLINE void fl_vstream_fence(void) { _mm_sfence(); }

/* The lanes of v in order, as the scalar code would see them. */
FL_INLINE void fl_vspill(float *out, fl_vf v) { fl_vstore(out, v); }

/* max over the lanes (NaN-free lanes, as the running maxima below are). */
FL_INLINE float fl_vhmax(fl_vf v)
{
    float lanes[FL_VLEN];
    fl_vspill(lanes, v);
    float m = lanes[0];
    for (int k = 1; k < FL_VLEN; k++)
        m = lanes[k] > m ? lanes[k] : m;
    return m;
}

/* The sum of the double lanes of a and b, in a fixed order. */
FL_INLINE double fl_vdhsum2(fl_vd a, fl_vd b)
{
    double la[FL_VLEN / 2], lb[FL_VLEN / 2];
    fl_vd_store(la, a);
    fl_vd_store(lb, b);
    double s = 0.0;
    for (int k = 0; k < FL_VLEN / 2; k++)
        s += la[k] + lb[k];
    return s;
}

/* fl_exp_nonpos on every lane (see fl_math.h for the method and its bounds). */
FL_INLINE fl_vf fl_vexp_nonpos(fl_vf x)
{
    const fl_vf magic = fl_vset1(12582912.0f + 127.0f);
    x = fl_vmax(fl_vset1(-88.0f), x);                 /* NaN passes through */
    const fl_vf t = fl_vfma(x, fl_vset1(1.44269504088896341f), magic);
    const fl_vf nf = fl_vsub(t, magic);
    fl_vf r = fl_vfma(nf, fl_vset1(-0.693359375f), x);
    r = fl_vfma(nf, fl_vset1(2.12194440e-4f), r);
    const fl_vf scale = fl_vshl23(t);
    fl_vf p = fl_vset1(1.3879685430e-3f);
    p = fl_vfma(p, r, fl_vset1(8.3686942235e-3f));
    p = fl_vfma(p, r, fl_vset1(4.1667226702e-2f));
    p = fl_vfma(p, r, fl_vset1(1.6666521132e-1f));
    p = fl_vfma(p, r, fl_vset1(4.9999997020e-1f));
    p = fl_vfma(p, fl_vmul(r, r), r);
    return fl_vfma(p, scale, scale);
}

#endif /* FL_VEC */

#endif /* FL_VEC_H */
