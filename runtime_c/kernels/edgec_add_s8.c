/*
 * int8 ADD, bit-exact with TFLite Micro's reference_integer_ops::Add: each
 * input is offset, shifted left by params->left_shift (20), scaled to the
 * common scale, summed, and requantized to the output.
 *
 * DSP builds use edgec_rq_fast for the three rescalings when the parameters
 * allow it (they do for every ADD TFLite's converter makes: input shifts in
 * [-23, 0], output shift in [-23, -1], left shift 20): about 20 instructions
 * per element instead of ~85.
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

#if EDGEC_USE_DSP
/* An input's rescaled value: (x + offset) << 20 times m, then >> e, as edgec_rq_fast
 * with the offset pre-shifted (c = offset << 21) and e possibly 0 (the input of the
 * larger scale: then no rounding term). With m = 2^30 and e = 0, the common case
 * for that input, SRDHM((x + offset) << 20, 2^30) is exactly (x + offset) << 19. */
EDGEC_FORCE_INLINE int32_t edgec_add_in(int32_t x, int32_t c, int32_t m, int32_t k, int32_t e, int32_t sign_mask,
                                        int exact)
{
    if (exact) {
        return (int32_t)((uint32_t)x << 19) + (c >> 2);
    }
    const int32_t x2 = (int32_t)((uint32_t)x << 21) + c;
    return edgec_smmlar(x2, m, k + ((x2 >> 31) & sign_mask)) >> e;
}

EDGEC_FORCE_INLINE void edgec_add_loop(const edgec_add_params *p, const int8_t *in1, int32_t step1,
                                       const int8_t *in2, int32_t step2, int8_t *out, int32_t n, int exact1,
                                       int exact2, int full)
{
    const int32_t e1 = -p->input1_shift, e2 = -p->input2_shift, eo = -p->output_shift;
    const int32_t m1 = p->input1_multiplier, m2 = p->input2_multiplier, mo = p->output_multiplier;
    const int32_t k1 = e1 ? 1 << (e1 - 1) : 0, k2 = e2 ? 1 << (e2 - 1) : 0;
    const int32_t s1m = e1 ? -1 : 0, s2m = e2 ? -1 : 0;
    const int32_t c1 = (int32_t)((uint32_t)p->input1_offset << 21), c2 = (int32_t)((uint32_t)p->input2_offset << 21);
    const int32_t ko = edgec_rq_k(p->output_offset, eo);
    const int32_t lo = p->act_min, hi = p->act_max;
    int8_t *const end = out + n;
    while (out < end) {
        const int32_t s1 = edgec_add_in(*in1, c1, m1, k1, e1, s1m, exact1);
        const int32_t s2 = edgec_add_in(*in2, c2, m2, k2, e2, s2m, exact2);
        in1 += step1;
        in2 += step2;
        *out++ = (int8_t)edgec_clamp_s8(edgec_rq_fast(s1 + s2, mo, ko, eo), lo, hi, full);
    }
}

#if EDGEC_ARM_ASM
/*
 * The common ADD (TFLite's converter gives the input of the larger scale the
 * multiplier 2^30 and shift 0, so its rescaling is exactly (x + offset) << 19;
 * both inputs full tensors; activation range all of int8) in assembly: 16
 * instructions per element (gcc: 26). a is the exact input, b the other.
 */
typedef struct {
    const int8_t *a;   /* 0 */
    const int8_t *b;   /* 4 */
    int8_t *out;       /* 8 */
    int8_t *end;       /* 12 */
    int32_t ca;        /* 16: offset_a << 19 */
    int32_t cb;        /* 20: offset_b << 21 */
    int32_t mb;        /* 24 */
    int32_t kb;        /* 28 */
    int32_t eb;        /* 32 */
    int32_t mo;        /* 36 */
    int32_t ko;        /* 40 */
    int32_t eo;        /* 44 */
} edgec_add_job;

void edgec_add_exact_asm(const edgec_add_job *job);

