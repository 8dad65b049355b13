/*
 * fl_dispatch.h -- the table of one instruction set's block kernels.
 *
 * Every kernel file is compiled once per ISA (see fl_simd.h); runtime.c
 * holds one fl_kernel_table per compiled ISA and hands out the one the CPU
 * runs best (or the one fl_set_isa chose). An entry point reads the table
 * once (fl_kernels) and runs its whole call on it.
 */
#ifndef FL_DISPATCH_H
#define FL_DISPATCH_H

#include "fastloss.h"
#include "fl_blocks.h"

/* The elementwise losses, in declaration order, indexing the table's elem[]. */
enum {
#define FL_X(name) FL_ELEM_##name,
    FL_ELEMENTWISE_LOSSES(FL_X)
#undef FL_X
    FL_ELEM_COUNT
};

/* Test hooks: which inline function fl_math_eval applies. */
enum { FL_MATH_EXP_NONPOS = 0, FL_MATH_LOG1P_UNIT = 1, FL_MATH_LOG_POS = 2 };
typedef void (*fl_math_fn)(int which, const float *in, float *out, int64_t n);

/* The hot loops of one instruction set. */
typedef struct {
    const char *name;
    fl_block_fn ce_rows_block;      /* cross_entropy/rows.c: long rows */
    fl_block_fn ce_tiles_block;     /* cross_entropy/tiles.c: short rows (C <= 16) */
    fl_block_fn ce_kdim_block;      /* cross_entropy/kdim.c: (N, C, d) in place */
    fl_block_fn ce_soft_block;      /* cross_entropy/soft.c: probability targets */
    fl_block_fn ce_split_stats;     /* cross_entropy/split.c: pass 1 per chunk */
    fl_block_fn ce_split_scale;     /* cross_entropy/split.c: pass 2 per chunk */
    fl_block_fn elem[FL_ELEM_COUNT];        /* generated/elementwise_kernels.c */
    fl_block_fn rows_mlsm_block;    /* rows/rows.c: multilabel soft margin */
    fl_block_fn rows_mm_block;      /* rows/rows.c: multi-class margin */
    fl_block_fn pw_mr_block;        /* pairwise/pairwise.c: margin ranking */
    fl_block_fn pw_gnll_block;      /* pairwise/pairwise.c: Gaussian NLL */
    fl_block_fn emb_cos_block;      /* embedding/embedding.c: cosine embedding */
    fl_block_fn emb_tri_block;      /* embedding/embedding.c: triplet margin */
    fl_math_fn math_eval;           /* math_eval.c */
} fl_kernel_table;

/* The table of the dispatched instruction set (runtime.c). */
const fl_kernel_table *fl_kernels(void);

/* Declarations of every compiled copy of the block kernels. */
#define FL_DECLARE_ELEM_(name, isa) \
    double fl_##name##_block_##isa(const void *ctx, int64_t block, int64_t *bad);
#define FL_DECLARE_KERNELS(isa)                                                      \
    double fl_ce_rows_block_##isa(const void *ctx, int64_t block, int64_t *bad);      \
    double fl_ce_tiles_block_##isa(const void *ctx, int64_t block, int64_t *bad);     \
    double fl_ce_kdim_block_##isa(const void *ctx, int64_t block, int64_t *bad);      \
    double fl_ce_soft_block_##isa(const void *ctx, int64_t block, int64_t *bad);      \
    double fl_ce_split_stats_##isa(const void *ctx, int64_t unit, int64_t *bad);      \
    double fl_ce_split_scale_##isa(const void *ctx, int64_t unit, int64_t *bad);      \
    double fl_rows_mlsm_block_##isa(const void *ctx, int64_t block, int64_t *bad);    \
    double fl_rows_mm_block_##isa(const void *ctx, int64_t block, int64_t *bad);      \
    double fl_pw_mr_block_##isa(const void *ctx, int64_t block, int64_t *bad);        \
    double fl_pw_gnll_block_##isa(const void *ctx, int64_t block, int64_t *bad);      \
    double fl_emb_cos_block_##isa(const void *ctx, int64_t block, int64_t *bad);      \
    double fl_emb_tri_block_##isa(const void *ctx, int64_t block, int64_t *bad);      \
    void fl_math_eval_##isa(int which, const float *in, float *out, int64_t n);
#define FL_X_BASELINE(name) FL_DECLARE_ELEM_(name, baseline)
#define FL_X_AVX2(name) FL_DECLARE_ELEM_(name, avx2)
#define FL_X_AVX512(name) FL_DECLARE_ELEM_(name, avx512)
FL_DECLARE_KERNELS(baseline)
FL_DECLARE_KERNELS(avx2)
FL_DECLARE_KERNELS(avx512)
FL_ELEMENTWISE_LOSSES(FL_X_BASELINE)
FL_ELEMENTWISE_LOSSES(FL_X_AVX2)
FL_ELEMENTWISE_LOSSES(FL_X_AVX512)
#undef FL_X_BASELINE
#undef FL_X_AVX2
#undef FL_X_AVX512

#endif /* FL_DISPATCH_H */
