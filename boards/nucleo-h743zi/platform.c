/* nucleo-h743zi: ST NUCLEO-H743ZI / NUCLEO-H743ZI2 (STM32H743ZIT6). Console:
 * USART3 on PD8 (TX) / PD9 (RX), alternate function 7, wired to the ST-LINK
 * virtual COM port (UM2407). */
#include <stdint.h>

#include "cortexm.h"
#include "edgec_platform.h"
#include "stm32_common.h"

#define RCC_AHB4ENR EDGEC_REG32(0x580244E0u)
#define RCC_APB1LENR EDGEC_REG32(0x580244E8u)
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_APB1LENR_USART3EN (1u << 18)
#define GPIOD_BASE 0x58020C00u

void edgec_platform_init(void) {
    edgec_cm7_enable_caches();
    edgec_stm32h7_clock_400mhz();
    RCC_AHB4ENR |= RCC_AHB4ENR_GPIODEN;
    RCC_APB1LENR |= RCC_APB1LENR_USART3EN;
    (void)RCC_APB1LENR; /* read back: clocks on before the peripherals are written */
    edgec_stm32_gpio_af(GPIOD_BASE, 8u, 7u); /* USART3_TX */
    edgec_stm32_gpio_af(GPIOD_BASE, 9u, 7u); /* USART3_RX */
    edgec_stm32_usart_init();
    edgec_counter_start();
}
