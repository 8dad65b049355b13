/*
 * elementwise/template.c -- one elementwise loss's block kernel and entry point.
 *
 * Not compiled on its own: generated/elementwise_kernels.c includes it once
 * per elementwise loss of fastloss/_spec/, after defining
 *
 *   FL_LOSS              the loss's C name (huber): uses fl_huber_forms and
 *                        fl_huber_options, defines fl_huber_block_<isa> and,
 *                        in the baseline copy, fl_huber_f32
 *   FL_WEIGHT_FIELD      the options field of its multiplying weight (if any)
 *   FL_AUX_FIELD         the options field of the array its forms read (if any)
 *   FL_MEAN_WEIGHT_SUM   1: MEAN divides by the weight's sum (else by n)
 *   FL_SETUP             (if the spec's c_setup) the loss has loop-invariant
 *                        constants: fl_huber_k and fl_huber_setup (elementwise.h)
 *   FL_MODES             the number of modes its forms distinguish (1..4)
 *
 * and undefines them after. For each chunk of at most FL_SUM_CHUNK elements
 * the block kernel picks one specialisation of the chunk loop: which outputs
 * the call wants (loss only, per-element loss, gradient only, both, an
 * upstream gradient per element), whether a weight or aux array is given,
 * and the call's mode. Each specialisation is one vectorised loop (constant
 * flags fold away), and the chunk sums are added in double, in order.
 */

#define FL_OPTS_T FL_CAT3(fl, FL_LOSS, options)
#ifdef FL_SETUP
#define FL_K_T FL_CAT3(fl, FL_LOSS, k)
#else
#define FL_K_T FL_OPTS_T
#endif
#define FL_FORMS FL_CAT3(fl, FL_LOSS, forms)
#define FL_CHUNK FL_CAT3(fl, FL_LOSS, chunk)
#define FL_CHUNK_OUT FL_CAT3(fl, FL_LOSS, chunk_out)
#define FL_CHUNK_WA FL_CAT3(fl, FL_LOSS, chunk_wa)
#define FL_BLOCK FL_CAT3(fl, FL_LOSS, block)

#ifdef FL_WEIGHT_FIELD
#define FL_HAS_WEIGHT 1
#else
#define FL_HAS_WEIGHT 0
#endif
#ifdef FL_AUX_FIELD
#define FL_HAS_AUX 1
#else
#define FL_HAS_AUX 0
#endif

/* n <= FL_SUM_CHUNK elements; returns the float sum of their losses. */
FL_INLINE float FL_CHUNK(const FL_K_T *k, const int mode, const float *x, const float *y,
                         int64_t n, float scale, const float *gps, float *loss_out,
                         float *grad_out, const float *w, const float *a, const int has_loss,
                         const int has_sum, const int has_grad, const int has_gps,
                         const int has_w, const int has_a)
{
    float acc = 0.0f;
    FL_SIMD_SUM(acc)
    for (int64_t i = 0; i < n; i++) {
        float l, g;
        FL_FORMS(k, mode, x[i], y[i], has_a ? a + i : NULL, has_w ? w[i] : 1.0f,
                 has_gps ? scale * gps[i] : scale, &l, &g);
        if (has_loss)
            loss_out[i] = l;
        if (has_loss || has_sum)
            acc += l;
        if (has_grad)
            grad_out[i] = g;
    }
    return acc;
}

/* The output combination of the call, for given weight/aux flags and mode. */
FL_INLINE float FL_CHUNK_OUT(const FL_K_T *o, const int mode, const fl_elem_ctx *p, int64_t j,
                             int64_t m, const float *w, const float *a, const int has_w,
                             const int has_a)
{
    const float *x = p->x + j, *y = p->y + j;
    const float sc = p->scale;
    float *lo = p->loss_out ? p->loss_out + j : NULL;
    float *go = p->grad_out ? p->grad_out + j : NULL;
    if (!go)
        return lo
            ? FL_CHUNK(o, mode, x, y, m, sc, NULL, lo, NULL, w, a, 1, 0, 0, 0, has_w, has_a)
            : FL_CHUNK(o, mode, x, y, m, sc, NULL, NULL, NULL, w, a, 0, 1, 0, 0, has_w, has_a);
    if (p->grad_per_sample)
        return FL_CHUNK(o, mode, x, y, m, sc, p->grad_per_sample + j, NULL, go, w, a, 0, 0, 1, 1,
                        has_w, has_a);
    if (lo)
        return FL_CHUNK(o, mode, x, y, m, sc, NULL, lo, go, w, a, 1, 0, 1, 0, has_w, has_a);
    if (p->want_sum)
        return FL_CHUNK(o, mode, x, y, m, sc, NULL, NULL, go, w, a, 0, 1, 1, 0, has_w, has_a);
    return FL_CHUNK(o, mode, x, y, m, sc, NULL, NULL, go, w, a, 0, 0, 1, 0, has_w, has_a);
}

