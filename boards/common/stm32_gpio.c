/* STM32 GPIO alternate function set-up (the F2/F4/F7/H7/L4/G4 register
 * layout): one pin to alternate function `af`, high speed, push-pull, with a
 * pull-up (an idle UART line is high; the pull-up keeps an unconnected RX
 * from reading noise as bytes). The board enables the port's clock. */
#include <stdint.h>

#include "cortexm.h"

#define GPIO_MODER(p) EDGEC_REG32((p) + 0x00u)
#define GPIO_OTYPER(p) EDGEC_REG32((p) + 0x04u)
#define GPIO_OSPEEDR(p) EDGEC_REG32((p) + 0x08u)
#define GPIO_PUPDR(p) EDGEC_REG32((p) + 0x0Cu)
#define GPIO_AFR(p, i) EDGEC_REG32((p) + 0x20u + 4u * (i))

void edgec_stm32_gpio_af(uint32_t port, unsigned pin, unsigned af) {
    unsigned shift2 = 2u * pin;
    GPIO_AFR(port, pin / 8u) = (GPIO_AFR(port, pin / 8u) & ~(0xFu << (4u * (pin % 8u)))) | ((af & 0xFu) << (4u * (pin % 8u)));
    GPIO_OTYPER(port) &= ~(1u << pin);                                      /* push-pull */
    GPIO_OSPEEDR(port) = (GPIO_OSPEEDR(port) & ~(3u << shift2)) | (2u << shift2); /* high speed */
    GPIO_PUPDR(port) = (GPIO_PUPDR(port) & ~(3u << shift2)) | (1u << shift2);     /* pull-up */
    GPIO_MODER(port) = (GPIO_MODER(port) & ~(3u << shift2)) | (2u << shift2);     /* alternate function */
}
