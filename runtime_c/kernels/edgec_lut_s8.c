/*
 * Table lookup for elementwise int8 functions (LOGISTIC, TANH, or any other
 * int8 -> int8 map the compiler tabulates with edgec/qmath.py).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

edgec_status edgec_lut_s8(const int8_t *input, int32_t size, const int8_t *lut, int8_t *output)
{
    for (int32_t i = 0; i < size; i++) {
        output[i] = lut[(int32_t)input[i] + 128];
    }
    return EDGEC_OK;
}
