/*
 * runtime.c -- threading, the fixed-order block reduction (fl_blocks.h), and ISA
 * dispatch (fl_dispatch.h).
 * Compiled once, with the baseline flags.
 */
#include "fl_dispatch.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int fl_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fl_omp_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ------------------------------------------------------------------------ */
/* Threads under contention.
 *
 * A parallel region ends when every thread of its team has finished. On a
 * busy machine (other processes, a DataLoader's workers) a team thread may
 * wait a scheduler time slice -- milliseconds -- before it runs at all, and a
 * call that takes half a millisecond on one thread then takes ten. So blocks
 * are claimed dynamically (a thread that starts late simply does fewer; the
 * partial sums are still added in block order), and the calling thread
 * measures how long it waited: at the start of the region (libgomp starts a
 * team only once every thread of its pool is back from the last one) and at
 * the end (for the others to finish). A wait longer than half the work it did
 * itself (plus FL_STALL_SLACK_S) marks the call as stalled: the calls that
 * follow run on the calling thread alone for a while (FL_BACKOFF_MIN_S,
 * doubled at each further stall up to FL_BACKOFF_MAX_S, reset by a parallel
 * call that does not stall), and then try the team again. Under steady
 * contention few calls pay for a stall and the others take their one-thread
 * time; a quiet machine never stalls and keeps its threads. The thread count
 * never changes a result, so neither does any of this.
 * fl_set_adaptive_threads(0) turns it off (FASTLOSS_ADAPTIVE_THREADS=0). */

#define FL_STALL_SLACK_S 50e-6
#define FL_BACKOFF_MIN_S 0.05
#define FL_BACKOFF_MAX_S 2.0

static int fl_adaptive = 1;
static double fl_serial_until = 0.0;     /* omp_get_wtime() before which calls run serially */
static double fl_backoff = FL_BACKOFF_MIN_S;

/* Relaxed atomic loads and stores: calls from several Python threads may race
 * on this state, and any value each of them sees is a valid one. */
