/* Shared STM32 board helpers in boards/common/ (private to boards/). */
#ifndef EDGEC_STM32_COMMON_H
#define EDGEC_STM32_COMMON_H

#include <stdint.h>

void edgec_stm32f7_clock_216mhz(void);                            /* stm32f7_clock.c */
void edgec_stm32h7_clock_400mhz(void);                            /* stm32h7_clock.c */
void edgec_stm32_gpio_af(uint32_t port, unsigned pin, unsigned af); /* stm32_gpio.c */
void edgec_stm32_usart_init(void);                                /* stm32_usart.c */
void edgec_cm7_enable_caches(void);                               /* cm7_cache.c */

#endif /* EDGEC_STM32_COMMON_H */
