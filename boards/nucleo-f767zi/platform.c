/* nucleo-f767zi: ST NUCLEO-F767ZI (STM32F767ZIT6). Console: USART3 on PD8
 * (TX) / PD9 (RX), alternate function 7, wired to the ST-LINK/V2-1 virtual
 * COM port (UM1974). */
#include <stdint.h>

#include "cortexm.h"
#include "edgec_platform.h"
#include "stm32_common.h"

#define RCC_AHB1ENR EDGEC_REG32(0x40023830u)
#define RCC_APB1ENR EDGEC_REG32(0x40023840u)
#define RCC_AHB1ENR_GPIODEN (1u << 3)
#define RCC_APB1ENR_USART3EN (1u << 18)
#define GPIOD_BASE 0x40020C00u

void edgec_platform_init(void) {
    edgec_cm7_enable_caches();
    edgec_stm32f7_clock_216mhz();
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIODEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART3EN;
    (void)RCC_APB1ENR; /* read back: clocks on before the peripherals are written */
    edgec_stm32_gpio_af(GPIOD_BASE, 8u, 7u); /* USART3_TX */
    edgec_stm32_gpio_af(GPIOD_BASE, 9u, 7u); /* USART3_RX */
    edgec_stm32_usart_init();
    edgec_counter_start();
}
