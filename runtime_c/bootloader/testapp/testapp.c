/* A tiny application for testing the bootloader's GO command: linked at the
 * board's app_base by edgec/build/bootloader.py (build_go_test_app), it
 * prints one line with the vector table base (VTOR) and main stack pointer
 * it was started with, then echoes received bytes in upper case. */
#include <stdint.h>

#include "edgec_platform.h"

void BL_UART_INIT(void);

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

static void puts_(const char *s) {
    while (*s) {
        edgec_uart_putc((uint8_t)*s++);
    }
}

static void hex32(uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    puts_("0x");
    for (int i = 28; i >= 0; i -= 4) {
        edgec_uart_putc((uint8_t)digits[(v >> i) & 0xFu]);
    }
}

int main(void) {
    uint32_t sp;
    __asm volatile("mrs %0, msp" : "=r"(sp));
    BL_UART_INIT();
    puts_("EDGEC-TESTAPP vtor=");
    hex32(SCB_VTOR);
    puts_(" sp=");
    hex32(sp);
    puts_("\n");
    for (;;) {
        int c = edgec_uart_getc();
        if (c >= 'a' && c <= 'z') {
            c -= 'a' - 'A';
        }
        if (c >= 0) {
            edgec_uart_putc((uint8_t)c);
        }
    }
}
