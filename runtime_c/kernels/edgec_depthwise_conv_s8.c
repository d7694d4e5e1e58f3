/*
 * Depthwise int8 convolution, bit-exact with TFLite Micro's
 * DepthwiseConvPerChannel.
 *
 * DSP path for 3x3, depth multiplier 1, dilation 1 (any stride, any padding),
 * the depthwise layers of MobileNets and DS-CNNs: four channels at a time,
 * channel group outermost so the group's weights, bias and requantisation
 * constants are prepared once on the stack (~170 bytes) for all its pixels.
 * Two taps of the same channel share one SMLAD: the input words of taps A and
 * B (four channels each) are re-paired with PKHBT/PKHTB and widened with the
 * input offset (SXTAB16) into (A_c, B_c) halfword pairs, against weights
 * pre-paired the same way: 14 instructions per 8 MACs, the ninth tap by
 * SMLABB/SMLATT. Border pixels run the same code on a window moved inside the
 * image with correspondingly moved weights (edgec_dw_variant). Output: edgec_rq_fast when the channel's
 * quantisation allows it.
 * Other shapes: direct loops, four channels in parallel with SMLABB/SMLATT.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "edgec_nn_support.h"

static void edgec_dw_generic(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                             const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                             const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims, int8_t *output,
                             int32_t c_begin);

#if EDGEC_USE_DSP
/* What one group of four channels needs, prepared once per group (stack). */
typedef struct {
    int32_t wp[4][4]; /* word 0: tap pairs (0,1) (2,3) (4,5) (6,7): per channel c (w_A[c], w_B[c]) */
    int32_t w8[2];    /* word 16: tap 8: (w[c0], w[c2]), (w[c1], w[c3]) */
    int32_t bias[4];  /* word 18 */
    int32_t rq[4][3]; /* word 22: per channel multiplier, k, e of edgec_rq_fast */
    int32_t fast;     /* edgec_rq_fast applies to the four channels */
} edgec_dw_group;

/* Two taps A, B (four channels each) against the pre-paired weights of pair j. */
#define EDGEC_DW_PAIR(A, B, j)                                                                                         \
    do {                                                                                                               \
        const int32_t xa = edgec_read_s8x4(A);                                                                         \
        const int32_t xb = edgec_read_s8x4(B);                                                                         \
        const int32_t lo = edgec_pkhbt16(xa, xb); /* a0 a1 b0 b1 */                                                   \
        const int32_t hi = edgec_pkhtb16(xa, xb); /* a2 a3 b2 b3 */                                                   \
        acc0 = __smlad(__sxtab16(offset2, lo), g->wp[j][0], acc0);                                                     \
        acc1 = __smlad(edgec_sxtab16_ror8(offset2, lo), g->wp[j][1], acc1);                                            \
        acc2 = __smlad(__sxtab16(offset2, hi), g->wp[j][2], acc2);                                                     \
        acc3 = __smlad(edgec_sxtab16_ror8(offset2, hi), g->wp[j][3], acc3);                                            \
    } while (0)

/* One output pixel of one group: the 3x3 window at p (row stride rs, column stride cs). */
EDGEC_FORCE_INLINE void edgec_dw3x3_px4(const edgec_dw_group *g, const int8_t *p, int32_t rs, int32_t cs,
                                        int32_t offset2, int32_t acc[4])
{
    int32_t acc0 = g->bias[0], acc1 = g->bias[1], acc2 = g->bias[2], acc3 = g->bias[3];
    const int8_t *r1 = p + rs;
    const int8_t *r2 = r1 + rs;
    EDGEC_DW_PAIR(p, p + cs, 0);
    EDGEC_DW_PAIR(p + 2 * cs, r1, 1);
    EDGEC_DW_PAIR(r1 + cs, r1 + 2 * cs, 2);
    EDGEC_DW_PAIR(r2, r2 + cs, 3);
    {
        const int32_t x = edgec_read_s8x4(r2 + 2 * cs);
        const int32_t x02 = __sxtab16(offset2, x);
        const int32_t x13 = edgec_sxtab16_ror8(offset2, x);
        acc0 = __smlabb(x02, g->w8[0], acc0);
        acc2 = __smlatt(x02, g->w8[0], acc2);
        acc1 = __smlabb(x13, g->w8[1], acc1);
        acc3 = __smlatt(x13, g->w8[1], acc3);
    }
    acc[0] = acc0;
    acc[1] = acc1;
    acc[2] = acc2;
    acc[3] = acc3;
}

