/* STM32 USART (the "v2" register layout shared by STM32F7, H7, L4, G4, ...),
 * polled, 8N1. The board sets up the kernel clock and the pins first.
 * Defines: EDGEC_UART_BASE (the USART's address), EDGEC_UART_CLK_HZ (its
 * kernel clock in Hz, board.toml [console] clock_hz), EDGEC_BAUD. */
#include <stdint.h>

#include "cortexm.h"
#include "edgec_platform.h"

#if !defined(EDGEC_UART_BASE) || !defined(EDGEC_UART_CLK_HZ)
#error "EDGEC_UART_BASE and EDGEC_UART_CLK_HZ must be defined by the board (board.toml [console])"
#endif
#ifndef EDGEC_BAUD
#define EDGEC_BAUD 115200
#endif

#define USART_CR1 EDGEC_REG32((EDGEC_UART_BASE) + 0x00u)
#define USART_BRR EDGEC_REG32((EDGEC_UART_BASE) + 0x0Cu)
#define USART_ISR EDGEC_REG32((EDGEC_UART_BASE) + 0x1Cu)
#define USART_ICR EDGEC_REG32((EDGEC_UART_BASE) + 0x20u)
#define USART_RDR EDGEC_REG32((EDGEC_UART_BASE) + 0x24u)
#define USART_TDR EDGEC_REG32((EDGEC_UART_BASE) + 0x28u)

#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define ISR_ERRORS 0x0Fu /* PE, FE, NE, ORE; cleared by the same bits of ICR */
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)

/* Oversampling by 16: BRR = f_ck / baud, rounded to nearest (115200 baud from
 * 54 MHz: 469, 0.08 % off; from 108 MHz: 938, 0.03 %; from 100 MHz: 868). */
#define BRR_VALUE (((uint32_t)(EDGEC_UART_CLK_HZ) + (uint32_t)(EDGEC_BAUD) / 2u) / (uint32_t)(EDGEC_BAUD))

void edgec_stm32_usart_init(void) {
    USART_CR1 = 0u;
    USART_BRR = BRR_VALUE;
    USART_CR1 = CR1_TE | CR1_RE | CR1_UE;
}

void edgec_uart_putc(uint8_t c) {
    while (!(USART_ISR & ISR_TXE)) {
    }
    USART_TDR = c;
}

int edgec_uart_getc(void) {
    uint32_t isr = USART_ISR;
    if (isr & ISR_ERRORS) {
        /* An overrun (host sent while we computed) stalls reception until
         * cleared; the frame it broke fails its CRC and the host retries. */
        USART_ICR = isr & ISR_ERRORS;
    }
    if (isr & ISR_RXNE) {
        return (int)(USART_RDR & 0xFFu);
    }
    return -1;
}