#if defined(__GNUC__) || defined(__clang__)
static double fl_load_d(const double *p)
{
    double v;
    __atomic_load(p, &v, __ATOMIC_RELAXED);
    return v;
}
static void fl_store_d(double *p, double v) { __atomic_store(p, &v, __ATOMIC_RELAXED); }
static int fl_load_i(const int *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static void fl_store_i(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
#else   /* aligned loads and stores of these sizes are atomic where fastloss runs */
static double fl_load_d(const double *p) { return *(const volatile double *)p; }
static void fl_store_d(double *p, double v) { *(volatile double *)p = v; }
static int fl_load_i(const int *p) { return *(const volatile int *)p; }
static void fl_store_i(int *p, int v) { *(volatile int *)p = v; }
#endif

void fl_set_adaptive_threads(int on)
{
    if (!on) {   /* off: and when it is turned on again, it starts afresh */
        fl_store_d(&fl_serial_until, 0.0);
        fl_store_d(&fl_backoff, FL_BACKOFF_MIN_S);
    }
    fl_store_i(&fl_adaptive, on ? 1 : 0);
}

int fl_thread_policy_update(double now, double work, double wait)
{
    if (wait > 0.5 * work + FL_STALL_SLACK_S) {
        const double backoff = fl_load_d(&fl_backoff);
        fl_store_d(&fl_serial_until, now + backoff);
        fl_store_d(&fl_backoff,
                   backoff * 2.0 < FL_BACKOFF_MAX_S ? backoff * 2.0 : FL_BACKOFF_MAX_S);
        return 1;
    }
    fl_store_d(&fl_backoff, FL_BACKOFF_MIN_S);
    return 0;
}

int fl_thread_policy_enabled(void)
{
    return fl_load_i(&fl_adaptive);
}

double fl_thread_policy_serial_until(void)
{
    return fl_load_d(&fl_serial_until);
}

/* ------------------------------------------------------------------------ */
/* Blocks.                                                                   */

int fl_run_blocks(fl_block_fn fn, const void *ctx, int64_t nblocks, int64_t work_elems,
                  int n_threads, double *total, int64_t *bad)
{
    double sum = 0.0;
    int64_t first_bad = -1;
#ifdef _OPENMP
    /* Threads: the caller's n_threads, capped by the OpenMP runtime's limit for
     * the calling thread, omp_get_max_threads() -- what OMP_NUM_THREADS,
     * omp_set_num_threads() and threadpoolctl's threadpool_limits() set -- so
     * that those limit fastloss as they limit other OpenMP libraries; and by the
     * number of blocks. The runtime is not consulted when n_threads == 1 or the
     * input is small: such calls never touch OpenMP (fastloss/_threads.py relies
     * on that in a child forked from a process whose libgomp pool is running). */
    int nt = 1, adaptive = 0;
    double start = 0.0;
    if (n_threads > 1 && nblocks > 1 && work_elems >= FL_PARALLEL_MIN_ELEMS) {
        adaptive = fl_load_i(&fl_adaptive);
        start = adaptive ? omp_get_wtime() : 0.0;
        if (!adaptive || start >= fl_load_d(&fl_serial_until)) {
            const int omp_max = omp_get_max_threads();
            nt = n_threads < omp_max ? n_threads : omp_max;
            if ((int64_t)nt > nblocks)
                nt = (int)nblocks;
        }
    }
    if (nt > 1) {
        /* One partial per block, combined below in block order: the result does
         * not depend on which thread ran which block. */
        double *partial = (double *)malloc((size_t)nblocks * sizeof(double));
        int64_t *bads = (int64_t *)malloc((size_t)nblocks * sizeof(int64_t));
        if (!partial || !bads) {
            free(partial);
            free(bads);
            return FL_ERR_NOMEM;
        }
        /* The calling thread (thread 0) notes when it starts its share and when
         * it has no block left: the time before the first (a thread of the team
         * not yet back in libgomp's pool) and after the second (a thread still
         * running, or not yet started) is what contention costs the call. */
        double caller_start = 0.0, caller_done = 0.0;
        #pragma omp parallel num_threads(nt)
        {
            if (adaptive && omp_get_thread_num() == 0)
                caller_start = omp_get_wtime();
            #pragma omp for schedule(dynamic, 1) nowait
            for (int64_t b = 0; b < nblocks; b++) {
                bads[b] = -1;
                partial[b] = fn(ctx, b, &bads[b]);
            }
            if (adaptive && omp_get_thread_num() == 0)
                caller_done = omp_get_wtime();
        }
        if (adaptive) {
            const double end = omp_get_wtime();
            fl_thread_policy_update(end, caller_done - caller_start,
                                    (caller_start - start) + (end - caller_done));
        }
        for (int64_t b = 0; b < nblocks; b++) {
            sum += partial[b];
            if (first_bad < 0 && bads[b] >= 0)
                first_bad = bads[b];
        }
        free(partial);
        free(bads);
        *total = sum;
        *bad = first_bad;
        return FL_OK;
    }
#else
    (void)n_threads;
    (void)work_elems;
#endif
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t block_bad = -1;
        sum += fn(ctx, b, &block_bad);
        if (first_bad < 0 && block_bad >= 0)
            first_bad = block_bad;
    }
    *total = sum;
    *bad = first_bad;
    return FL_OK;
}

int fl_run_reduced(fl_block_fn fn, const void *ctx, int64_t nblocks, int64_t work_elems,
                   int n_threads, double *loss_reduced, int mean, double mean_denom,
                   int64_t *bad)
{
    double total = 0.0;
    int64_t first_bad = -1;
    const int status = fl_run_blocks(fn, ctx, nblocks, work_elems, n_threads, &total,
                                     &first_bad);
    if (bad)
        *bad = first_bad;
    if (status != FL_OK || first_bad >= 0)
        return status;
    if (loss_reduced)
        *loss_reduced = mean ? total / mean_denom : total;
    return FL_OK;
}

/* ------------------------------------------------------------------------ */
/* Dispatch.                                                                 */

#define FL_ELEM_ENTRY_(name, isa) fl_##name##_block_##isa,
#define FL_ELEM_BASELINE(name) FL_ELEM_ENTRY_(name, baseline)
#define FL_ELEM_AVX2(name) FL_ELEM_ENTRY_(name, avx2)
#define FL_ELEM_AVX512(name) FL_ELEM_ENTRY_(name, avx512)
#define FL_TABLE(isa, ISA)                                                         \
    {#isa, fl_ce_rows_block_##isa, fl_ce_tiles_block_##isa, fl_ce_kdim_block_##isa,  \
     fl_ce_soft_block_##isa, fl_ce_split_stats_##isa, fl_ce_split_scale_##isa,       \
     {FL_ELEMENTWISE_LOSSES(FL_ELEM_##ISA)}, fl_rows_mlsm_block_##isa,                 \
     fl_rows_mm_block_##isa, fl_pw_mr_block_##isa, fl_pw_gnll_block_##isa,            \
     fl_emb_cos_block_##isa, fl_emb_tri_block_##isa, fl_math_eval_##isa}

static const fl_kernel_table fl_table_baseline = FL_TABLE(baseline, BASELINE);
#ifdef FL_HAVE_AVX2
static const fl_kernel_table fl_table_avx2 = FL_TABLE(avx2, AVX2);
#endif
#ifdef FL_HAVE_AVX512
static const fl_kernel_table fl_table_avx512 = FL_TABLE(avx512, AVX512);
#endif

/* The table for `name` if it is compiled in and this CPU runs it, else NULL. */
static const fl_kernel_table *fl_table_for(const char *name)
{
    if (strcmp(name, "baseline") == 0)
        return &fl_table_baseline;
#if defined(FL_HAVE_AVX2) && (defined(__GNUC__) || defined(__clang__))
    if (strcmp(name, "avx2") == 0) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                   ? &fl_table_avx2 : NULL;
    }
#endif
#if defined(FL_HAVE_AVX512) && (defined(__GNUC__) || defined(__clang__))
    if (strcmp(name, "avx512") == 0) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                       __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                   ? &fl_table_avx512 : NULL;
    }
#endif
    return NULL;
}

static const fl_kernel_table *fl_best_table(void)
{
    static const char *const order[] = {"avx512", "avx2", "baseline"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const fl_kernel_table *t = fl_table_for(order[i]);
        if (t)
            return t;
    }
    return &fl_table_baseline;
}

/* Set at import (fl_set_isa). A later fl_set_isa while kernels run in other
 * threads is atomic: each entry point reads the table once (fl_kernels) and
 * runs the whole call on it, so a call never mixes two paths. */
static const fl_kernel_table *fl_current = NULL;

#if defined(__GNUC__) || defined(__clang__)
#define FL_LOAD_TABLE() __atomic_load_n(&fl_current, __ATOMIC_ACQUIRE)
#define FL_STORE_TABLE(t) __atomic_store_n(&fl_current, (t), __ATOMIC_RELEASE)
#else   /* an aligned pointer store is atomic on the platforms fastloss targets */
#define FL_LOAD_TABLE() (*(const fl_kernel_table *volatile *)&fl_current)
#define FL_STORE_TABLE(t) (*(const fl_kernel_table *volatile *)&fl_current = (t))
#endif

const fl_kernel_table *fl_kernels(void)
{
    const fl_kernel_table *t = FL_LOAD_TABLE();
    return t ? t : fl_best_table();
}

int fl_set_isa(const char *name)
{
    if (!name || strcmp(name, "auto") == 0) {
        FL_STORE_TABLE(fl_best_table());
        return FL_OK;
    }
    const fl_kernel_table *t = fl_table_for(name);
    if (!t)
        return FL_ERR_ARG;
    FL_STORE_TABLE(t);
    return FL_OK;
}

const char *fl_isa_name(void)
{
    return fl_kernels()->name;
}

int fl_isa_available(const char *name)
{
    return name && fl_table_for(name) != NULL;
}

void fl_math_eval_f32(int which, const float *in, float *out, int64_t n)
{
    fl_kernels()->math_eval(which, in, out, n);
}