/* Requantize and store one pixel of a group: out[0..3]. */
EDGEC_FORCE_INLINE void edgec_dw_store4(const edgec_dw_group *g, const int32_t acc[4], int8_t *out, int fast,
                                        const edgec_dw_conv_params *params, const edgec_quant_params *quant, int32_t c)
{
    if (fast) {
        out[0] = (int8_t)__ssat(edgec_rq_fast(acc[0], g->rq[0][0], g->rq[0][1], g->rq[0][2]), 8);
        out[1] = (int8_t)__ssat(edgec_rq_fast(acc[1], g->rq[1][0], g->rq[1][1], g->rq[1][2]), 8);
        out[2] = (int8_t)__ssat(edgec_rq_fast(acc[2], g->rq[2][0], g->rq[2][1], g->rq[2][2]), 8);
        out[3] = (int8_t)__ssat(edgec_rq_fast(acc[3], g->rq[3][0], g->rq[3][1], g->rq[3][2]), 8);
        return;
    }
    const int32_t qs = quant->per_channel ? 1 : 0;
    for (int32_t i = 0; i < 4; i++) {
        out[i] = edgec_requantize_clamp(acc[i], quant->multiplier[(c + i) * qs], quant->shift[(c + i) * qs],
                                        params->output_offset, params->act_min, params->act_max);
    }
}

/* A run of rows x n output pixels of one group (edgec_dw3x3_row_asm, edgec_dw_rows_c). */
typedef struct {
    const int8_t *p;           /* 0: window top-left of the first pixel, channel c */
    int8_t *out;               /* 4 */
    int32_t n;                 /* 8: pixels, > 0 */
    int32_t step;              /* 12: input advance per pixel */
    int32_t rs;                /* 16: input row stride */
    int32_t cs;                /* 20: input column stride */
    int32_t offset2;           /* 24 */
    const edgec_dw_group *g;   /* 28 */
    int32_t out_step;          /* 32 */
    int32_t rows;              /* 36: rows of n pixels, > 0 */
    int32_t p_row_step;        /* 40: input advance from the end of a row to the next */
    int32_t out_row_step;      /* 44: output advance from the end of a row to the next */
} edgec_dw_job;


#if EDGEC_ARM_ASM
/*
 * rows x n pixels of one group, fast requantisation and the full int8 range:
 * edgec_dw3x3_px4 + edgec_dw_store4 in assembly, ~110 instructions per pixel
 * (36 MACs; gcc's code needs ~150). Stack: 68 bytes.
 */
void edgec_dw3x3_row_asm(const edgec_dw_job *job);

#define EDGEC_DW_PAIR_ASM(woff)                                                                                        \
    "pkhbt   r12, r10, r11, lsl #16\n\t"                                                                              \
    "pkhtb   r10, r11, r10, asr #16\n\t"                                                                              \
    "sxtab16 r11, r7, r12\n\t"                                                                                        \
    "sxtab16 r12, r7, r12, ror #8\n\t"                                                                                \
    "ldrd    r9, lr, [r8, #" woff "]\n\t"                                                                             \
    "smlad   r0, r11, r9, r0\n\t"                                                                                     \
    "smlad   r1, r12, lr, r1\n\t"                                                                                     \
    "sxtab16 r11, r7, r10\n\t"                                                                                        \
    "sxtab16 r10, r7, r10, ror #8\n\t"                                                                                \
    "ldrd    r9, lr, [r8, #" woff "+8]\n\t"                                                                           \
    "smlad   r2, r11, r9, r2\n\t"                                                                                     \
    "smlad   r3, r10, lr, r3\n\t"

#define EDGEC_DW_RQ_ASM(acc, off)                                                                                      \
    "ldrd    r9, r10, [r8, #" off "]\n\t"                                                                             \
    "ldr     r11, [r8, #" off "+8]\n\t"                                                                               \
    "lsl     r12, " acc ", #1\n\t"                                                                                    \
    "add     r10, r10, r12, asr #31\n\t"                                                                              \
    "smmlar  " acc ", r12, r9, r10\n\t"                                                                               \
    "asr     " acc ", " acc ", r11\n\t"                                                                               \
    "ssat    " acc ", #8, " acc "\n\t"