/* Stack: 36 bytes. */
__asm__(EDGEC_ASM_FUNC("edgec_add_exact_asm")
        "push    {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "ldm     r0!, {r1, r2, r3, r4, r5, r6, r7, r8}\n\t" /* a b out end ca cb mb kb */
        "ldm     r0, {r9, r10, r11, r12}\n\t"             /* eb mo ko eo */
        "cmp     r3, r4\n\t"
        "beq     2f\n"
        "1:\n\t"
        "ldrsb   lr, [r2], #1\n\t"
        "add     lr, r6, lr, lsl #21\n\t"
        "add     r0, r8, lr, asr #31\n\t"
        "smmlar  lr, lr, r7, r0\n\t"
        "asr     lr, lr, r9\n\t"
        "ldrsb   r0, [r1], #1\n\t"
        "add     r0, r5, r0, lsl #19\n\t"
        "add     r0, r0, lr\n\t"
        "lsl     r0, r0, #1\n\t"
        "add     lr, r11, r0, asr #31\n\t"
        "smmlar  r0, r0, r10, lr\n\t"
        "asr     r0, r0, r12\n\t"
        "ssat    r0, #8, r0\n\t"
        "strb    r0, [r3], #1\n\t"
        "cmp     r3, r4\n\t"
        "bne     1b\n"
        "2:\n\t"
        "pop     {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
        ".size edgec_add_exact_asm, .-edgec_add_exact_asm\n");
#endif

static int edgec_add_fast(const edgec_add_params *p, const int8_t *input1, int32_t size1, const int8_t *input2,
                          int32_t size2, int8_t *output)
{
    const int32_t e1 = -p->input1_shift, e2 = -p->input2_shift, eo = -p->output_shift;
    if (p->left_shift != 20 || e1 < 0 || e1 > 23 || e2 < 0 || e2 > 23 || eo < 1 || eo > 23 ||
        p->input1_multiplier < 0 || p->input2_multiplier < 0 || p->output_multiplier < 0 ||
        p->output_offset < -128 || p->output_offset > 127 || p->input1_offset < -255 || p->input1_offset > 255 ||
        p->input2_offset < -255 || p->input2_offset > 255) {
        return 0;
    }
    /* |(x + offset) << 20| < 2^29, so both rescaled inputs and their sum stay below 2^30. */
    const int full = p->act_min <= -128 && p->act_max >= 127;
    const int x1 = p->input1_multiplier == (1 << 30) && e1 == 0;
    const int x2 = p->input2_multiplier == (1 << 30) && e2 == 0;
    const int32_t n = EDGEC_MAX(size1, size2);
    const int32_t st1 = size1 == n ? 1 : 0, st2 = size2 == n ? 1 : 0;
#if EDGEC_ARM_ASM
    if (full && st1 && st2 && x1 != x2) {
        const int swap = x2; /* a is the exact input */
        const int32_t eb = swap ? e1 : e2;
        const edgec_add_job job = {swap ? input2 : input1, swap ? input1 : input2, output, output + n,
                                   (int32_t)((uint32_t)(swap ? p->input2_offset : p->input1_offset) << 19),
                                   (int32_t)((uint32_t)(swap ? p->input1_offset : p->input2_offset) << 21),
                                   swap ? p->input1_multiplier : p->input2_multiplier, eb ? 1 << (eb - 1) : 0,
                                   eb, p->output_multiplier, edgec_rq_k(p->output_offset, eo), eo};
        if (eb > 0) {
            edgec_add_exact_asm(&job);
            return 1;
        }
    }
#endif
    if (full && x1 && !x2) {
        edgec_add_loop(p, input1, st1, input2, st2, output, n, 1, 0, 1);
    } else if (full && !x1 && x2) {
        edgec_add_loop(p, input1, st1, input2, st2, output, n, 0, 1, 1);
    } else if (full) {
        edgec_add_loop(p, input1, st1, input2, st2, output, n, 0, 0, 1);
    } else {
        edgec_add_loop(p, input1, st1, input2, st2, output, n, 0, 0, 0);
    }
    return 1;
}
#endif

edgec_status edgec_add_s8(const edgec_add_params *params, const int8_t *input1, int32_t size1, const int8_t *input2,
                          int32_t size2, int8_t *output)
{
    const edgec_add_params *p = params;
    if (size1 != size2 && size1 != 1 && size2 != 1) {
        return EDGEC_ARG_ERROR;
    }
#if EDGEC_USE_DSP
    if (edgec_add_fast(p, input1, size1, input2, size2, output)) {
        return EDGEC_OK;
    }
#endif
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
