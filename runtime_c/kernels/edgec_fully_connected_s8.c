/*
 * int8 fully connected, bit-exact with TFLite Micro's FullyConnected
 * (per-tensor) and FullyConnectedPerChannel.
 *
 * DSP path: four weight rows at a time share each widened input word
 * (SXTAB16 adds the input offset for free); per 4 steps of the four rows: 5
 * loads, 10 SXT(A)B16, 8 SMLAD, in assembly on Arm (edgec_fc_dot4_asm), then
 * edgec_rq_fast when the layer allows it. Leftover rows two at a time in C.
 * With batch 1 every weight is used once, so the unpacking of the weights
 * (3 instructions per 4) bounds this kernel near 0.7 MACs per instruction.
 * No scratch.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

#if EDGEC_USE_DSP
/* acc[0..3] += rows w, w + k, w + 2k, w + 3k times (x + offset) over groups * 4 steps. */
#if EDGEC_ARM_ASM
void edgec_fc_dot4_asm(const int8_t *x, const int8_t *w, int32_t k, int32_t *acc, int32_t offset2, int32_t groups);

#define EDGEC_FC_ROW_ASM(acc, load)                                                                                    \
    load "sxtb16  lr, r12\n\t"                                                                                        \
    "sxtb16  r12, r12, ror #8\n\t"                                                                                    \
    "smlad   " acc ", lr, r10, " acc "\n\t"                                                                           \
    "smlad   " acc ", r12, r11, " acc "\n\t"
#define EDGEC_FC_GROUP_ASM                                                                                             \
    "ldr     r12, [r4], #4\n\t"                                                                                       \
    "sxtab16 r10, r8, r12\n\t"                                                                                        \
    "sxtab16 r11, r8, r12, ror #8\n\t"                                                                                \
    EDGEC_FC_ROW_ASM("r1", "ldr     r12, [r5, r7]\n\t")                                                               \
    EDGEC_FC_ROW_ASM("r0", "ldr     r12, [r5], #4\n\t")                                                               \
    EDGEC_FC_ROW_ASM("r3", "ldr     r12, [r6, r7]\n\t")                                                               \
    EDGEC_FC_ROW_ASM("r2", "ldr     r12, [r6], #4\n\t")

/* Stack: 40 bytes. */
__asm__(".syntax unified\n\t"
        ".thumb\n\t"
        ".text\n\t"
        ".p2align 2\n\t"
        ".global edgec_fc_dot4_asm\n\t"
        ".hidden edgec_fc_dot4_asm\n\t"
        ".type edgec_fc_dot4_asm, %function\n\t"
        ".thumb_func\n"
        "edgec_fc_dot4_asm:\n\t"
        "push    {r3, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "mov     r4, r0\n\t"
        "mov     r5, r1\n\t"
        "add     r6, r1, r2, lsl #1\n\t"
        "mov     r7, r2\n\t"
        "ldrd    r8, r9, [sp, #40]\n\t"
        "ldm     r3, {r0, r1, r2, r3}\n\t"
        "tst     r9, #1\n\t"
        "beq     2f\n\t" EDGEC_FC_GROUP_ASM "2:\n\t"
        "lsrs    r9, r9, #1\n\t"
        "beq     4f\n"
        "3:\n\t" EDGEC_FC_GROUP_ASM EDGEC_FC_GROUP_ASM "subs    r9, r9, #1\n\t"
        "bne     3b\n"
        "4:\n\t"
        "ldr     r12, [sp]\n\t"
        "stm     r12, {r0, r1, r2, r3}\n\t"
        "pop     {r3, r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
        ".size edgec_fc_dot4_asm, .-edgec_fc_dot4_asm\n");
#else
static void edgec_fc_dot4_asm(const int8_t *x, const int8_t *w, int32_t k, int32_t *acc, int32_t offset2,
                              int32_t groups)
{
    for (int32_t g = 0; g < groups; g++, x += 4, w += 4) {
        int32_t xl, xh;
        edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(x), offset2, &xl, &xh);
        for (int32_t r = 0; r < 4; r++) {
            int32_t wl, wh;
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(w + r * k), &wl, &wh);
            acc[r] = __smlad(wl, xl, __smlad(wh, xh, acc[r]));
        }
    }
}
#endif
#endif

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
            edgec_nn_rq rq;
            edgec_nn_rq_init(&rq, quant, output_depth, bias, accum_depth, params->output_offset, params->act_min,
                             params->act_max);
            const int32_t groups = accum_depth >> 2, rem = accum_depth & 3;
            for (; oc + 3 < output_depth; oc += 4) {
                const int8_t *w = filter + oc * accum_depth;
                int32_t acc[4] = {0, 0, 0, 0};
                if (bias != NULL) {
                    acc[0] = bias[oc];
                    acc[1] = bias[oc + 1];
                    acc[2] = bias[oc + 2];
                    acc[3] = bias[oc + 3];
                }
                if (groups > 0) {
                    edgec_fc_dot4_asm(x, w, accum_depth, acc, offset2, groups);
                }
                for (int32_t d = accum_depth - rem; d < accum_depth; d++) {
                    const int32_t xv = x[d] + in_offset;
                    for (int32_t r = 0; r < 4; r++) {
                        acc[r] += w[r * accum_depth + d] * xv;
                    }
                }
                for (int32_t r = 0; r < 4; r++) {
                    out[oc + r] = edgec_nn_rq_one(&rq, oc + r, acc[r]);
                }
            }
            mult += oc * qstep;
            shift += oc * qstep;
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