__asm__(".syntax unified\n\t"
        ".thumb\n\t"
        ".text\n\t"
        ".p2align 2\n\t"
        ".global edgec_dw3x3_row_asm\n\t"
        ".hidden edgec_dw3x3_row_asm\n\t"
        ".type edgec_dw3x3_row_asm, %function\n\t"
        ".thumb_func\n"
        "edgec_dw3x3_row_asm:\n\t"
        "push    {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "sub     sp, sp, #32\n\t"
        /* frame: 0 pixels left in the row, 4 out, 8 step, 12 out_step, 16 n, 20 rows left,
         * 24 p_row_step, 28 out_row_step */
        "ldrd    r4, r1, [r0, #0]\n\t"
        "str     r1, [sp, #4]\n\t"
        "ldrd    r1, r2, [r0, #8]\n\t"
        "str     r1, [sp, #0]\n\t"
        "str     r2, [sp, #8]\n\t"
        "str     r1, [sp, #16]\n\t"
        "ldr     r1, [r0, #32]\n\t"
        "str     r1, [sp, #12]\n\t"
        "ldrd    r1, r2, [r0, #36]\n\t"
        "str     r1, [sp, #20]\n\t"
        "str     r2, [sp, #24]\n\t"
        "ldr     r1, [r0, #44]\n\t"
        "str     r1, [sp, #28]\n\t"
        "ldrd    r5, r6, [r0, #16]\n\t"
        "ldrd    r7, r8, [r0, #24]\n"
        "1:\n\t"
        "add     lr, r8, #72\n\t"
        "ldm     lr, {r0, r1, r2, r3}\n\t"
        "ldr     r10, [r4]\n\t"
        "ldr     r11, [r4, r6]\n\t" EDGEC_DW_PAIR_ASM("0")
        "ldr     r10, [r4, r6, lsl #1]\n\t"
        "add     r4, r4, r5\n\t"
        "ldr     r11, [r4]\n\t" EDGEC_DW_PAIR_ASM("16")
        "ldr     r10, [r4, r6]\n\t"
        "ldr     r11, [r4, r6, lsl #1]\n\t"
        "add     r4, r4, r5\n\t" EDGEC_DW_PAIR_ASM("32")
        "ldr     r10, [r4]\n\t"
        "ldr     r11, [r4, r6]\n\t" EDGEC_DW_PAIR_ASM("48")
        "ldr     r10, [r4, r6, lsl #1]\n\t"
        "sxtab16 r11, r7, r10\n\t"
        "sxtab16 r10, r7, r10, ror #8\n\t"
        "ldrd    r12, lr, [r8, #64]\n\t"
        "smlabb  r0, r11, r12, r0\n\t"
        "smlatt  r2, r11, r12, r2\n\t"
        "smlabb  r1, r10, lr, r1\n\t"
        "smlatt  r3, r10, lr, r3\n\t"
        EDGEC_DW_RQ_ASM("r0", "88")
        EDGEC_DW_RQ_ASM("r1", "100")
        EDGEC_DW_RQ_ASM("r2", "112")
        EDGEC_DW_RQ_ASM("r3", "124")
        "ldrd    lr, r12, [sp, #4]\n\t"
        "strb    r0, [lr]\n\t"
        "strb    r1, [lr, #1]\n\t"
        "strb    r2, [lr, #2]\n\t"
        "strb    r3, [lr, #3]\n\t"
        "ldr     r9, [sp, #12]\n\t"
        "add     lr, lr, r9\n\t"
        "str     lr, [sp, #4]\n\t"
        "sub     r4, r4, r5, lsl #1\n\t"
        "add     r4, r4, r12\n\t"
        "ldr     r9, [sp, #0]\n\t"
        "subs    r9, r9, #1\n\t"
        "str     r9, [sp, #0]\n\t"
        "bne     1b\n\t"
        /* next row */
        "ldrd    r9, r10, [sp, #16]\n\t"
        "subs    r10, r10, #1\n\t"
        "beq     5f\n\t"
        "strd    r9, r10, [sp, #16]\n\t"
        "str     r9, [sp, #0]\n\t"
        "ldrd    r9, r10, [sp, #24]\n\t"
        "add     r4, r4, r9\n\t"
        "ldr     lr, [sp, #4]\n\t"
        "add     lr, lr, r10\n\t"
        "str     lr, [sp, #4]\n\t"
        "b       1b\n"
        "5:\n\t"
        "add     sp, sp, #32\n\t"
        "pop     {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
        ".size edgec_dw3x3_row_asm, .-edgec_dw3x3_row_asm\n");
