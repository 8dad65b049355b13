/*
 * fl_math.h -- the kernels' own exp, log1p and log, inline and branch-free.
 *
 * libm's expf/log1pf would be scalar calls in the hot loops (glibc's vector
 * math is only reached under -ffast-math, which fastloss never uses), so the
 * loops call these instead. Each is within 2 ulp of the exact result on its
 * domain on every ISA path; tests/test_math.py sweeps them against double.
 * The ternaries become blends, so loops calling them vectorise (GCC needs
 * -fno-trapping-math for that, which changes no IEEE result).
 */
#ifndef FL_MATH_H
#define FL_MATH_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#include "fl_simd.h"

/* The build uses -ffp-contract=off, so a * b + c is never fused behind our
 * back: the same expression gives the same bits in every specialised loop
 * (fused and separate calls agree bitwise). Where a fused multiply-add is
 * wanted -- in the polynomials below -- it is written out, and used only when
 * the instruction set has one (a libm fmaf call would be slow and scalar). */
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define FL_FMA(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define FL_FMA(a, b, c) ((a) * (b) + (c))
#endif

FL_INLINE float fl_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
FL_INLINE uint32_t fl_bits_from_f32(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/*
 * exp(x) for x <= 0, within 2 ulp of the exact result, branch-free.
 *
 * Range reduction x = n ln2 + r with n = round(x / ln2), |r| <= ln2/2; the
 * rounding uses the "magic bias" trick: adding 1.5*2^23 + 127 to x/ln2 leaves
 * n + 127 in the low mantissa bits, and shifting those bits left by 23 builds
 * 2^n directly (no float-to-int conversion, so no undefined behaviour for NaN).
 * ln2 is split in two (Cody-Waite) so r is exact to float precision.
 * exp(r) = 1 + r + r^2 P(r), with P of degree 4 fitted to (exp(r) - 1 - r) / r^2
 * on |r| <= ln2/2, minimising the relative error of exp (iteratively
 * reweighted least squares on 6000 Chebyshev points, then rounded to float;
 * 3.7e-9 before rounding, 1.03 ulp max after). It replaces the degree-5
 * polynomial of Cephes' expf (S. L. Moshier, 1989): one FMA fewer per exp.
 *
 * Underflow: x is first clamped to -88 (NaN passes a clamp written as a
 * comparison). There n = -127, so the exponent field n + 127 is 0 and 2^n
 * is built as +0: every x below about -87.34 (where exp would be subnormal),
 * -inf included, gives exactly 0. NaN propagates through r and p: NaN * 2^n
 * is NaN whatever the bits of 2^n are.
 */
FL_INLINE float fl_exp_core(float x)
{
    const float magic = 12582912.0f + 127.0f;   /* 0x1.8p23 + exponent bias */
    const float t = FL_FMA(x, 1.44269504088896341f, magic);
    const float nf = t - magic;                 /* round(x / ln2), exact */
    float r = FL_FMA(nf, -0.693359375f, x);     /* ln2 high part: exact product */
    r = FL_FMA(nf, 2.12194440e-4f, r);          /* ln2 low part */
    const float scale = fl_f32_from_bits(fl_bits_from_f32(t) << 23);  /* 2^n, or +0 */
    float p = 1.3879685430e-3f;
    p = FL_FMA(p, r, 8.3686942235e-3f);
    p = FL_FMA(p, r, 4.1667226702e-2f);
    p = FL_FMA(p, r, 1.6666521132e-1f);
    p = FL_FMA(p, r, 4.9999997020e-1f);
    p = FL_FMA(p, r * r, r);            /* exp(r) - 1 */
    return FL_FMA(p, scale, scale);     /* 2^n exp(r): one rounding */
}

/* The clamp is written max(-88, x) in the operand order of the SIMD max
 * instructions (they return the second operand when either is NaN), so that
 * it compiles to one of them and NaN passes. */
FL_INLINE float fl_exp_nonpos(float x)
{
    return fl_exp_core(-88.0f > x ? -88.0f : x);
}

/* exp(x) for any x: as fl_exp_nonpos below 0; above, within 2 ulp up to
 * x = 88.3, +inf from 88.4 on (2^128 is built as the bits of +inf; the exact
 * overflow threshold is 88.72). NaN passes through. */
FL_INLINE float fl_exp_any(float x)
{
    x = 89.0f < x ? 89.0f : x;
    return fl_exp_core(-88.0f > x ? -88.0f : x);
}

/*
 * log(1 + f) + k ln2 for f in [sqrt(1/2) - 1, sqrt(2) - 1] and k a small
 * integer (as float): log(1 + f) = f - f^2/2 + f^3 Q(f), with Q the degree-8
 * minimax polynomial of Cephes' logf (Moshier 1989); k ln2 is added in two
 * parts (Cody-Waite). The core of fl_log_pos.
 */
FL_INLINE float fl_log_reduced(float f, float k)
{
    const float z = f * f;
    float q = 7.0376836292e-2f;
    q = FL_FMA(q, f, -1.1514610310e-1f);
    q = FL_FMA(q, f, 1.1676998740e-1f);
    q = FL_FMA(q, f, -1.2420140846e-1f);
    q = FL_FMA(q, f, 1.4249322787e-1f);
    q = FL_FMA(q, f, -1.6668057665e-1f);
    q = FL_FMA(q, f, 2.0000714765e-1f);
    q = FL_FMA(q, f, -2.4999993993e-1f);
    q = FL_FMA(q, f, 3.3333331174e-1f);
    float y = q * f * z;
    y = FL_FMA(k, -2.12194440e-4f, y);
    y = FL_FMA(-0.5f, z, y);
    return FL_FMA(k, 0.693359375f, f + y);
}

/*
 * log1p(u) for u in [0, 1] (and NaN), within 2 ulp, branch-free.
 *
 * One polynomial on the whole interval, no range reduction:
 *   log1p(u) = u + u^2 R(u),
 * R of degree 7, fitted to (log1p(u) - u) / u^2 on [0, 1] minimising the
 * relative error of the result (iteratively reweighted least squares on
 * 6000 Chebyshev points, Lawson's method, then rounded to float; 3.3e-8
 * before rounding). It converges fast because log1p's singularity, u = -1,
 * lies a whole interval away. Writing the result as u + u^2 R keeps it
 * exact to first order for tiny u (R(0) = -1/2). Max error 1.5 ulp with
 * FMA (an exhaustive sweep of [2^-40, 1]; below, the result is u, correctly
 * rounded), and within 2 ulp without (tests/values/test_math.py sweeps every
 * path). 9 operations where the range-reduced form (exponent split,
 * rounding correction, degree-8 polynomial) took about 20: BCE-with-logits,
 * focal and soft-margin call it once per element.
 */
FL_INLINE float fl_log1p_unit(float u)
{
    float r = 5.364620127e-03f;
    r = FL_FMA(r, u, -3.006497771e-02f);
    r = FL_FMA(r, u, 7.920321822e-02f);
    r = FL_FMA(r, u, -1.375369132e-01f);
    r = FL_FMA(r, u, 1.915360391e-01f);
    r = FL_FMA(r, u, -2.485715151e-01f);
    r = FL_FMA(r, u, 3.332132101e-01f);
    r = FL_FMA(r, u, -4.999964833e-01f);
    return FL_FMA(u * u, r, u);
}

/*
 * log(s) for a positive normal float s (and NaN), within 2 ulp, branch-free.
 * The exponent and mantissa are taken from the bits: s = 2^e m, m in
 * [sqrt(1/2), sqrt(2)). Used for the log-sum-exp of short rows, where
 * 1 <= s <= C.
 */
FL_INLINE float fl_log_pos(float s)
{
    const uint32_t bits = fl_bits_from_f32(s);
    /* Subtracting the bits of sqrt(1/2) puts the mantissa in [sqrt(1/2), sqrt(2)). */
    const uint32_t shifted = bits - 0x3f3504f3u;
    const int32_t e = (int32_t)shifted >> 23;                     /* floor(log2(s / sqrt(1/2))) */
    const float m = fl_f32_from_bits(bits - ((uint32_t)e << 23)); /* s / 2^e */
    const float lg = fl_log_reduced(m - 1.0f, (float)e);
    return s != s ? s : lg;
}

#endif /* FL_MATH_H */
