/* disco-f746ng: ST 32F746GDISCOVERY (STM32F746NGH6). Console: USART1 on PA9
 * (TX) / PB7 (RX), alternate function 7, wired to the ST-LINK/V2-1 virtual
 * COM port (UM1907). */
#include <stdint.h>

#include "cortexm.h"
#include "edgec_platform.h"
#include "stm32_common.h"

#define RCC_AHB1ENR EDGEC_REG32(0x40023830u)
#define RCC_APB2ENR EDGEC_REG32(0x40023844u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_AHB1ENR_GPIOBEN (1u << 1)
#define RCC_APB2ENR_USART1EN (1u << 4)
#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u

void edgec_platform_init(void) {
    edgec_cm7_enable_caches();
    edgec_stm32f7_clock_216mhz();
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN | RCC_AHB1ENR_GPIOBEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR; /* read back: clocks on before the peripherals are written */
    edgec_stm32_gpio_af(GPIOA_BASE, 9u, 7u); /* USART1_TX */
    edgec_stm32_gpio_af(GPIOB_BASE, 7u, 7u); /* USART1_RX */
    edgec_stm32_usart_init();
    edgec_counter_start();
}
