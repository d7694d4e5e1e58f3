/* STM32H742/H743/H753/H750 (single core, LDO supply): system clock to
 * 400 MHz from the internal HSI (64 MHz RC), register level (RM0433,
 * "Reset and clock control", "Power control", "Embedded flash memory").
 *
 *   HSI 64 MHz -> /DIVM1=4 -> 16 MHz (PLL1RGE = 8..16 MHz, wide VCO)
 *   -> xDIVN1=50 -> VCO 800 MHz -> /P=2 -> sys_ck 400 MHz (CPU, D1CPRE /1)
 *   AXI/AHB (HPRE /2) 200 MHz; APB1..4 (/2) 100 MHz each
 *
 * 400 MHz is the maximum in voltage scale 1 on every silicon revision
 * (480 MHz needs VOS0, revision V only). Flash: 2 wait states and
 * WRHIGHFREQ = 2 for a 200 MHz AXI clock in VOS1 (RM0433 table "FLASH
 * recommended number of wait states and programming delay"). The supply is
 * configured for the LDO (NUCLEO-H743ZI/ZI2 default; SMPS parts such as the
 * H7x5/H7x7 need another value) and the configuration is locked, as the
 * RM requires once after reset. */
#include <stdint.h>

#include "cortexm.h"

#define RCC_BASE 0x58024400u
#define RCC_CR EDGEC_REG32(RCC_BASE + 0x000u)
#define RCC_CFGR EDGEC_REG32(RCC_BASE + 0x010u)
#define RCC_D1CFGR EDGEC_REG32(RCC_BASE + 0x018u)
#define RCC_D2CFGR EDGEC_REG32(RCC_BASE + 0x01Cu)
#define RCC_D3CFGR EDGEC_REG32(RCC_BASE + 0x020u)
#define RCC_PLLCKSELR EDGEC_REG32(RCC_BASE + 0x028u)
#define RCC_PLLCFGR EDGEC_REG32(RCC_BASE + 0x02Cu)
#define RCC_PLL1DIVR EDGEC_REG32(RCC_BASE + 0x030u)
#define RCC_D2CCIP2R EDGEC_REG32(RCC_BASE + 0x054u)

#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_HSIDIV_MASK (3u << 3)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)

#define PWR_BASE 0x58024800u
#define PWR_CSR1 EDGEC_REG32(PWR_BASE + 0x004u)
#define PWR_CR3 EDGEC_REG32(PWR_BASE + 0x00Cu)
#define PWR_D3CR EDGEC_REG32(PWR_BASE + 0x018u)
#define PWR_CR3_BYPASS (1u << 0)
#define PWR_CR3_LDOEN (1u << 1)
#define PWR_CR3_SCUEN (1u << 2)
#define PWR_CSR1_ACTVOSRDY (1u << 13)
#define PWR_D3CR_VOS_MASK (3u << 14)
#define PWR_D3CR_VOS_SCALE1 (3u << 14)
#define PWR_D3CR_VOSRDY (1u << 13)

#define FLASH_ACR EDGEC_REG32(0x52002000u)
#define FLASH_ACR_VALUE (2u /* LATENCY 2 WS */ | (2u << 4) /* WRHIGHFREQ */)

#define CFGR_SW_MASK 7u
#define CFGR_SW_PLL1 3u
#define CFGR_SWS_MASK (7u << 3)
#define CFGR_SWS_PLL1 (3u << 3)

void edgec_stm32h7_clock_400mhz(void) {
    /* Supply: LDO on, bypass off, then lock (SCUEN cleared by this write). */
    PWR_CR3 = (PWR_CR3 & ~(PWR_CR3_SCUEN | PWR_CR3_LDOEN | PWR_CR3_BYPASS)) | PWR_CR3_LDOEN;
    while (!(PWR_CSR1 & PWR_CSR1_ACTVOSRDY)) {
    }
    PWR_D3CR = (PWR_D3CR & ~PWR_D3CR_VOS_MASK) | PWR_D3CR_VOS_SCALE1;
    while (!(PWR_D3CR & PWR_D3CR_VOSRDY)) {
    }

    RCC_CR = (RCC_CR & ~RCC_CR_HSIDIV_MASK) | RCC_CR_HSION; /* HSI at 64 MHz (HSIDIV /1) */
    while (!(RCC_CR & RCC_CR_HSIRDY)) {
    }
    if ((RCC_CFGR & CFGR_SWS_MASK) == CFGR_SWS_PLL1) {
        RCC_CFGR &= ~CFGR_SW_MASK; /* back to HSI before touching PLL1 */
        while ((RCC_CFGR & CFGR_SWS_MASK) != 0u) {
        }
    }
    RCC_CR &= ~RCC_CR_PLL1ON;
    while (RCC_CR & RCC_CR_PLL1RDY) {
    }

    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~((3u << 0) | (0x3Fu << 4))) | (0u << 0) /* PLLSRC = HSI */ | (4u << 4) /* DIVM1 */;
    RCC_PLLCFGR = (RCC_PLLCFGR & ~0x7000Fu) | (3u << 2) /* PLL1RGE 8..16 MHz */ | (0u << 1) /* wide VCO */ |
                  (1u << 16) | (1u << 17) | (1u << 18) /* DIVP1EN, DIVQ1EN, DIVR1EN */;
    RCC_PLL1DIVR = (50u - 1u) /* N */ | ((2u - 1u) << 9) /* P */ | ((4u - 1u) << 16) /* Q */ | ((2u - 1u) << 24) /* R */;
    RCC_CR |= RCC_CR_PLL1ON;
    while (!(RCC_CR & RCC_CR_PLL1RDY)) {
    }

    /* Wait states first, then the bus prescalers, then the switch. */
    FLASH_ACR = FLASH_ACR_VALUE;
    while ((FLASH_ACR & 0x3Fu) != FLASH_ACR_VALUE) {
    }
    RCC_D1CFGR = (0u << 8) /* D1CPRE /1 */ | (4u << 4) /* D1PPRE (APB3) /2 */ | (8u << 0) /* HPRE /2 */;
    RCC_D2CFGR = (4u << 8) /* D2PPRE2 (APB2) /2 */ | (4u << 4) /* D2PPRE1 (APB1) /2 */;
    RCC_D3CFGR = (4u << 4) /* D3PPRE (APB4) /2 */;
    RCC_CFGR = (RCC_CFGR & ~CFGR_SW_MASK) | CFGR_SW_PLL1;
    while ((RCC_CFGR & CFGR_SWS_MASK) != CFGR_SWS_PLL1) {
    }
    /* USART2/3/4/5/7/8 kernel clock: rcc_pclk1 (100 MHz), as board.toml [console] clock_hz says. */
    RCC_D2CCIP2R &= ~7u;
}
