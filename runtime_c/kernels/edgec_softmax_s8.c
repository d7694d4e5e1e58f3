/*
 * int8 -> int8 SOFTMAX, bit-exact with TFLite Micro's reference_ops::Softmax
 * (the path TFLM takes for int8 input and int8 output, and what CMSIS-NN's
 * arm_softmax_s8 reproduces): differences to the row maximum are scaled to
 * Q5.26 by input_multiplier/input_left_shift, exponentiated with gemmlowp's
 * exp_on_negative_values, summed in Q12.19, and divided through a fixed-point
 * reciprocal. Differences below diff_min contribute nothing and give -128.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_fixedpoint.h"

static int32_t edgec_row_max_s8(const int8_t *x, int32_t n)
{
    int32_t m = -128;
    for (int32_t i = 0; i < n; i++) {
        m = EDGEC_MAX(m, (int32_t)x[i]);
    }
    return m;
}

/* exp(input_diff * beta * scale) in Q0. */
EDGEC_FORCE_INLINE int32_t edgec_softmax_exp(int32_t diff, int32_t input_multiplier, int32_t input_left_shift)
{
    /* MultiplyByQuantizedMultiplierGreaterThanOne: left shift, then doubling high mul. */
    const int32_t scaled = edgec_doubling_high_mult(edgec_shl_wrap(diff, input_left_shift), input_multiplier);
    return edgec_fp_exp_on_negative_values(scaled, 5);
}

static int32_t edgec_clz32(uint32_t x)
{
    if (x == 0) {
        return 32;
    }
#if defined(__GNUC__)
    return __builtin_clz(x);
#else
    int32_t n = 0;
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

edgec_status edgec_softmax_s8(const int8_t *input, int32_t num_rows, int32_t row_size, int32_t input_multiplier,
                              int32_t input_left_shift, int32_t diff_min, int8_t *output)
{
    if (num_rows < 0 || row_size <= 0 || input_left_shift < 0 || input_left_shift > 31) {
        return EDGEC_ARG_ERROR;
    }
    for (int32_t r = 0; r < num_rows; r++) {
        const int8_t *in = input + r * row_size;
        int8_t *out = output + r * row_size;

        const int32_t max_in_row = edgec_row_max_s8(in, row_size);

        int32_t sum_of_exps = 0; /* Q12 */
        for (int32_t c = 0; c < row_size; c++) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= diff_min) {
                const int32_t e = edgec_softmax_exp(diff, input_multiplier, input_left_shift);
                sum_of_exps = edgec_fp_add(sum_of_exps, edgec_rounding_divide_by_pot(e, 12));
            }
        }

        /* GetReciprocal(sum_of_exps, 12). */
        const int32_t headroom_plus_one = edgec_clz32((uint32_t)sum_of_exps);
        const int32_t num_bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = edgec_fp_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
        const int32_t exponent = num_bits_over_unit + 31 - 8;
        if (exponent < 0 || exponent > 31) {
            return EDGEC_ARG_ERROR; /* TFLM aborts (TFLITE_CHECK) */
        }

        for (int32_t c = 0; c < row_size; c++) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= diff_min) {
                const int32_t e = edgec_softmax_exp(diff, input_multiplier, input_left_shift);
                int32_t y = edgec_rounding_divide_by_pot(edgec_fp_mul(shifted_scale, e), exponent) - 128;
                y = EDGEC_MAX(y, -128);
                y = EDGEC_MIN(y, 127);
                out[c] = (int8_t)y;
            } else {
                out[c] = -128;
            }
        }
    }
    return EDGEC_OK;
}

/*
 * Softmax at any output scale (ONNX QDQ / QOperator models, whose softmax output
 * is calibrated, e.g. 1/255): exp of the difference to the row maximum from a
 * compile-time table in Q20 (qmath.softmax_lut_params), an int32 sum, and one
 * rounding (half to even, as onnxruntime quantizes) of e * recip / (sum << 16),
 * recip = 2^16 / output scale. Integer only; 64-bit products and one 64-bit
 * division per output.
 */
edgec_status edgec_softmax_lut_s8(const int8_t *input, int32_t num_rows, int32_t row_size, const int32_t *exp_table,
                                  int32_t recip, int32_t output_zp, int8_t *output)
{
    if (row_size <= 0 || row_size > 2047) {
        return EDGEC_ARG_ERROR;
    }
    for (int32_t r = 0; r < num_rows; r++) {
        const int8_t *x = input + r * row_size;
        int8_t *y = output + r * row_size;
        const int32_t *e = exp_table + 255 - edgec_row_max_s8(x, row_size);
        int32_t sum = 0;
        for (int32_t i = 0; i < row_size; i++) {
            sum += e[x[i]];
        }
        const int64_t den = (int64_t)sum << 16;
        for (int32_t i = 0; i < row_size; i++) {
            const int64_t num = (int64_t)e[x[i]] * recip;
            int64_t q = num / den;
            const int64_t rem2 = 2 * (num - q * den);
            q += rem2 > den || (rem2 == den && (q & 1));
            const int64_t v = q + output_zp;
            y[i] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
        }
    }
    return EDGEC_OK;
}