#endif

/* The C version of edgec_dw3x3_row_asm (host builds; on Arm the layers whose
 * requantisation is not fast), out of line to keep its temporaries out of the
 * caller's frame. */
static EDGEC_NOINLINE void edgec_dw_rows_c(const edgec_dw_job *job, int fast, const edgec_dw_conv_params *params,
                                           const edgec_quant_params *quant, int32_t c)
{
    const int8_t *p = job->p;
    int8_t *o = job->out;
    for (int32_t r = 0; r < job->rows; r++) {
        for (int32_t i = 0; i < job->n; i++, p += job->step, o += job->out_step) {
            int32_t acc[4];
            edgec_dw3x3_px4(job->g, p, job->rs, job->cs, job->offset2, acc);
#if EDGEC_ARM_ASM
            (void)fast;
            edgec_dw_store4(job->g, acc, o, 0, params, quant, c);
#else
            if (fast) {
                edgec_dw_store4(job->g, acc, o, 1, params, quant, c);
            } else {
                edgec_dw_store4(job->g, acc, o, 0, params, quant, c);
            }
#endif
        }
        p += job->p_row_step;
        o += job->out_row_step;
    }
}

#define EDGEC_DW_PACK_PAIR(j, pa, pb)                                                                                  \
    do {                                                                                                               \
        const int32_t a = edgec_read_s8x4(pa), b = edgec_read_s8x4(pb);                                               \
        const int32_t lo = edgec_pkhbt16(a, b), hi = edgec_pkhtb16(a, b);                                              \
        g->wp[j][0] = __sxtb16(lo);                                                                                    \
        g->wp[j][1] = edgec_sxtb16_ror8(lo);                                                                           \
        g->wp[j][2] = __sxtb16(hi);                                                                                    \
        g->wp[j][3] = edgec_sxtb16_ror8(hi);                                                                           \
    } while (0)

/* The group's weights moved by (sy, sx): tap (ky, kx) is the filter's tap
 * (ky + sy, kx + sx), or zeros outside the 3x3 window. */
static EDGEC_NOINLINE void edgec_dw_pack(edgec_dw_group *g, const int8_t *filter, int32_t channels, int32_t c,
                                         int32_t sy, int32_t sx)
{
    static const int8_t zero4[4] = {0, 0, 0, 0};
    const int8_t *tap[9];
    const int8_t *w = filter + c;
    for (int32_t ky = 0; ky < 3; ky++) {
        const int32_t y = ky + sy;
        const int8_t *row = w + 3 * y * channels;
        const int row_in = (uint32_t)y < 3u;
        tap[3 * ky] = row_in && sx >= 0 ? row + sx * channels : zero4;
        tap[3 * ky + 1] = row_in ? row + (1 + sx) * channels : zero4;
        tap[3 * ky + 2] = row_in && sx <= 0 ? row + (2 + sx) * channels : zero4;
    }
    EDGEC_DW_PACK_PAIR(0, tap[0], tap[1]);
    EDGEC_DW_PACK_PAIR(1, tap[2], tap[3]);
    EDGEC_DW_PACK_PAIR(2, tap[4], tap[5]);
    EDGEC_DW_PACK_PAIR(3, tap[6], tap[7]);
    const int32_t w8 = edgec_read_s8x4(tap[8]);
    g->w8[0] = __sxtb16(w8);
    g->w8[1] = edgec_sxtb16_ror8(w8);
}

static EDGEC_NOINLINE void edgec_dw_group_prepare(edgec_dw_group *g, const int8_t *filter, int32_t channels, int32_t c,
                                   const int32_t *bias, const edgec_quant_params *quant, int32_t out_offset)
{
    (void)filter;
    (void)channels;
    g->fast = 1;
    const int32_t qs = quant->per_channel ? 1 : 0;
    for (int32_t i = 0; i < 4; i++) {
        const int32_t b = bias != NULL ? bias[c + i] : 0;
        const int32_t m = quant->multiplier[(c + i) * qs];
        const int32_t e = -quant->shift[(c + i) * qs];
        g->bias[i] = b;
        g->rq[i][0] = m;
        g->rq[i][2] = e;
        if (e < 1 || e > 23 || m < 0 || b >= EDGEC_RQ_MAX_ACC / 2 || b <= -EDGEC_RQ_MAX_ACC / 2 ||
            out_offset < -128 || out_offset > 127) {
            g->fast = 0;
            g->rq[i][1] = 0;
        } else {
            g->rq[i][1] = edgec_rq_k(out_offset, e);
        }
    }
}

