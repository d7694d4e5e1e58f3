/*
 * int8 LOGISTIC, bit-exact with TFLite Micro's reference_integer_ops::Logistic:
 * the input is rescaled to Q4.27, gemmlowp's fixed-point logistic is applied,
 * and the Q0.31 result is rounded to the output's 1/256 scale, zero point -128.
 * Inputs beyond +-input_range_radius saturate directly.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_fixedpoint.h"

/* gemmlowp::logistic on Q4 input, Q0 output. */
static int32_t edgec_fp_logistic_q4(int32_t a)
{
    if (a == 0) {
        return 1 << 30; /* 0.5 */
    }
    const int32_t abs_input = a > 0 ? a : edgec_fp_sub(0, a);
    const int32_t result_if_positive =
        edgec_fp_one_over_one_plus_x_for_x_in_0_1(edgec_fp_exp_on_negative_values(edgec_fp_sub(0, abs_input), 4));
    return a > 0 ? result_if_positive : edgec_fp_sub(INT32_MAX, result_if_positive);
}

edgec_status edgec_logistic_s8(const int8_t *input, int32_t size, int32_t input_zero_point, int32_t input_range_radius,
                               int32_t input_multiplier, int32_t input_left_shift, int8_t *output)
{
    for (int32_t i = 0; i < size; i++) {
        const int32_t x = (int32_t)input[i] - input_zero_point;
        if (x <= -input_range_radius) {
            output[i] = -128;
        } else if (x >= input_range_radius) {
            output[i] = 127;
        } else {
            const int32_t x_q4 = edgec_requantize(x, input_multiplier, input_left_shift);
            int32_t y = edgec_rounding_divide_by_pot(edgec_fp_logistic_q4(x_q4), 31 - 8) - 128;
            y = EDGEC_MAX(y, -128);
            y = EDGEC_MIN(y, 127);
            output[i] = (int8_t)y;
        }
    }
    return EDGEC_OK;
}
