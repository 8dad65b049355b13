/*
 * elementwise/elementwise.h -- what the elementwise losses share.
 *
 * An elementwise loss is its closed forms (one inline function per loss in
 * src/elementwise/<family>.h) and its declaration in fastloss/_spec/; the
 * block kernel, its specialisations and the entry point come from one
 * template (template.c), instantiated per loss by the generated
 * generated/elementwise_kernels.c. The closed forms of a loss <name>:
 *
 *   FL_INLINE void fl_<name>_forms(const K *k, const int mode, float x, float y,
 *                                  const float *aux, float w, float s,
 *                                  float *loss, float *grad);
 *
 *   k      the call's loop-invariant constants: the options struct itself
 *          (K = fl_<name>_options), or, when the spec sets c_setup, what
 *
 *            FL_INLINE fl_<name>_k fl_<name>_setup(const fl_<name>_options *o,
 *                                                  int *mode);
 *
 *          derives from the options once per block (K = fl_<name>_k), for
 *          anything that would otherwise be recomputed per element (a
 *          division, a libm call)
 *   mode   0 .. c_modes - 1, a constant in each specialised loop: a formula
 *          that has variants selected by the options (set by the setup)
 *   x, y   the input and target element
 *   aux    NULL, or a pointer to this element's value of the loss's aux
 *          array (its spec's `aux`, e.g. BCE's pos_weight)
 *   w      the element's weight (1 when the loss has none or none is given)
 *   s      the upstream gradient factor of the element
 *   loss   OUT  w times the element's loss
 *   grad   OUT  s w d(loss)/dx, in the order of operations the loss documents
 *
 * Each is called from specialised loops with constant aux == NULL (or not)
 * and whichever of loss and grad the call wants: the compiler drops what is
 * not needed, and folds w = 1 away (x * 1 is exact, so that changes no bit).
 * They must be branch-free (ternaries become blends) to vectorise.
 */
#ifndef FL_ELEMENTWISE_H
#define FL_ELEMENTWISE_H

#include "fl_math.h"
#include "fl_dispatch.h"

/* A weight of period P, prepared for the block kernels. For P <= FL_SUM_CHUNK,
 * `tile` repeats w over FL_SUM_CHUNK + P floats so any chunk reads it
 * contiguously from tile + (i % P); longer periods are read in place and
 * chunks are cut at the wrap. */
typedef struct {
    const float *w;                 /* IN  (period,) or NULL */
    int64_t period;
    const float *tile;              /* (FL_SUM_CHUNK + period,) or NULL */
} fl_periodic;

/* One elementwise call, as the block kernels see it. */
typedef struct {
    const float *x, *y;             /* IN  (n,) */
    int64_t n;
    float scale;                    /* upstream scalar, already divided for MEAN */
    const float *grad_per_sample;   /* IN  (n,) or NULL */
    float *loss_out;                /* OUT (n,) or NULL */
    float *grad_out;                /* OUT (n,) or NULL, may equal x */
    int want_sum;
    fl_periodic weight;             /* the loss's multiplying weight */
    fl_periodic aux;                /* the array its closed forms read (pos_weight) */
    const void *opts;               /* IN  the loss's fl_<name>_options */
} fl_elem_ctx;

/* The weight pointer for elements [i, i + *m) of a periodic weight (NULL
 * when there is none), shortening *m so the chunk does not wrap. */
FL_INLINE const float *fl_periodic_at(const fl_periodic *pw, int64_t i, int64_t *m)
{
    if (!pw->w)
        return NULL;
    const int64_t off = i % pw->period;
    if (pw->tile)
        return pw->tile + off;
    if (off + *m > pw->period)
        *m = pw->period - off;
    return pw->w + off;
}

/*
 * The entry point shared by the elementwise losses (elementwise/driver.c):
 * derives the scale (grad_scale / D for MEAN, with D = n, or the sum of the
 * broadcast weight when weighted_mean), runs the dispatched block kernel of
 * loss `kind` over blocks of FL_BLOCK_ELEMS elements and reduces. weight and
 * aux may be NULL (the loss has none).
 */
int fl_run_elementwise(int kind, const float *x, const float *y, int64_t n,
                       const fl_weight *weight, const fl_weight *aux, int weighted_mean,
                       const void *opts, const fl_outputs *out, int n_threads);

#endif /* FL_ELEMENTWISE_H */
