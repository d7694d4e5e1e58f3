/*
 * int8 CONCATENATION along one axis: for each outer index, each input's
 * contiguous block of axis_sizes[i] * inner_size elements is copied in turn.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

edgec_status edgec_concat_s8(const int8_t *const *inputs, const int32_t *axis_sizes, int32_t num_inputs,
                             int32_t outer_size, int32_t inner_size, int8_t *output)
{
    if (num_inputs < 0 || outer_size < 0 || inner_size < 0) {
        return EDGEC_ARG_ERROR;
    }
    for (int32_t o = 0; o < outer_size; o++) {
        for (int32_t i = 0; i < num_inputs; i++) {
            const int32_t block = axis_sizes[i] * inner_size;
            memcpy(output, inputs[i] + o * block, (size_t)block);
            output += block;
        }
    }
    return EDGEC_OK;
}
