/*
 * int8 fully connected, bit-exact with TFLite Micro's FullyConnected
 * (per-tensor) and FullyConnectedPerChannel.
 *
 * DSP path (edgec_fc_rows_asm). With batch 1 every weight is used once, so the
 * kernel is bound by unpacking the weights: per 8 weights of a row LDRD, 4
 * SXTB16 and 4 SMLAD, 9 instructions for 8 MACs (0.89 MACs per instruction)
 * whatever else is done. The rest is amortised:
 * - the input (+ offset) is widened to int16 pairs once per chunk of
 *   EDGEC_FC_CHUNK inputs into the routine's stack frame (SXTAB16: 9
 *   instructions per 8 inputs), not once per group of rows;
 * - a group is three rows x 8 inputs: one LDMDB of the 8 widened inputs and
 *   three rows of 9, 28 instructions for 24 MACs (0.857); 226 per eight groups
 *   with the loop test (0.850). Three rows are what the registers hold: 3
 *   accumulators, 4 input words, 3 weight words (LDRD + a temporary), 3 row
 *   pointers and the input pointer take all 14, so the loop test is
 *   `cmp sp, lr`: the widened chunk ends at the stack pointer and is read
 *   downwards, the rows too;
 * - the requantisation (edgec_rq_fast per tensor, SSAT) and the byte stores
 *   are in the routine: 35 instructions per block of three rows with the
 *   block's setup, about 12 per row (about 50 with the requantisation in C
 *   after each group of rows). Rows not a multiple of three: the last block
 *   overlaps the one before (up to two rows computed twice, no tail path).
 * No per-layer bias check either: the doubling of the accumulators (ADDS) sets
 * V when one is outside edgec_rq_fast's range, and the call then falls back to
 * the requantisation in C.
 * Layers deeper than EDGEC_FC_CHUNK inputs or whose requantisation the routine
 * does not do (per channel, generic, depth % 8 == 4) run in passes of
 * EDGEC_FC_ROWS rows whose int32 accumulators stay in edgec_fc_dsp's frame
 * (the stack budget, 512 bytes per call, sets both sizes). Needs no scratch.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stddef.h>

#include "edgec_nn_support.h"

#if EDGEC_USE_DSP
#define EDGEC_FC_CHUNK 128 /* inputs widened at a time: 2 * 128 bytes of the routine's frame */
#define EDGEC_FC_ROWS 18   /* rows per pass when the accumulators go through memory (a multiple of 3) */

/*
 * One pass of edgec_fc_rows_asm over rows top, top - 3, ..., 0 (three at a
 * time; the last block starts at 0 even when top is not a multiple of 3) and
 * over the first `left` inputs (a multiple of 8) in chunks of at most
 * EDGEC_FC_CHUNK; row r's weights start at w_end + r * stride (4-byte aligned).
 * The accumulators start at init[r] (0 when NULL) and end in acc[r], or when
 * last_e != 0 are requantised after the last chunk (edgec_rq_fast, SSAT to
 * int8) into last_dst[r]. A pass over several chunks must not overlap itself
 * (top a multiple of 3). Returns nonzero, leaving the outputs incomplete, if
 * an accumulator to requantise is outside [-2^30, 2^30), where edgec_rq_fast
 * is not exact (that bounds the bias too: no check per layer).
 * The routine updates row, init, rq_e, w_end, dst, len2, x and left as it
 * goes, and reads the fields up to last_e at fixed offsets: keep the order.
 */
typedef struct {
    int32_t row;          /* the current block */
    const int32_t *init;  /* the current chunk's start values */
    int32_t mult;
    int32_t rq_k;         /* edgec_rq_k(out_offset, rq_e) */
    int32_t rq_e;         /* the current chunk: last_e or 0 */
    int32_t stride;
    const int8_t *w_end;  /* row 0, past the current chunk */
    void *dst;            /* the current chunk: last_dst or acc */
    int32_t len2;         /* 2 * the current chunk's inputs */
    const int8_t *x;      /* the current chunk */
    int32_t offset2;      /* input offset in both halves */
    int32_t left;         /* inputs after the current chunk */
    int32_t *acc;
    int32_t top;
    int8_t *last_dst;
    int32_t last_e;
} edgec_fc_job;

#if EDGEC_ARM_ASM
/* The assembly's view of edgec_fc_job (a negative array size when a field moved). */
#define EDGEC_FC_JOB_LAYOUT_OK (offsetof(edgec_fc_job, offset2) == 40 && offsetof(edgec_fc_job, last_e) == 60)
typedef char edgec_fc_job_layout[EDGEC_FC_JOB_LAYOUT_OK ? 1 : -1];

