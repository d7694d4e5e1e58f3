/* Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999), as the edgec
 * serial protocol frames it (docs/protocol.md): no 0x00 in the encoded bytes,
 * so 0x00 delimits frames. Same encoding as edgec/device/link.py. */
#ifndef EDGEC_COBS_H
#define EDGEC_COBS_H

#include <stddef.h>
#include <stdint.h>

#define EDGEC_COBS_ERROR ((size_t)-1)

/* Worst-case encoded size of n bytes (without the 0x00 delimiter). */
#define EDGEC_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

/* Decode `n` encoded bytes (no delimiter) into `out` (capacity `cap`).
 * Returns the decoded length, or EDGEC_COBS_ERROR for an invalid encoding
 * or one that does not fit. */
size_t edgec_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Encode `n` bytes and hand each encoded byte to `put` (streaming: no output
 * buffer). The caller sends the 0x00 delimiter. */
void edgec_cobs_encode_to(const uint8_t *in, size_t n, void (*put)(uint8_t));

#endif /* EDGEC_COBS_H */
