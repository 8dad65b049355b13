/*
 * cross_entropy/tiles.c -- short rows (C <= FL_SHORT_ROW_MAX): FL_TILE_ROWS
 * rows at a time, transposed into a stack tile and vectorised across rows
 * (cols.h); the gradient is transposed back, each row written once.
 */
#include "cross_entropy/cols.h"

#if FL_VEC
/* The avx2 and avx512 copies move the tile in and out with 8x8 transposes
 * of 256-bit registers (the avx512 copy has AVX2 too): 8 rows' first 8 and
 * next 8 classes are loaded with masked loads (c is a constant, so are the
 * masks), transposed by 24 shuffles per 8x8 block (unpack, shuffle, swap of
 * 128-bit halves), and stored as 8-row pieces of the columns T[j]; the
 * gradient goes back the same way. This replaced scalar loops (a load and a
 * store per element, about 40 cycles per row of 10). Data movement only:
 * the arithmetic, hence every result bit, is what the scalar loops give. */

/* in[k] lane j -> out[j] lane k, for 8 registers of 8 floats. */
FL_INLINE void ce_transpose8(const __m256 in[8], __m256 out[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(in[0], in[1]), t1 = _mm256_unpackhi_ps(in[0], in[1]);
    const __m256 t2 = _mm256_unpacklo_ps(in[2], in[3]), t3 = _mm256_unpackhi_ps(in[2], in[3]);
    const __m256 t4 = _mm256_unpacklo_ps(in[4], in[5]), t5 = _mm256_unpackhi_ps(in[4], in[5]);
    const __m256 t6 = _mm256_unpacklo_ps(in[6], in[7]), t7 = _mm256_unpackhi_ps(in[6], in[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    out[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    out[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    out[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    out[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    out[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    out[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    out[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    out[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Lanes 0..n-1 set (n <= 8, a constant after inlining). */
FL_INLINE __m256i ce_lane_mask(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* T[j * ld + r] = xs[r * c + j] for r < 8, j < c: the 8 rows at xs. */
FL_INLINE void ce_tile_in8(const float *xs, float *T, int64_t ld, const int64_t c)
{
    __m256 in[8], out[8];
    const __m256i m0 = ce_lane_mask(c < 8 ? c : 8);
    for (int k = 0; k < 8; k++)
        in[k] = _mm256_maskload_ps(xs + k * c, m0);
    ce_transpose8(in, out);
    for (int64_t j = 0; j < (c < 8 ? c : 8); j++)
        _mm256_storeu_ps(T + j * ld, out[j]);
    if (c > 8) {
        const __m256i m1 = ce_lane_mask(c - 8);
        for (int k = 0; k < 8; k++)
            in[k] = _mm256_maskload_ps(xs + k * c + 8, m1);
        ce_transpose8(in, out);
        for (int64_t j = 8; j < c; j++)
            _mm256_storeu_ps(T + j * ld, out[j - 8]);
    }
}

/* ce_cols's max and exp loops for the FL_VLEN tile columns r0.. at once,
 * with the column's max and sum held in registers: fr->m = max_j T_j (as
 * ce_cols: x > m ? x : m), T_j = exp(T_j - m), fr->s = the float sum of
 * the T_j from 0 in j order. The same operations (fl_vexp_nonpos is
 * fl_exp_nonpos lane for lane), so the same bits. */
FL_INLINE void ce_tile_front(float *T, int64_t ld, int64_t r0, ce_cols_front *fr, const int64_t c)
{
    fl_vf vm = fl_vload(T + r0);
    for (int64_t j = 1; j < c; j++)
        vm = fl_vmax(fl_vload(T + j * ld + r0), vm);
    fl_vf s = fl_vzero();
    for (int64_t j = 0; j < c; j++) {
        const fl_vf e = fl_vexp_nonpos(fl_vsub(fl_vload(T + j * ld + r0), vm));
        fl_vstore(T + j * ld + r0, e);
        s = fl_vadd(s, e);
    }
    fl_vstore(fr->m + r0, vm);
    fl_vstore(fr->s + r0, s);
}

/* ce_cols's target check for the 8 rows i .. i+7 (tile columns r0..r0+7),
 * in vectors: out->t (t, or -1 when ignored or invalid), t32 (the same in
 * 32 bits), out->xt (T[t][r], or 0), and *bad = the first invalid row. The
 * range check is done on the 64-bit targets, before narrowing. */
FL_INLINE void ce_tile_targets8(const fl_ce_problem *p, int64_t i, const float *T, int64_t ld,
                                ce_cols_out *out, int32_t *t32, int64_t r0, int64_t *bad,
                                const int64_t c)
{
    const __m256i ign = _mm256_set1_epi64x(p->ignore_index), none = _mm256_set1_epi64x(-1);
    const __m256i cv = _mm256_set1_epi64x(c);
    const __m256i low = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256i tv[2];
    int badbits = 0;
    for (int h = 0; h < 2; h++) {
        const __m256i t = _mm256_loadu_si256((const __m256i *)(p->target + i + 4 * h));
        const __m256i is_ign = _mm256_cmpeq_epi64(t, ign);
        const __m256i in_range = _mm256_and_si256(_mm256_cmpgt_epi64(t, none),
                                                  _mm256_cmpgt_epi64(cv, t));
        const __m256i ok = _mm256_andnot_si256(is_ign, in_range);
        const __m256i v = _mm256_blendv_epi8(none, t, ok);
        _mm256_storeu_si256((__m256i *)(out->t + r0 + 4 * h), v);
        tv[h] = _mm256_permutevar8x32_epi32(v, low);   /* low halves into lanes 0..3 */
        badbits |= _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_or_si256(ok, is_ign)))
                   << (4 * h);
    }
    badbits ^= 0xff;        /* neither valid nor ignored */
    if (badbits && *bad < 0)
        *bad = i + __builtin_ctz((unsigned)badbits);
    const __m256i t8 = _mm256_permute2x128_si256(tv[0], tv[1], 0x20);
    _mm256_storeu_si256((__m256i *)(t32 + r0), t8);
    __m256 xt = _mm256_setzero_ps();
    for (int64_t j = 0; j < c; j++)
        xt = _mm256_blendv_ps(xt, _mm256_loadu_ps(T + j * ld + r0),
                              _mm256_castsi256_ps(_mm256_cmpeq_epi32(t8, _mm256_set1_epi32((int)j))));
    _mm256_storeu_ps(out->xt + r0, xt);
}

/* The gradient of the 8 rows at gs (tile columns r0..r0+7): g_j = e_j k -
 * b w_j, then g_t -= bt; 0 for an ignored row (ce_cols_grad's formula, the
 * same operations). Rows written with full 8-float stores spill into the
 * next rows, which are written after them; last (set when a spill would
 * pass the tile's end) writes exactly c floats per row with masked stores. */
FL_INLINE void ce_tile_out8(const fl_ce_problem *p, const float *T, int64_t ld, const ce_cols_out *out,
                            const int32_t *t32, int64_t r0, float *gs, int last, const int64_t c)
{
    const float *w = p->weight;
    const __m256 vk = _mm256_loadu_ps(out->k + r0), vb = _mm256_loadu_ps(out->b + r0);
    const __m256 vbt = _mm256_loadu_ps(out->bt + r0);
    const __m256i vt = _mm256_loadu_si256((const __m256i *)(t32 + r0));
    const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vt, _mm256_set1_epi32(-1)));
    /* ce_cols's plain case sets b = +0, and e k - 0 is e k, bit for bit */
    const int plain = !w && p->eps == 0.0f && p->z_loss == 0.0f;
    __m256 G[16];
    for (int64_t j = 0; j < c; j++) {
        const __m256 is_t = _mm256_castsi256_ps(_mm256_cmpeq_epi32(vt, _mm256_set1_epi32((int)j)));
        __m256 g = _mm256_mul_ps(_mm256_loadu_ps(T + j * ld + r0), vk);
        if (!plain)
            g = _mm256_sub_ps(g, _mm256_mul_ps(vb, _mm256_set1_ps(w ? w[j] : 1.0f)));
        g = _mm256_sub_ps(g, _mm256_and_ps(is_t, vbt));
        G[j] = _mm256_and_ps(g, valid);
    }
    for (int64_t j = c; j < 16; j++)
        G[j] = _mm256_setzero_ps();
    __m256 lo[8], hi[8];
    ce_transpose8(G, lo);
    if (c > 8)
        ce_transpose8(G + 8, hi);
    if (!last) {
        for (int k = 0; k < 8; k++) {
            _mm256_storeu_ps(gs + k * c, lo[k]);
            if (c > 8)
                _mm256_storeu_ps(gs + k * c + 8, hi[k]);
        }
    } else {
        const __m256i m0 = ce_lane_mask(c < 8 ? c : 8), m1 = ce_lane_mask(c - 8);
        for (int k = 0; k < 8; k++) {
            _mm256_maskstore_ps(gs + k * c, m0, lo[k]);
            if (c > 8)
                _mm256_maskstore_ps(gs + k * c + 8, m1, hi[k]);
        }
    }
}
#endif

/* Rows i0 .. i0+rows-1 (rows <= FL_TILE_ROWS) of c <= FL_SHORT_ROW_MAX
 * columns, transposed into T[j][r]. Called with a constant c (see
 * ce_short_rows), so the loops over j unroll into straight-line code. */
FL_INLINE double ce_short_tile(const fl_ce_problem *p, int64_t i0, int64_t rows, int64_t *bad,
                               const int64_t c)
{
    enum { R = FL_TILE_ROWS };
    const float *xs = p->x + i0 * c;
    float T[FL_SHORT_ROW_MAX * R];
    ce_cols_out out;
    int64_t r8 = 0;     /* rows below r8 move by 8x8 transposes */
#if FL_VEC
    int32_t t32[R];
    r8 = rows & ~(int64_t)7;
    for (int64_t r = 0; r < r8; r += 8)
        ce_tile_in8(xs + r * c, T + r, R, c);
#endif
    for (int64_t j = 0; j < c; j++) {
        FL_SIMD
        for (int64_t r = r8; r < rows; r++)
            T[j * R + r] = xs[r * c + j];
    }
    ce_cols_front fr;
    int64_t front = 0;  /* columns below it: max and exp done here (ce_tile_front) */
#if FL_VEC
    for (int64_t r = 0; r < r8; r += 8)
        ce_tile_targets8(p, i0 + r, T, R, &out, t32, r, bad, c);
    if (!p->correct_out && p->eps == 0.0f) {
        front = rows & ~(int64_t)(FL_VLEN - 1);
        for (int64_t r = 0; r < front; r += FL_VLEN)
            ce_tile_front(T, R, r, &fr, c);
    }
#endif
    const double acc = ce_cols(p, T, R, p->grad_out ? T : NULL, R, rows, i0, c, &out, bad, r8,
                               &fr, front);
    if (p->grad_out) {
        /* one pass writes each gradient row once: transposed back from T */
        float *gs = p->grad_out + i0 * c;
        const float *w = p->weight;
#if FL_VEC
        for (int64_t r = 0; r < r8; r += 8)
            ce_tile_out8(p, T, R, &out, t32, r, gs + r * c,
                         (r + 7) * c + (c > 8 ? 16 : 8) > rows * c, c);
#endif
        for (int64_t r = r8; r < rows; r++) {
            float *g = gs + r * c;
            const float k = out.k[r], b = out.b[r];
            if (out.t[r] < 0) {
                for (int64_t j = 0; j < c; j++)
                    g[j] = 0.0f;
                continue;
            }
            for (int64_t j = 0; j < c; j++)
                g[j] = T[j * R + r] * k - b * (w ? w[j] : 1.0f);
            g[out.t[r]] -= out.bt[r];
        }
    }
    return acc;
}

/* Rows r0 .. r1-1 with c <= FL_SHORT_ROW_MAX, one specialisation per c. */
static double ce_short_rows(const fl_ce_problem *p, int64_t r0, int64_t r1, int64_t *bad)
{
    double acc = 0.0;
    for (int64_t i = r0; i < r1; i += FL_TILE_ROWS) {
        const int64_t rows = r1 - i < FL_TILE_ROWS ? r1 - i : FL_TILE_ROWS;
        switch (p->c) {
#define FL_CASE(k) case k: acc += ce_short_tile(p, i, rows, bad, k); break;
        FL_CASE(1) FL_CASE(2) FL_CASE(3) FL_CASE(4) FL_CASE(5) FL_CASE(6) FL_CASE(7)
        FL_CASE(8) FL_CASE(9) FL_CASE(10) FL_CASE(11) FL_CASE(12) FL_CASE(13) FL_CASE(14)
        FL_CASE(15) FL_CASE(16)
#undef FL_CASE
        default: break;
        }
    }
    return acc;
}

double FL_FN(fl_ce_tiles_block)(const void *vctx, int64_t block, int64_t *bad)
{
    const fl_ce_rows_ctx *ctx = (const fl_ce_rows_ctx *)vctx;
    const fl_ce_problem *p = &ctx->p;
    const int64_t r0 = block * ctx->rows_per_block;
    const int64_t r1 = r0 + ctx->rows_per_block < p->n ? r0 + ctx->rows_per_block : p->n;
    const double acc = ce_short_rows(p, r0, r1, bad);
    return p->want_sum ? acc : 0.0;
}