/* 3x3, depth multiplier 1, dilation 1: channel groups [0, channels & ~3). */
/*
 * Border pixels need no special code: a window that sticks out of the image by
 * sy rows (sy > 0 above, < 0 below) and sx columns (|sy|, |sx| <= 1) is moved
 * inside by that much, and run with weights moved the other way, zero where a
 * tap fell outside (the padding taps contribute nothing: x + input_offset = 0
 * there): edgec_dw_pack(sy, sx).
 */
/* How far a window starting at i (3 taps) must move to lie inside [0, n). */
static inline int32_t edgec_dw_shift(int32_t i, int32_t n)
{
    return i < 0 ? -i : (i + 3 > n ? n - 3 - i : 0);
}

/* 3x3, depth multiplier 1, dilation 1, input at least 3x3, padding at most 1 on
 * every side: channel groups [0, channels & ~3). */
static EDGEC_NOINLINE edgec_status edgec_dw3x3_dsp(const edgec_dw_conv_params *params,
                                                    const edgec_quant_params *quant, const edgec_dims *input_dims,
                                                    const int8_t *input, const edgec_dims *filter_dims,
                                                    const int8_t *filter, const int32_t *bias,
                                                    const edgec_dims *output_dims, int8_t *output)
{
    /* Few named values (the dims are read through their pointers): this keeps the
     * frame, the group and the job small enough for the 512-byte stack budget. */
    edgec_dw_group g;
    edgec_dw_job job;
    const int32_t C = input_dims->c;
    const int32_t sh = params->stride.h, sw = params->stride.w;
    /* Interior output range [oy0, oy1) x [ox0, ox1): the whole 3x3 window inside the image. */
    const int32_t oy0 = EDGEC_MIN((params->padding.h + sh - 1) / sh, output_dims->h);
    const int32_t ox0 = EDGEC_MIN((params->padding.w + sw - 1) / sw, output_dims->w);
    const int32_t oy1 =
        EDGEC_MIN(EDGEC_MAX((input_dims->h - 3 + params->padding.h) / sh + 1, oy0), output_dims->h);
    const int32_t ox1 =
        EDGEC_MIN(EDGEC_MAX((input_dims->w - 3 + params->padding.w) / sw + 1, ox0), output_dims->w);
    job.rs = input_dims->w * C;
    job.cs = C;
    job.offset2 = edgec_dup_s16(params->input_offset);
    job.g = &g;
    job.out_step = C;
    job.step = sw * C;
    const int full = params->act_min <= -128 && params->act_max >= 127;

    for (int32_t b = 0; b < input_dims->n; b++) {
        for (int32_t c = 0; c + 3 < C; c += 4) {
            edgec_dw_group_prepare(&g, filter, C, c, bias, quant, params->output_offset);
            edgec_dw_pack(&g, filter, C, c, 0, 0);
            const int fast = g.fast && full;
            int32_t cur = 0; /* the shift (sy, sx) g's weights are packed for, as 4 * sy + sx */
            /* Row blocks: each border row alone (its own shift), the interior rows together;
             * the same for columns. Every (row block, column block) is one segment. */
            for (int32_t ry = 0; ry < output_dims->h;) {
                const int32_t nry = (ry == oy0 && oy1 > oy0) ? oy1 - oy0 : 1;
                const int32_t iy = ry * sh - params->padding.h;
                const int32_t sy = edgec_dw_shift(iy, input_dims->h);
                for (int32_t rx = 0; rx < output_dims->w;) {
                    const int32_t nrx = (rx == ox0 && ox1 > ox0) ? ox1 - ox0 : 1;
                    const int32_t ix = rx * sw - params->padding.w;
                    const int32_t sx = edgec_dw_shift(ix, input_dims->w);
                    if (4 * sy + sx != cur) {
                        edgec_dw_pack(&g, filter, C, c, sy, sx);
                        cur = 4 * sy + sx;
                    }
                    job.p = input + ((b * input_dims->h + iy + sy) * input_dims->w + ix + sx) * C + c;
                    job.out = output + ((b * output_dims->h + ry) * output_dims->w + rx) * C + c;
                    job.n = nrx;
                    job.rows = nry;
                    job.p_row_step = sh * job.rs - nrx * job.step;
                    job.out_row_step = (output_dims->w - nrx) * C;
#if EDGEC_ARM_ASM
                    if (fast) {
                        edgec_dw3x3_row_asm(&job);
                    } else
#endif
                    {
                        edgec_dw_rows_c(&job, fast, params, quant, c);
                    }
                    rx += nrx;
                }
                ry += nry;
            }
        }
    }
    if (C & 3) {
        edgec_dw_generic(params, quant, input_dims, input, filter_dims, filter, bias, output_dims, output, C & ~3);
    }
    return EDGEC_OK;
}
#endif /* EDGEC_USE_DSP */

