/*
 * int8 fully connected, bit-exact with TFLite Micro's FullyConnected
 * (per-tensor) and FullyConnectedPerChannel.
 *
 * DSP path: two weight rows at a time share each widened input word
 * (SXTAB16 adds the input offset for free); per 4 steps of both rows: 3 loads,
 * 6 SXT(A)B16, 4 SMLAD. No scratch.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

edgec_status edgec_fully_connected_s8(const edgec_fc_params *params, const edgec_quant_params *quant, int32_t batches,
                                      int32_t accum_depth, int32_t output_depth, const int8_t *input,
                                      const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (batches < 0 || accum_depth < 0 || output_depth < 0) {
        return EDGEC_ARG_ERROR;
    }
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int32_t in_offset = params->input_offset;
    const int32_t w_offset = params->filter_offset;

    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + b * accum_depth;
        int8_t *out = output + b * output_depth;
        const int32_t *mult = quant->multiplier;
        const int32_t *shift = quant->shift;
        int32_t oc = 0;
#if EDGEC_USE_DSP
        if (w_offset == 0) {
            const int32_t offset2 = edgec_dup_s16(in_offset);
            for (; oc + 1 < output_depth; oc += 2) {
                const int8_t *wa = filter + oc * accum_depth;
                const int8_t *wb = wa + accum_depth;
                const int8_t *xp = x;
                int32_t acc_a = 0, acc_b = 0;
                if (bias != NULL) {
                    acc_a = bias[oc];
                    acc_b = bias[oc + 1];
                }
                int32_t k = accum_depth >> 2;
                while (k-- > 0) {
                    int32_t x02, x13, w02, w13;
                    edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(xp), offset2, &x02, &x13);
                    xp += 4;
                    edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wa), &w02, &w13);
                    wa += 4;
                    acc_a = __smlad(x02, w02, acc_a);
                    acc_a = __smlad(x13, w13, acc_a);
                    edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wb), &w02, &w13);
                    wb += 4;
                    acc_b = __smlad(x02, w02, acc_b);
                    acc_b = __smlad(x13, w13, acc_b);
                }
                k = accum_depth & 3;
                while (k-- > 0) {
                    const int32_t xv = *xp++ + in_offset;
                    acc_a += *wa++ * xv;
                    acc_b += *wb++ * xv;
                }
                out[oc] = edgec_requantize_clamp(acc_a, mult[0], shift[0], params->output_offset, params->act_min,
                                                 params->act_max);
                out[oc + 1] = edgec_requantize_clamp(acc_b, mult[qstep], shift[qstep], params->output_offset,
                                                     params->act_min, params->act_max);
                mult += 2 * qstep;
                shift += 2 * qstep;
            }
        }
#endif
        for (; oc < output_depth; oc++) {
            const int8_t *w = filter + oc * accum_depth;
            int32_t acc = bias != NULL ? bias[oc] : 0;
            for (int32_t d = 0; d < accum_depth; d++) {
                acc += ((int32_t)w[d] + w_offset) * ((int32_t)x[d] + in_offset);
            }
            out[oc] = edgec_requantize_clamp(acc, *mult, *shift, params->output_offset, params->act_min,
                                             params->act_max);
            mult += qstep;
            shift += qstep;
        }
    }
    return EDGEC_OK;
}