/* The weight/aux combination of a chunk, for a constant mode. */
FL_INLINE float FL_CHUNK_WA(const FL_K_T *o, const int mode, const fl_elem_ctx *p, int64_t j,
                            int64_t m, const float *w, const float *a)
{
    if (FL_HAS_AUX && a)
        return FL_HAS_WEIGHT && w ? FL_CHUNK_OUT(o, mode, p, j, m, w, a, 1, 1)
                                  : FL_CHUNK_OUT(o, mode, p, j, m, NULL, a, 0, 1);
    return FL_HAS_WEIGHT && w ? FL_CHUNK_OUT(o, mode, p, j, m, w, NULL, 1, 0)
                              : FL_CHUNK_OUT(o, mode, p, j, m, NULL, NULL, 0, 0);
}

double FL_FN(FL_BLOCK)(const void *vctx, int64_t block, int64_t *bad)
{
    const fl_elem_ctx *p = (const fl_elem_ctx *)vctx;
    int mode = 0;
#ifdef FL_SETUP
    const FL_K_T o = FL_CAT3(fl, FL_LOSS, setup)((const FL_OPTS_T *)p->opts, &mode);
#else
    const FL_K_T o = *(const FL_OPTS_T *)p->opts;   /* a local copy: kept in registers */
#endif
    const int64_t i0 = block * FL_BLOCK_ELEMS;
    const int64_t i1 = p->n - i0 < FL_BLOCK_ELEMS ? p->n : i0 + FL_BLOCK_ELEMS;
    double total = 0.0;
    (void)bad;
    for (int64_t j = i0; j < i1;) {
        int64_t m = i1 - j < FL_SUM_CHUNK ? i1 - j : FL_SUM_CHUNK;
        const float *w = FL_HAS_WEIGHT ? fl_periodic_at(&p->weight, j, &m) : NULL;
        const float *a = FL_HAS_AUX ? fl_periodic_at(&p->aux, j, &m) : NULL;
        /* one specialisation per mode: the forms see a constant */
        float part;
        if (FL_MODES > 3 && mode == 3)
            part = FL_CHUNK_WA(&o, 3, p, j, m, w, a);
        else if (FL_MODES > 2 && mode == 2)
            part = FL_CHUNK_WA(&o, 2, p, j, m, w, a);
        else if (FL_MODES > 1 && mode == 1)
            part = FL_CHUNK_WA(&o, 1, p, j, m, w, a);
        else
            part = FL_CHUNK_WA(&o, 0, p, j, m, w, a);
        total += part;
        j += m;
    }
    return total;
}

#ifdef FL_BUILD_ENTRY
int FL_CAT3(fl, FL_LOSS, f32)(const float *input, const float *target, int64_t n,
                              const FL_OPTS_T *opts, const fl_outputs *out, int n_threads)
{
#if FL_HAS_WEIGHT
    const fl_weight *weight = &opts->FL_WEIGHT_FIELD;
#else
    const fl_weight *weight = NULL;
#endif
#if FL_HAS_AUX
    const fl_weight *aux = &opts->FL_AUX_FIELD;
#else
    const fl_weight *aux = NULL;
#endif
    return fl_run_elementwise(FL_CAT(FL_ELEM, FL_LOSS), input, target, n, weight, aux,
                              FL_MEAN_WEIGHT_SUM, opts, out, n_threads);
}
#endif

#undef FL_OPTS_T
#undef FL_K_T
#undef FL_CHUNK_WA
#undef FL_FORMS
#undef FL_CHUNK
#undef FL_CHUNK_OUT
#undef FL_BLOCK
#undef FL_HAS_WEIGHT
#undef FL_HAS_AUX