int32_t edgec_fc_rows_asm(edgec_fc_job *job);

/* One row, 8 steps (r3..r6 = inputs (0,2) (1,3) (4,6) (5,7)), read downwards: 9 instructions. */
#define EDGEC_FC_ROW_ASM(acc, p)                                                                                       \
    "ldrd    r7, r8, [" p ", #-8]!\n\t"                                                                              \
    "sxtb16  r9, r7\n\t"                                                                                              \
    "smlad   " acc ", r9, r3, " acc "\n\t"                                                                            \
    "sxtb16  r7, r7, ror #8\n\t"                                                                                      \
    "smlad   " acc ", r7, r4, " acc "\n\t"                                                                            \
    "sxtb16  r9, r8\n\t"                                                                                              \
    "smlad   " acc ", r9, r5, " acc "\n\t"                                                                            \
    "sxtb16  r8, r8, ror #8\n\t"                                                                                      \
    "smlad   " acc ", r8, r6, " acc "\n\t"
/* Three rows x 8 steps = 24 MACs: 28 instructions. */
#define EDGEC_FC_GROUP_ASM                                                                                             \
    "ldmdb   lr!, {r3, r4, r5, r6}\n\t" EDGEC_FC_ROW_ASM("r0", "r10") EDGEC_FC_ROW_ASM("r1", "r11")                   \
        EDGEC_FC_ROW_ASM("r2", "r12")
/* edgec_rq_fast + SSAT of a doubled accumulator (r5 = mult, r6 = rq_k, r7 = rq_e), stored at [r10 + off]. */
#define EDGEC_FC_RQ_ASM(acc, off)                                                                                      \
    "add     lr, r6, " acc ", asr #31\n\t"                                                                            \
    "smmlar  " acc ", " acc ", r5, lr\n\t"                                                                            \
    "asr     " acc ", " acc ", r7\n\t"                                                                                \
    "ssat    " acc ", #8, " acc "\n\t"                                                                                \
    "strb    " acc ", [r10, #" off "]\n\t"

/*
 * Stack: 300 bytes (9 registers; at [sp + 256] the job pointer, at [sp + 260]
 * the loop entry; the widened chunk at [sp, sp + len2), read down to sp; a
 * leaf, so 4-byte alignment is enough).
 * Per chunk: about 45 instructions of setup, 9 per 8 inputs widened. Per block
 * of three rows: the groups (226 per eight, entered by `ldr pc` at the group
 * that leaves a multiple of eight), then 35 instructions of doubling (ADDS: its
 * V flag is the range check), requantisation, stores and the next block's
 * setup (17 when the accumulators go to memory).
 */
