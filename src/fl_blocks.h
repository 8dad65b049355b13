/*
 * fl_blocks.h -- the block driver: fixed blocks, threads, a fixed-order sum.
 *
 * Every kernel is a "block kernel": it processes one fixed block of the
 * problem and returns that block's partial loss sum in double. fl_run_blocks
 * (runtime.c) runs the blocks, on the calling thread or an OpenMP team, and
 * adds their partial sums serially in block order. Block sizes depend on the
 * shape only, never on the thread count, so results are bitwise identical
 * for any number of threads. The C allocates nothing per element: only the
 * per-block partial sums (and cross-entropy's split-row scratch, per row).
 */
#ifndef FL_BLOCKS_H
#define FL_BLOCKS_H

#include <stdint.h>

/* Elements per block for the elementwise losses, and the target block size (in
 * elements) for the row-wise ones. 16384 floats = 64 KiB: large enough that the
 * per-block overhead vanishes, small enough that 2^24 elements give 1024 blocks
 * to balance over threads. Fixed: it must never depend on the thread count. */
#define FL_BLOCK_ELEMS ((int64_t)16384)

/* Below this many elements a call runs on the calling thread: waking the
 * OpenMP pool costs a few microseconds, more than the whole computation. */
#define FL_PARALLEL_MIN_ELEMS ((int64_t)32768)

/* Sums are kept in float vector lanes for FL_SUM_CHUNK elements (at most
 * FL_SUM_CHUNK / 4 additions per lane, a relative error below 4e-6 in the
 * worst case and ~1e-7 typically), then added to a double. Per-element double
 * accumulation costs two conversions and two adds per vector in the hottest
 * loops; this costs one horizontal add per chunk. */
#define FL_SUM_CHUNK ((int64_t)256)

/* A block kernel: process block `block` of the problem described by ctx,
 * return its partial loss sum (0 when no loss is wanted). A kernel that finds
 * an invalid target sets *bad to the smallest offending index in its block
 * (it starts at -1). */
typedef double (*fl_block_fn)(const void *ctx, int64_t block, int64_t *bad);

/*
 * Run fn over blocks 0..nblocks-1 and add their results in block order.
 * Parallel (static schedule over blocks) when n_threads > 1, nblocks > 1 and
 * work_elems >= FL_PARALLEL_MIN_ELEMS; otherwise serial on the calling thread.
 * The sum is the same bitwise either way. *bad receives the smallest index any
 * block reported, or -1. Returns FL_OK or FL_ERR_NOMEM.
 */
int fl_run_blocks(fl_block_fn fn, const void *ctx, int64_t nblocks, int64_t work_elems,
                  int n_threads, double *total, int64_t *bad);

/*
 * fl_run_blocks, then the reduced loss of a call whose 'mean' divides by
 * mean_denom: *loss_reduced (when not NULL) gets the blocks' sum, divided by
 * mean_denom when mean is set. Nothing is written when a block reported an
 * index (*bad >= 0: the caller's error) or on FL_ERR_NOMEM. bad may be NULL.
 */
int fl_run_reduced(fl_block_fn fn, const void *ctx, int64_t nblocks, int64_t work_elems,
                   int n_threads, double *loss_reduced, int mean, double mean_denom,
                   int64_t *bad);

#endif /* FL_BLOCKS_H */