/* Output channels [c, c_end) of one output pixel, depth multiplier 1, taps
 * [ky0, ky1) x [kx0, kx1). in_px points at the input pixel of tap (0, 0)
 * (possibly outside the image: only valid taps are dereferenced). */
/* Kept out of line: inlined into the pixel loop it needs > 256 bytes of stack. */
static EDGEC_NOINLINE void edgec_dw_pixel_dm1(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                               int32_t c_begin, int32_t channels,
                               int32_t in_row_stride, const int8_t *in_px, const int8_t *filter, int32_t kw,
                               int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, const int32_t *bias, int8_t *out)
{
    const int32_t dil_h = params->dilation.h;
    const int32_t dil_w = params->dilation.w;
    const int32_t in_offset = params->input_offset;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    int32_t c = c_begin;

#if EDGEC_USE_DSP
    const int32_t offset2 = edgec_dup_s16(in_offset);
    for (; c + 3 < channels; c += 4) {
        int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        if (bias != NULL) {
            acc0 = bias[c];
            acc1 = bias[c + 1];
            acc2 = bias[c + 2];
            acc3 = bias[c + 3];
        }
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const int8_t *in_row = in_px + ky * dil_h * in_row_stride + c;
            const int8_t *w_row = filter + ky * kw * channels + c;
            for (int32_t kx = kx0; kx < kx1; kx++) {
                int32_t x02, x13, w02, w13;
                edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(in_row + kx * dil_w * channels), offset2, &x02, &x13);
                edgec_s8x4_to_s16x2x2(edgec_read_s8x4(w_row + kx * channels), &w02, &w13);
                acc0 = __smlabb(x02, w02, acc0);
                acc2 = __smlatt(x02, w02, acc2);
                acc1 = __smlabb(x13, w13, acc1);
                acc3 = __smlatt(x13, w13, acc3);
            }
        }
        const int32_t *m = quant->multiplier + c * qstep;
        const int32_t *s = quant->shift + c * qstep;
        const int32_t o = params->output_offset;
        out[c] = edgec_requantize_clamp(acc0, m[0], s[0], o, params->act_min, params->act_max);
        out[c + 1] = edgec_requantize_clamp(acc1, m[qstep], s[qstep], o, params->act_min, params->act_max);
        out[c + 2] = edgec_requantize_clamp(acc2, m[2 * qstep], s[2 * qstep], o, params->act_min, params->act_max);
        out[c + 3] = edgec_requantize_clamp(acc3, m[3 * qstep], s[3 * qstep], o, params->act_min, params->act_max);
    }
#endif
    for (; c < channels; c++) {
        int32_t acc = bias != NULL ? bias[c] : 0;
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const int8_t *in_row = in_px + ky * dil_h * in_row_stride + c;
            const int8_t *w_row = filter + ky * kw * channels + c;
            for (int32_t kx = kx0; kx < kx1; kx++) {
                acc += (int32_t)w_row[kx * channels] * ((int32_t)in_row[kx * dil_w * channels] + in_offset);
            }
        }
        out[c] = edgec_requantize_clamp(acc, quant->multiplier[c * qstep], quant->shift[c * qstep],
                                        params->output_offset, params->act_min, params->act_max);
    }
}

