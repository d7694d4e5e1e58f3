/* STM32F74x/F75x/F76x/F77x: system clock to 216 MHz from the internal HSI
 * (16 MHz RC), register level (RM0385 / RM0410, "Reset and clock control"
 * and "Power controller").
 *
 *   HSI 16 MHz -> /M=8 -> 2 MHz PLL input (the recommended value: least
 *   jitter) -> xN=216 -> VCO 432 MHz -> /P=2 -> SYSCLK 216 MHz
 *                                     -> /Q=9 -> 48 MHz (USB, SDMMC, RNG)
 *   AHB /1 = 216 MHz, APB1 /4 = 54 MHz (max 54), APB2 /2 = 108 MHz (max 108)
 *
 * 216 MHz needs voltage scale 1 and the over-drive mode, and 7 flash wait
 * states (8 CPU cycles) at 2.7-3.6 V (RM0410 table 7: 210 < HCLK <= 216 MHz);
 * the ART accelerator and prefetch are turned on. The HSI is used so the
 * board needs no crystal or ST-LINK MCO solder bridge; it is trimmed to 1 %
 * at 25 C, ample for a UART at 115200 baud (the baud divisor is computed from
 * the APB clock in boards/common/stm32_usart.c). */
#include <stdint.h>

#include "cortexm.h"

#define RCC_BASE 0x40023800u
#define RCC_CR EDGEC_REG32(RCC_BASE + 0x00u)
#define RCC_PLLCFGR EDGEC_REG32(RCC_BASE + 0x04u)
#define RCC_CFGR EDGEC_REG32(RCC_BASE + 0x08u)
#define RCC_APB1ENR EDGEC_REG32(RCC_BASE + 0x40u)
#define RCC_DCKCFGR2 EDGEC_REG32(RCC_BASE + 0x90u)

#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_APB1ENR_PWREN (1u << 28)

#define PWR_BASE 0x40007000u
#define PWR_CR1 EDGEC_REG32(PWR_BASE + 0x00u)
#define PWR_CSR1 EDGEC_REG32(PWR_BASE + 0x04u)
#define PWR_CR1_VOS_SCALE1 (3u << 14)
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)

#define FLASH_ACR EDGEC_REG32(0x40023C00u)
#define FLASH_ACR_LATENCY_7WS 7u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ARTEN (1u << 9)

#define PLL_M 8u
#define PLL_N 216u
#define PLL_P_DIV2 0u /* PLLP field: 00 = /2 */
#define PLL_Q 9u
#define PLL_R 2u /* F76x/F77x PLLR (DSI); reserved bits with this reset value on F74x/F75x */

#define CFGR_SW_PLL 2u
#define CFGR_SWS_MASK (3u << 2)
#define CFGR_SWS_PLL (2u << 2)
#define CFGR_HPRE_DIV1 (0u << 4)
#define CFGR_PPRE1_DIV4 (5u << 10)
#define CFGR_PPRE2_DIV2 (4u << 13)

void edgec_stm32f7_clock_216mhz(void) {
    /* The HSI is on after reset; a bootloader may have switched away from it. */
    RCC_CR |= RCC_CR_HSION;
    while (!(RCC_CR & RCC_CR_HSIRDY)) {
    }
    if ((RCC_CFGR & CFGR_SWS_MASK) == CFGR_SWS_PLL) {
        RCC_CFGR &= ~3u; /* back to HSI before touching the PLL */
        while ((RCC_CFGR & CFGR_SWS_MASK) != 0u) {
        }
    }
    RCC_CR &= ~RCC_CR_PLLON;
    while (RCC_CR & RCC_CR_PLLRDY) {
    }

    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* read back: the clock must be running before PWR is written */
    PWR_CR1 = (PWR_CR1 & ~(3u << 14)) | PWR_CR1_VOS_SCALE1; /* VOS may only change with the PLL off */

    RCC_PLLCFGR = PLL_M | (PLL_N << 6) | (PLL_P_DIV2 << 16) | (0u << 22) /* PLLSRC = HSI */ | (PLL_Q << 24) |
                  (PLL_R << 28);
    RCC_CR |= RCC_CR_PLLON;
    while (!(RCC_CR & RCC_CR_PLLRDY)) {
    }

    /* Over-drive (RM0410 "Entering Over-drive mode"): ODEN, then ODSWEN. */
    PWR_CR1 |= PWR_CR1_ODEN;
    while (!(PWR_CSR1 & PWR_CSR1_ODRDY)) {
    }
    PWR_CR1 |= PWR_CR1_ODSWEN;
    while (!(PWR_CSR1 & PWR_CSR1_ODSWRDY)) {
    }

    /* Wait states before the clock goes up; check they took. */
    FLASH_ACR = FLASH_ACR_LATENCY_7WS | FLASH_ACR_PRFTEN | FLASH_ACR_ARTEN;
    while ((FLASH_ACR & 0xFu) != FLASH_ACR_LATENCY_7WS) {
    }

    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13))) | CFGR_HPRE_DIV1 | CFGR_PPRE1_DIV4 |
               CFGR_PPRE2_DIV2;
    RCC_CFGR = (RCC_CFGR & ~3u) | CFGR_SW_PLL;
    while ((RCC_CFGR & CFGR_SWS_MASK) != CFGR_SWS_PLL) {
    }
    /* USART1..8 kernel clocks: PCLK (DCKCFGR2 reset value 0), as board.toml [console] clock_hz says. */
    RCC_DCKCFGR2 &= ~0xFFFFu;
}
