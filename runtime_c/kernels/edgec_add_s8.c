/*
 * int8 ADD, bit-exact with TFLite Micro's reference_integer_ops::Add: each
 * input is offset, shifted left by params->left_shift (20), scaled to the
 * common scale, summed, and requantized to the output.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

/* The scaled contribution of one input element (TFLM's shifted/scaled_inputN_val). */
EDGEC_FORCE_INLINE int32_t edgec_add_scale_input(int32_t x, int32_t offset, int32_t left_shift, int32_t multiplier,
                                                 int32_t shift)
{
    return edgec_requantize(edgec_shl_wrap(x + offset, left_shift), multiplier, shift);
}

EDGEC_FORCE_INLINE int8_t edgec_add_output(const edgec_add_params *p, int32_t s1, int32_t s2)
{
    return edgec_requantize_clamp(s1 + s2, p->output_multiplier, p->output_shift, p->output_offset, p->act_min,
                                  p->act_max);
}

edgec_status edgec_add_s8(const edgec_add_params *params, const int8_t *input1, int32_t size1, const int8_t *input2,
                          int32_t size2, int8_t *output)
{
    const edgec_add_params *p = params;
    if (size1 == size2) {
        for (int32_t i = 0; i < size1; i++) {
            const int32_t s1 = edgec_add_scale_input(input1[i], p->input1_offset, p->left_shift,
                                                     p->input1_multiplier, p->input1_shift);
            const int32_t s2 = edgec_add_scale_input(input2[i], p->input2_offset, p->left_shift,
                                                     p->input2_multiplier, p->input2_shift);
            output[i] = edgec_add_output(p, s1, s2);
        }
        return EDGEC_OK;
    }
    if (size1 == 1) {
        /* The scalar's contribution is computed once. */
        const int32_t s1 = edgec_add_scale_input(input1[0], p->input1_offset, p->left_shift, p->input1_multiplier,
                                                 p->input1_shift);
        for (int32_t i = 0; i < size2; i++) {
            const int32_t s2 = edgec_add_scale_input(input2[i], p->input2_offset, p->left_shift,
                                                     p->input2_multiplier, p->input2_shift);
            output[i] = edgec_add_output(p, s1, s2);
        }
        return EDGEC_OK;
    }
    if (size2 == 1) {
        const int32_t s2 = edgec_add_scale_input(input2[0], p->input2_offset, p->left_shift, p->input2_multiplier,
                                                 p->input2_shift);
        for (int32_t i = 0; i < size1; i++) {
            const int32_t s1 = edgec_add_scale_input(input1[i], p->input1_offset, p->left_shift,
                                                     p->input1_multiplier, p->input1_shift);
            output[i] = edgec_add_output(p, s1, s2);
        }
        return EDGEC_OK;
    }
    return EDGEC_ARG_ERROR;
}