/* 3x3, depth multiplier 1, dilation 1, all nine taps inside the image. */
static EDGEC_NOINLINE void edgec_dw_pixel_3x3_inner(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                                     int32_t c_begin, int32_t channels, int32_t in_row_stride, const int8_t *in_px,
                                     const int8_t *filter, const int32_t *bias, int8_t *out)
{
    const int32_t in_offset = params->input_offset;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int32_t cs = channels;
    const int32_t rs = in_row_stride;
    int32_t c = c_begin;

#if EDGEC_USE_DSP
    const int32_t offset2 = edgec_dup_s16(in_offset);
    for (; c + 3 < channels; c += 4) {
        int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        if (bias != NULL) {
            acc0 = bias[c];
            acc1 = bias[c + 1];
            acc2 = bias[c + 2];
            acc3 = bias[c + 3];
        }
        const int8_t *ip = in_px + c;
        const int8_t *wp = filter + c;
        for (int32_t ky = 0; ky < 3; ky++) {
            int32_t x02, x13, w02, w13;
            edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(ip), offset2, &x02, &x13);
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wp), &w02, &w13);
            acc0 = __smlabb(x02, w02, acc0);
            acc2 = __smlatt(x02, w02, acc2);
            acc1 = __smlabb(x13, w13, acc1);
            acc3 = __smlatt(x13, w13, acc3);
            edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(ip + cs), offset2, &x02, &x13);
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wp + cs), &w02, &w13);
            acc0 = __smlabb(x02, w02, acc0);
            acc2 = __smlatt(x02, w02, acc2);
            acc1 = __smlabb(x13, w13, acc1);
            acc3 = __smlatt(x13, w13, acc3);
            edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(ip + 2 * cs), offset2, &x02, &x13);
            edgec_s8x4_to_s16x2x2(edgec_read_s8x4(wp + 2 * cs), &w02, &w13);
            acc0 = __smlabb(x02, w02, acc0);
            acc2 = __smlatt(x02, w02, acc2);
            acc1 = __smlabb(x13, w13, acc1);
            acc3 = __smlatt(x13, w13, acc3);
            ip += rs;
            wp += 3 * cs;
        }
        const int32_t *m = quant->multiplier + c * qstep;
        const int32_t *s = quant->shift + c * qstep;
        const int32_t o = params->output_offset;
        out[c] = edgec_requantize_clamp(acc0, m[0], s[0], o, params->act_min, params->act_max);
        out[c + 1] = edgec_requantize_clamp(acc1, m[qstep], s[qstep], o, params->act_min, params->act_max);
        out[c + 2] = edgec_requantize_clamp(acc2, m[2 * qstep], s[2 * qstep], o, params->act_min, params->act_max);
        out[c + 3] = edgec_requantize_clamp(acc3, m[3 * qstep], s[3 * qstep], o, params->act_min, params->act_max);
    }
#endif
    for (; c < channels; c++) {
        const int8_t *ip = in_px + c;
        const int8_t *wp = filter + c;
        int32_t acc = bias != NULL ? bias[c] : 0;
        for (int32_t ky = 0; ky < 3; ky++) {
            acc += (int32_t)wp[0] * ((int32_t)ip[0] + in_offset);
            acc += (int32_t)wp[cs] * ((int32_t)ip[cs] + in_offset);
            acc += (int32_t)wp[2 * cs] * ((int32_t)ip[2 * cs] + in_offset);
            ip += rs;
            wp += 3 * cs;
        }
        out[c] = edgec_requantize_clamp(acc, quant->multiplier[c * qstep], quant->shift[c * qstep],
                                        params->output_offset, params->act_min, params->act_max);
    }
}


edgec_status edgec_depthwise_conv_s8(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                                     const edgec_dims *input_dims, const int8_t *input, const edgec_dims *filter_dims,
                                     const int8_t *filter, const int32_t *bias, const edgec_dims *output_dims,
                                     int8_t *output)
{
    const int32_t dm = params->depth_multiplier;
    const int32_t out_c = output_dims->c;
    if (dm <= 0 || out_c != input_dims->c * dm || filter_dims->c != out_c || input_dims->n != output_dims->n ||
        params->stride.h <= 0 || params->stride.w <= 0 || params->dilation.h <= 0 || params->dilation.w <= 0) {
        return EDGEC_ARG_ERROR;
    }
#if EDGEC_USE_DSP
    /* 3x3, depth multiplier 1, dilation 1, padding <= 1 (the MobileNet / DS-CNN layers) */
    if (filter_dims->h == 3 && filter_dims->w == 3 && dm == 1 && params->dilation.h == 1 &&
        params->dilation.w == 1 && out_c >= 4 && input_dims->h >= 3 && input_dims->w >= 3 &&
        params->padding.h <= 1 && params->padding.w <= 1 &&
        (output_dims->h - 1) * params->stride.h - params->padding.h + 3 <= input_dims->h + 1 &&
        (output_dims->w - 1) * params->stride.w - params->padding.w + 3 <= input_dims->w + 1) {
        /* a tail call: this frame does not add to the stack */
        return edgec_dw3x3_dsp(params, quant, input_dims, input, filter_dims, filter, bias, output_dims, output);
    }
#endif
    edgec_dw_generic(params, quant, input_dims, input, filter_dims, filter, bias, output_dims, output, 0);
    return EDGEC_OK;
}

