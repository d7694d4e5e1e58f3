/* COBS encoding and decoding for the serial protocol (see edgec_cobs.h). */
#include "edgec_cobs.h"

size_t edgec_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    size_t i = 0;
    size_t o = 0;
    while (i < n) {
        uint8_t code = in[i++];
        if (code == 0u) {
            return EDGEC_COBS_ERROR;
        }
        for (uint8_t k = 1u; k < code; k++) {
            if (i >= n || in[i] == 0u || o >= cap) {
                return EDGEC_COBS_ERROR;
            }
            out[o++] = in[i++];
        }
        /* A block shorter than 254 bytes stood for a zero, except at the end. */
        if (code != 0xFFu && i < n) {
            if (o >= cap) {
                return EDGEC_COBS_ERROR;
            }
            out[o++] = 0u;
        }
    }
    return o;
}

void edgec_cobs_encode_to(const uint8_t *in, size_t n, void (*put)(uint8_t)) {
    size_t i = 0;
    for (;;) {
        size_t run = 0;
        while (i + run < n && in[i + run] != 0u && run < 254u) {
            run++;
        }
        put((uint8_t)(run + 1u));
        for (size_t k = 0; k < run; k++) {
            put(in[i + k]);
        }
        i += run;
        if (run == 254u) {
            continue; /* a full block implies no zero; the next block follows (maybe empty) */
        }
        if (i >= n) {
            break;
        }
        i++; /* the zero this block stood for */
    }
}
