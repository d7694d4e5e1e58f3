/* CRC-32 of IEEE 802.3 (reflected polynomial 0xEDB88320, initial value and
 * final xor 0xFFFFFFFF): the same as Python's zlib.crc32. */
#ifndef EDGEC_CRC32_H
#define EDGEC_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc = edgec_crc32(0, a, na); crc = edgec_crc32(crc, b, nb). */
uint32_t edgec_crc32(uint32_t crc, const uint8_t *data, size_t n);

#endif /* EDGEC_CRC32_H */
