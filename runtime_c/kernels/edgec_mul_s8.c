/*
 * int8 MUL, bit-exact with TFLite Micro's reference_integer_ops::Mul:
 * output = requantize((x1 + off1) * (x2 + off2)) + output zero point.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

edgec_status edgec_mul_s8(const edgec_mul_params *params, const int8_t *input1, int32_t size1, const int8_t *input2,
                          int32_t size2, int8_t *output)
{
    const edgec_mul_params *p = params;
    int32_t n;
    int32_t step1 = 1, step2 = 1;
    if (size1 == size2) {
        n = size1;
    } else if (size1 == 1) {
        n = size2;
        step1 = 0;
    } else if (size2 == 1) {
        n = size1;
        step2 = 0;
    } else {
        return EDGEC_ARG_ERROR;
    }
    for (int32_t i = 0; i < n; i++) {
        const int32_t a = *input1 + p->input1_offset;
        const int32_t b = *input2 + p->input2_offset;
        input1 += step1;
        input2 += step2;
        output[i] = edgec_requantize_clamp(a * b, p->output_multiplier, p->output_shift, p->output_offset, p->act_min,
                                           p->act_max);
    }
    return EDGEC_OK;
}
