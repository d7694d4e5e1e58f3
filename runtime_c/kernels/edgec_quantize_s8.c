/*
 * QUANTIZE (float32 -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float32),
 * bit-exact with TFLite Micro: the models converted with a float interface
 * (the TFLite converter's default) start and end with these.
 *
 * float -> int8: q = roundf(x / scale) + zero_point, clamped, with TFLM's
 * single-precision division (a double division rounds differently near ties).
 * int8 -> float: scale * (q - zero_point) in single precision: the product of
 * a float and an integer of at most 9 bits is exact before its one rounding,
 * so this equals TFLM's double product cast to float.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <math.h>

#include "edgec_nn_support.h"

edgec_status edgec_quantize_f32_s8(const float *input, int32_t size, float scale, int32_t zero_point, int8_t *output)
{
    for (int32_t i = 0; i < size; i++) {
        float r = roundf(input[i] / scale);
        if (r != r) {
            r = 0.0f; /* NaN */
        }
        /* clamp before the conversion (out-of-range float -> int is undefined) */
        r = r < -1024.0f ? -1024.0f : (r > 1024.0f ? 1024.0f : r);
        const int32_t q = (int32_t)r + zero_point;
        output[i] = (int8_t)EDGEC_MIN(EDGEC_MAX(q, -128), 127);
    }
    return EDGEC_OK;
}

edgec_status edgec_requantize_s8(const int8_t *input, int32_t size, int32_t input_offset, int32_t multiplier,
                                 int32_t shift, int32_t output_offset, int8_t *output)
{
    for (int32_t i = 0; i < size; i++) {
        output[i] = edgec_requantize_clamp((int32_t)input[i] + input_offset, multiplier, shift, output_offset, -128, 127);
    }
    return EDGEC_OK;
}

edgec_status edgec_dequantize_s8_f32(const int8_t *input, int32_t size, float scale, int32_t zero_point, float *output)
{
    for (int32_t i = 0; i < size; i++) {
        output[i] = scale * (float)((int32_t)input[i] - zero_point);
    }
    return EDGEC_OK;
}