/* Any shape: direct loops, the window clipped to the image once per output pixel. */
static EDGEC_NOINLINE void edgec_dw_generic(const edgec_dw_conv_params *params, const edgec_quant_params *quant,
                                            const edgec_dims *input_dims, const int8_t *input,
                                            const edgec_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                            const edgec_dims *output_dims, int8_t *output, int32_t c_begin)
{
    const int32_t dm = params->depth_multiplier;
    const int32_t in_c = input_dims->c;
    const int32_t out_c = output_dims->c;
    const int32_t kh = filter_dims->h;
    const int32_t kw = filter_dims->w;
    const int32_t dil_h = params->dilation.h;
    const int32_t dil_w = params->dilation.w;
    const int32_t in_row_stride = input_dims->w * in_c;
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int is_3x3 = kh == 3 && kw == 3 && dm == 1 && dil_h == 1 && dil_w == 1;

    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_b = input + b * input_dims->h * in_row_stride;
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            const int32_t in_y0 = oy * params->stride.h - params->padding.h;
            int32_t ky0 = 0, ky1 = kh;
            while (ky0 < kh && in_y0 + ky0 * dil_h < 0) {
                ky0++;
            }
            while (ky1 > ky0 && in_y0 + (ky1 - 1) * dil_h >= input_dims->h) {
                ky1--;
            }
            for (int32_t ox = 0; ox < output_dims->w; ox++) {
                const int32_t in_x0 = ox * params->stride.w - params->padding.w;
                int32_t kx0 = 0, kx1 = kw;
                while (kx0 < kw && in_x0 + kx0 * dil_w < 0) {
                    kx0++;
                }
                while (kx1 > kx0 && in_x0 + (kx1 - 1) * dil_w >= input_dims->w) {
                    kx1--;
                }
                int8_t *out = output + ((b * output_dims->h + oy) * output_dims->w + ox) * out_c;
                /* The first in-image tap (no pointer is formed outside the tensor). */
                const int8_t *in_px = (ky0 < ky1 && kx0 < kx1)
                                          ? in_b + (in_y0 + ky0 * dil_h) * in_row_stride + (in_x0 + kx0 * dil_w) * in_c
                                          : in_b;
                if (dm == 1) {
                    if (is_3x3 && ky0 == 0 && ky1 == 3 && kx0 == 0 && kx1 == 3) {
                        edgec_dw_pixel_3x3_inner(params, quant, c_begin, out_c, in_row_stride, in_px, filter, bias, out);
                    } else {
                        /* Rebase so tap (ky0, kx0) is at in_px and the filter starts there too. */
                        edgec_dw_pixel_dm1(params, quant, c_begin, out_c, in_row_stride, in_px,
                                           filter + (ky0 * kw + kx0) * out_c, kw, 0, ky1 - ky0, 0, kx1 - kx0, bias,
                                           out);
                    }
                    continue;
                }
                /* Depth multiplier > 1: output channel oc reads input channel oc / dm. */
                for (int32_t ic = 0; ic < in_c; ic++) {
                    for (int32_t m = 0; m < dm; m++) {
                        const int32_t oc = ic * dm + m;
                        int32_t acc = bias != NULL ? bias[oc] : 0;
                        for (int32_t ky = ky0; ky < ky1; ky++) {
                            const int8_t *in_row = in_b + (in_y0 + ky * dil_h) * in_row_stride + ic;
                            const int8_t *w_row = filter + ky * kw * out_c + oc;
                            for (int32_t kx = kx0; kx < kx1; kx++) {
                                acc += (int32_t)w_row[kx * out_c] *
                                       ((int32_t)in_row[(in_x0 + kx * dil_w) * in_c] + params->input_offset);
                            }
                        }
                        out[oc] = edgec_requantize_clamp(acc, quant->multiplier[oc * qstep], quant->shift[oc * qstep],
                                                         params->output_offset, params->act_min, params->act_max);
                    }
                }
            }
        }
    }
}