__asm__(EDGEC_ASM_FUNC("edgec_fc_rows_asm")
        "push    {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "sub     sp, sp, #264\n\t"
        "str     r0, [sp, #256]\n\t"
        "mov     r12, r0\n"
        "10:\n\t" /* a chunk (r12 = job): len = min(left, EDGEC_FC_CHUNK) in r1 */
        "ldr     r0, [r12, #44]\n\t"
        "cmp     r0, #0\n\t"
        "beq     18f\n\t"
        "cmp     r0, #128\n\t"
        "ite     hi\n\t"
        "movhi   r1, #128\n\t"
        "movls   r1, r0\n\t"
        "subs    r0, r0, r1\n\t"
        "str     r0, [r12, #44]\n\t"
        "ldr     r2, [r12, #48]\n\t"
        "mov     r3, #0\n\t"
        "it      eq\n\t" /* the last chunk requantises into last_dst when last_e != 0 */
        "ldreq   r3, [r12, #60]\n\t"
        "cbz     r3, 1f\n\t"
        "ldr     r2, [r12, #56]\n"
        "1:\n\t"
        "str     r2, [r12, #28]\n\t"
        "str     r3, [r12, #16]\n\t"
        "ldr     r2, [r12, #24]\n\t"
        "add     r2, r2, r1\n\t"
        "str     r2, [r12, #24]\n\t"
        "ldr     r2, [r12, #52]\n\t"
        "str     r2, [r12, #0]\n\t"
        "lsls    r3, r1, #1\n\t"
        "str     r3, [r12, #32]\n\t"
        /* the loop entry: the first group + ((-groups) & 7) * 112 bytes (Thumb bit set) */
        "rsb     r0, r3, #0\n\t"
        "and     r0, r0, #112\n\t"
        "rsb     r0, r0, r0, lsl #3\n\t"
        "adr     r1, .Lfc_groups\n\t"
        "add     r0, r0, r1\n\t"
        "orr     r0, r0, #1\n\t"
        "str     r0, [sp, #260]\n\t"
        /* widen: 8 inputs -> 4 words (0,2) (1,3) (4,6) (5,7), 9 instructions */
        "ldr     r1, [r12, #36]\n\t"
        "ldr     r2, [r12, #40]\n\t"
        "mov     r4, sp\n\t"
        "add     r3, sp, r3\n"
        "11:\n\t"
        "ldr     r5, [r1], #4\n\t"
        "ldr     r6, [r1], #4\n\t"
        "sxtab16 r7, r2, r5\n\t"
        "sxtab16 r8, r2, r5, ror #8\n\t"
        "sxtab16 r9, r2, r6\n\t"
        "sxtab16 r10, r2, r6, ror #8\n\t"
        "stm     r4!, {r7, r8, r9, r10}\n\t"
        "cmp     r4, r3\n\t"
        "bne     11b\n\t"
        "str     r1, [r12, #36]\n\t"
        "ldm     r12, {r3, r4, r5, r6, r7, r8, r9, r10, r11}\n\t"
        "b       13f\n"
        /* the groups, from the end of the rows and of the buffer down to sp */
        ".Lfc_groups:\n\t" EDGEC_FC_GROUP_ASM ".Lfc_group2:\n\t" EDGEC_FC_GROUP_ASM EDGEC_FC_GROUP_ASM
            EDGEC_FC_GROUP_ASM EDGEC_FC_GROUP_ASM EDGEC_FC_GROUP_ASM EDGEC_FC_GROUP_ASM EDGEC_FC_GROUP_ASM
        "cmp     sp, lr\n\t"
        "bne     .Lfc_groups\n\t"
        ".if .Lfc_group2 - .Lfc_groups - 112\n\t"
        ".error \"edgec_fc_rows_asm: a group must be 112 bytes (the loop entry)\"\n\t"
        ".endif\n\t"
        /* r3 = row, r4 = init, r5..r7 = mult, rq_k, rq_e, r8 = stride, r9 = w_end, r10 = dst, r11 = len2 */
        "ldr     r12, [sp, #256]\n\t"
        "ldm     r12, {r3, r4, r5, r6, r7, r8, r9, r10, r11}\n\t"
        "cbnz    r7, 3f\n\t"
        "add     r10, r10, r3, lsl #2\n\t"
        "stm     r10, {r0, r1, r2}\n\t"
        "b       12f\n"
        "3:\n\t"
        "adds    r0, r0, r0\n\t"
        "itt     vc\n\t"
        "addsvc  r1, r1, r1\n\t"
        "addsvc  r2, r2, r2\n\t"
        "bvs     17f\n\t"
        "add     r10, r10, r3\n\t" EDGEC_FC_RQ_ASM("r0", "0") EDGEC_FC_RQ_ASM("r1", "1") EDGEC_FC_RQ_ASM("r2", "2")
        "12:\n\t"
        "subs    r3, r3, #3\n\t"
        "bmi     16f\n\t"
        "str     r3, [r12]\n"
        "13:\n\t" /* a block: rows r3, r3 + 1, r3 + 2 */
        "add     lr, sp, r11\n\t"
        "cbz     r4, 15f\n\t"
        "add     r4, r4, r3, lsl #2\n\t"
        "ldm     r4, {r0, r1, r2}\n"
        "14:\n\t"
        "mla     r10, r3, r8, r9\n\t"
        "add     r11, r10, r8\n\t"
        "add     r12, r11, r8\n\t"
        "ldr     pc, [sp, #260]\n"
        "15:\n\t"
        "movs    r0, #0\n\t"
        "movs    r1, #0\n\t"
        "movs    r2, #0\n\t"
        "b       14b\n"
        "16:\n\t" /* past row 0: a last block at row 0 (overlapping), or the next chunk from acc */
        "cmn     r3, #3\n\t"
        "itt     ne\n\t"
        "movne   r3, #0\n\t"
        "strne   r3, [r12]\n\t"
        "bne     13b\n\t"
        "ldr     r0, [r12, #48]\n\t"
        "str     r0, [r12, #4]\n\t"
        "b       10b\n"
        "17:\n\t"
        "movs    r0, #1\n\t"
        "b       19f\n"
        "18:\n\t"
        "movs    r0, #0\n"
        "19:\n\t"
        "add     sp, sp, #264\n\t"
        "pop     {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
        ".size edgec_fc_rows_asm, .-edgec_fc_rows_asm\n");
