/*
 * math_eval.c -- array versions of the inline math in fl_math.h, compiled
 * per instruction set like the loss families, so the tests can compare each
 * path's vectorised exp / log1p / log against double precision.
 */
#include "fl_math.h"
#include "fl_dispatch.h"

void FL_FN(fl_math_eval)(int which, const float *in, float *out, int64_t n)
{
    switch (which) {
    case FL_MATH_EXP_NONPOS:
        FL_SIMD
        for (int64_t i = 0; i < n; i++)
            out[i] = fl_exp_nonpos(in[i]);
        break;
    case FL_MATH_LOG1P_UNIT:
        FL_SIMD
        for (int64_t i = 0; i < n; i++)
            out[i] = fl_log1p_unit(in[i]);
        break;
    case FL_MATH_LOG_POS:
        FL_SIMD
        for (int64_t i = 0; i < n; i++)
            out[i] = fl_log_pos(in[i]);
        break;
    default:
        break;
    }
}
