/* CMSDK APB UART (ARM MPS2/MPS3 FPGA images, as emulated by QEMU).
 * Register map (offsets): DATA 0x0, STATE 0x4 (bit0 TXFULL, bit1 RXFULL),
 * CTRL 0x8 (bit0 TXEN, bit1 RXEN), BAUDDIV 0x10 (>= 16). */
#include <stdint.h>

#include "edgec_platform.h"

#ifndef EDGEC_UART_BASE
#error "EDGEC_UART_BASE must be defined by the board (board.toml [console] uart_base)"
#endif
#ifndef EDGEC_CPU_HZ
#error "EDGEC_CPU_HZ must be defined by the board"
#endif
#ifndef EDGEC_BAUD
#define EDGEC_BAUD 115200
#endif

#define UART_REG(off) (*(volatile uint32_t *)((uintptr_t)(EDGEC_UART_BASE) + (off)))
#define UART_DATA UART_REG(0x0)
#define UART_STATE UART_REG(0x4)
#define UART_CTRL UART_REG(0x8)
#define UART_BAUDDIV UART_REG(0x10)

void edgec_cmsdk_uart_init(void) {
    uint32_t div = (uint32_t)(EDGEC_CPU_HZ) / (uint32_t)(EDGEC_BAUD);
    UART_BAUDDIV = div < 16u ? 16u : div;
    UART_CTRL = 0x3u; /* TX and RX enabled, no interrupts */
}

void edgec_uart_putc(uint8_t c) {
    while (UART_STATE & 0x1u) {
    }
    UART_DATA = c;
}

int edgec_uart_getc(void) {
    if (UART_STATE & 0x2u) {
        return (int)(UART_DATA & 0xFFu);
    }
    return -1;
}