#else
/* The C twin: the same chunks, widening, pairing, range check and requantisation. */
static int32_t edgec_fc_rows_asm(edgec_fc_job *job)
{
    int32_t xw[EDGEC_FC_CHUNK / 2];
    for (; job->left > 0; job->init = job->acc) {
        const int32_t len = EDGEC_MIN(job->left, EDGEC_FC_CHUNK);
        job->left -= len;
        const int last = job->left == 0;
        for (int32_t i = 0; i < len; i += 4) {
            edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(job->x + i), job->offset2, &xw[i / 2], &xw[i / 2 + 1]);
        }
        for (int32_t r = job->top;; r = EDGEC_MAX(r - 3, 0)) {
            for (int32_t j = r; j < r + 3; j++) {
                int32_t acc = job->init != NULL ? job->init[j] : 0;
                for (int32_t i = 0; i < len; i += 4) {
                    int32_t lo, hi;
                    edgec_s8x4_to_s16x2x2(edgec_read_s8x4(job->w_end + j * job->stride + i), &lo, &hi);
                    acc = __smlad(lo, xw[i / 2], __smlad(hi, xw[i / 2 + 1], acc));
                }
                if (!last || job->last_e == 0) {
                    job->acc[j] = acc;
                } else if (acc < -(1 << 30) || acc >= (1 << 30)) {
                    return 1;
                } else {
                    job->last_dst[j] = (int8_t)__ssat(edgec_rq_fast(acc, job->mult, job->rq_k, job->last_e), 8);
                }
            }
            if (r == 0) {
                break;
            }
        }
        job->x += len;
        job->w_end += len;
    }
    return 0;
}
#endif
#endif

/* The sum of w[i] * (x[i] + input_offset), i < len: on DSP builds 4 at a time (SXTAB16, SMLAD). */
static int32_t edgec_fc_dot(const int8_t *x, const int8_t *w, int32_t len, int32_t input_offset)
{
    int32_t acc = 0;
#if EDGEC_USE_DSP
    const int32_t offset2 = edgec_dup_s16(input_offset);
    for (; len >= 4; len -= 4, x += 4, w += 4) {
        int32_t xl, xh, wl, wh;
        edgec_s8x4_to_s16x2x2_offset(edgec_read_s8x4(x), offset2, &xl, &xh);
        edgec_s8x4_to_s16x2x2(edgec_read_s8x4(w), &wl, &wh);
        acc = __smlad(wl, xl, __smlad(wh, xh, acc));
    }
#endif
    return acc + edgec_dot_s8_offset(x, w, len, input_offset);
}

/* Row by row: any filter offset, depth, row count and alignment. */
static EDGEC_DSP_COLD edgec_status edgec_fc_generic(const edgec_fc_params *params, const edgec_quant_params *quant,
                                                    int32_t batches, int32_t depth, int32_t n, const int8_t *input,
                                                    const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const int32_t qstep = quant->per_channel ? 1 : 0;
    for (int32_t b = 0; b < batches; b++, input += depth, output += n) {
        int32_t xsum = 0; /* sum of (x + input_offset), for a filter offset */
        for (int32_t d = 0; d < depth && params->filter_offset != 0; d++) {
            xsum += input[d] + params->input_offset;
        }
        for (int32_t oc = 0; oc < n; oc++) {
            const int32_t acc = (bias != NULL ? bias[oc] : 0) + params->filter_offset * xsum +
                                edgec_fc_dot(input, filter + oc * depth, depth, params->input_offset);
            output[oc] = edgec_requantize_clamp(acc, quant->multiplier[oc * qstep], quant->shift[oc * qstep],
                                                params->output_offset, params->act_min, params->act_max);
        }
    }
    return EDGEC_OK;
}

#if EDGEC_USE_DSP
/* After a pass that left the accumulators of rows c .. c + top + 2 over depth & ~7 inputs in job->acc
 * (job->x and job->w_end past them): the tail inputs and the requantisation in C, into job->last_dst. */
static EDGEC_NOINLINE void edgec_fc_finish(const edgec_fc_job *job, const edgec_fc_params *params,
                                           const edgec_quant_params *quant, int32_t c)
{
    const int32_t qstep = quant->per_channel ? 1 : 0;
    const int32_t tail = job->stride & 7;
    for (int32_t r = 0; r < job->top + 3; r++) {
        const int32_t ch = (c + r) * qstep;
        const int32_t acc = job->acc[r] + edgec_fc_dot(job->x, job->w_end + r * job->stride, tail,
                                                       params->input_offset);
        job->last_dst[r] = edgec_requantize_clamp(acc, quant->multiplier[ch], quant->shift[ch], params->output_offset,
                                                  params->act_min, params->act_max);
    }
}

