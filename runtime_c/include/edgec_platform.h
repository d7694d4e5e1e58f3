/* The whole board surface of the edgec runtime: a board provides these few
 * functions (boards/<name>/ and boards/common/), nothing else is board
 * specific. Weak defaults are not given on purpose: a missing one is a link
 * error, not a silent no-op. */
#ifndef EDGEC_PLATFORM_H
#define EDGEC_PLATFORM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Console UART (the serial link to the host). */
void edgec_platform_init(void);          /* clocks, pins, UART at the board's baud rate */
void edgec_uart_putc(uint8_t c);         /* blocking */
int edgec_uart_getc(void);               /* non-blocking: a byte 0..255, or -1 if none */

/* A free-running 64-bit counter: DWT CYCCNT cycles on real boards, SysTick-based
 * emulated instructions on QEMU (see the board's [counter] unit). Reading it
 * costs a few dozen instructions; it may be read from any context. */
void edgec_counter_start(void);          /* (re)start from 0; also fixes the tick phase */
uint64_t edgec_counter_read(void);       /* counter units since the last start */
uint32_t edgec_counter_hz(void);         /* counter units per (virtual) second */

/* Stop here for good (assertion failure, fault). On QEMU this ends the
 * emulator with the exit code through semihosting. */
void edgec_abort(int code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
#endif /* EDGEC_PLATFORM_H */