/*
 * The DSP path: accum_depth a multiple of 4 (>= 8), at least 3 rows, aligned
 * weights (LDRD), filter_offset 0. One pass over all rows when the routine
 * requantises (per tensor, edgec_rq_fast's shift and offset ranges, accum_depth
 * a multiple of 8) and the inputs fit in one chunk; otherwise passes of
 * EDGEC_FC_ROWS rows, whose accumulators stay in acc between input chunks,
 * with the 4-input tail and the requantisation in C when the routine does not
 * requantise. A separate function, tail-called, so that the worst-case stack
 * is this frame plus the routine's.
 */
static EDGEC_NOINLINE edgec_status edgec_fc_dsp(const edgec_fc_params *params, const edgec_quant_params *quant,
                                                int32_t batches, int32_t depth, int32_t n, const int8_t *input,
                                                const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const int32_t depth8 = depth & ~7;
    int32_t acc[EDGEC_FC_ROWS];
    edgec_fc_job job;
    /* last_e != 0: the routine requantises (edgec_rq_fast per tensor, no 4-input tail; it checks the
     * accumulators' range itself, so edgec_rq_fast_ok only looks at the shift and multiplier) */
    job.last_e = !quant->per_channel && depth8 == depth && edgec_rq_fast_ok(quant, 1, NULL, 0) &&
                         params->output_offset >= -128 && params->output_offset <= 127
                     ? -quant->shift[0]
                     : 0;
    job.mult = quant->multiplier[0];
    job.rq_k = job.last_e != 0 ? edgec_rq_k(params->output_offset, job.last_e) : 0;
    job.stride = depth;
    job.offset2 = edgec_dup_s16(params->input_offset);
    job.acc = acc;
    for (; batches > 0; batches--, input += depth, output += n) {
        for (int32_t c = 0, rows; c < n; c += rows) {
            /* all rows in one pass if the routine requantises and the inputs fit in one chunk */
            rows = job.last_e != 0 && depth <= EDGEC_FC_CHUNK ? n - c : EDGEC_MIN(EDGEC_FC_ROWS, n - c);
            /* at least 3 rows; a pass over several input chunks must not overlap itself
             * (its accumulators go through acc): the last pass moves back over rows done */
            if (rows < 3 || (depth8 > EDGEC_FC_CHUNK && rows % 3 != 0)) {
                rows -= rows % 3;
                if (rows + 3 <= n) {
                    rows += 3;
                    c = n - rows;
                }
            }
            job.top = rows - 3;
            job.init = bias != NULL ? bias + c : NULL;
            job.w_end = filter + c * depth;
            job.x = input;
            job.left = depth8;
            job.last_dst = output + c;
            if (edgec_fc_rows_asm(&job) != 0) {
                /* an accumulator outside edgec_rq_fast's range (a huge bias): from here on
                 * requantise in C, starting again with this batch */
                job.last_e = 0;
                c = rows = 0;
                continue;
            }
            if (job.last_e == 0) {
                edgec_fc_finish(&job, params, quant, c);
            }
        }
        if (job.last_e != 0 && (params->act_min > -128 || params->act_max < 127)) {
            for (int32_t r = 0; r < n; r++) { /* the routine only saturates to int8 */
                output[r] = (int8_t)EDGEC_MIN(EDGEC_MAX(output[r], params->act_min), params->act_max);
            }
        }
    }
    return EDGEC_OK;
}
#endif

edgec_status edgec_fully_connected_s8(const edgec_fc_params *params, const edgec_quant_params *quant, int32_t batches,
                                      int32_t accum_depth, int32_t output_depth, const int8_t *input,
                                      const int8_t *filter, const int32_t *bias, int8_t *output)
{
    if (batches < 0 || accum_depth < 0 || output_depth < 0) {
        return EDGEC_ARG_ERROR;
    }
#if EDGEC_USE_DSP
    if (params->filter_offset == 0 && accum_depth >= 8 && accum_depth % 4 == 0 && output_depth >= 3 &&
        ((uintptr_t)filter & 3) == 0) {
        return edgec_fc_dsp(params, quant, batches, accum_depth, output_depth, input, filter, bias, output);
    }
#endif
    return edgec_fc_generic(params, quant, batches, accum_depth, output_depth, input, filter, bias, output);
}
