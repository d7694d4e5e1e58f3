/* edgec serial bootloader for the emulated boards.
 *
 * Speaks the STM32 USART bootloader protocol (ST AN3155) so that one host
 * flasher (edgec.device.stm32boot) serves real STM32 parts and the emulated
 * boards, and Debian's stm32flash can check it. See docs/bootloader.md.
 *
 * Commands: GET 0x00, GET VERSION 0x01, GET ID 0x02, READ MEMORY 0x11,
 * GO 0x21, WRITE MEMORY 0x31, EXTENDED ERASE 0x44. ACK 0x79, NACK 0x1F.
 *
 * Memory views (all limits come from bl_config.h, generated from the board):
 *   flash   BL_FLASH_BASE .. +BL_FLASH_SIZE (the budget of the part), also
 *           seen at BL_ALIAS_BASE (0x08000000, where STM32 parts and
 *           stm32flash put flash); the bootloader itself is the first
 *           sectors, the application region starts at BL_APP_BASE.
 *   RAM     BL_RAM_BASE .. +BL_RAM_SIZE; the first BL_RAM_RESERVED bytes are
 *           the bootloader's own (data, bss, stack).
 * Reads: flash and RAM. Writes: the application region and RAM above the
 * reserved part. Erase: whole sectors of the application region.
 *
 * Freestanding C99: no library calls but memcpy/memset. No interrupts: the
 * UART is polled and SysTick (polled COUNTFLAG) measures timeouts.
 */
#include <stdint.h>
#include <string.h>

#include "bl_config.h"
#include "edgec_platform.h"

/* The board's UART driver (boards/common/<uart>_uart.c) provides
 * edgec_uart_putc/getc from edgec_platform.h and this init function. */
void BL_UART_INIT(void);

#define ACK 0x79u
#define NACK 0x1Fu
#define SYNC 0x7Fu
#define BL_VERSION 0x31u /* protocol version 3.1 */

#define CMD_GET 0x00u
#define CMD_GET_VERSION 0x01u
#define CMD_GET_ID 0x02u
#define CMD_READ 0x11u
#define CMD_GO 0x21u
#define CMD_WRITE 0x31u
#define CMD_EXT_ERASE 0x44u

static const uint8_t k_commands[] = {CMD_GET, CMD_GET_VERSION, CMD_GET_ID, CMD_READ,
                                     CMD_GO,  CMD_WRITE,       CMD_EXT_ERASE};

/* ---- SysTick as a millisecond clock (polled, no interrupt) ------------- */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

static void tick_init(void) {
    SYST_CSR = 0u;
    SYST_RVR = (uint32_t)(BL_CPU_HZ / 1000u) - 1u;
    SYST_CVR = 0u;
    SYST_CSR = 0x5u; /* processor clock, enabled, no interrupt */
}

static void tick_deinit(void) {
    SYST_CSR = 0u;
    SYST_RVR = 0u;
    SYST_CVR = 0u;
}

/* ---- UART ---------------------------------------------------------------- */

static void tx(uint8_t c) { edgec_uart_putc(c); }

static int rx_forever(void) {
    for (;;) {
        int c = edgec_uart_getc();
        if (c >= 0) {
            return c;
        }
    }
}

/* A byte, or -1 when none came for BL_BYTE_TIMEOUT_MS board milliseconds. */
static int rx(void) {
    uint32_t ms = 0;
    (void)SYST_CSR; /* clear a stale COUNTFLAG */
    for (;;) {
        int c = edgec_uart_getc();
        if (c >= 0) {
            return c;
        }
        if ((SYST_CSR & (1u << 16)) && ++ms >= BL_BYTE_TIMEOUT_MS) {
            return -1;
        }
    }
}

/* ---- memory map ------------------------------------------------------------ */

#define FLASH_END ((uint64_t)BL_FLASH_BASE + BL_FLASH_SIZE)
#define RAM_END ((uint64_t)BL_RAM_BASE + BL_RAM_SIZE)

static int within(uint32_t addr, uint32_t len, uint32_t base, uint64_t end) {
    return addr >= base && (uint64_t)addr + len <= end;
}

/* The STM32 view of flash (0x08000000..) onto the board's flash. */
static uint32_t to_native(uint32_t addr) {
    if (BL_ALIAS_BASE != BL_FLASH_BASE && addr >= BL_ALIAS_BASE &&
        (uint64_t)addr < (uint64_t)BL_ALIAS_BASE + BL_FLASH_SIZE) {
        return BL_FLASH_BASE + (addr - BL_ALIAS_BASE);
    }
    return addr;
}

static int in_app(uint32_t a, uint32_t len) { return within(a, len, BL_APP_BASE, FLASH_END); }

static int in_user_ram(uint32_t a, uint32_t len) {
    return within(a, len, BL_RAM_BASE + BL_RAM_RESERVED, RAM_END);
}

static int readable(uint32_t a, uint32_t len) {
    return within(a, len, BL_FLASH_BASE, FLASH_END) || within(a, len, BL_RAM_BASE, RAM_END);
}

/* Flash writes must be word aligned (address and length), as stm32flash and
 * edgec's flasher send them; RAM writes may be any bytes. */
static int writable(uint32_t a, uint32_t len) {
    if (in_app(a, len)) {
        return (a & 3u) == 0u && (len & 3u) == 0u;
    }
    return in_user_ram(a, len);
}

/* ---- sectors (erase pages) --------------------------------------------- */

typedef struct {
    uint32_t count;
    uint32_t size;
} sector_run_t;

static const sector_run_t k_runs[] = BL_SECTOR_RUNS;
#define N_RUNS (sizeof(k_runs) / sizeof(k_runs[0]))

/* Offset (from BL_FLASH_BASE) and size of sector `index`; 0 if none. */
static int sector_bounds(uint32_t index, uint32_t *off, uint32_t *size) {
    uint32_t o = 0;
    for (uint32_t r = 0; r < N_RUNS; r++) {
        if (index < k_runs[r].count) {
            *off = o + index * k_runs[r].size;
            *size = k_runs[r].size;
            return 1;
        }
        index -= k_runs[r].count;
        o += k_runs[r].count * k_runs[r].size;
    }
    return 0;
}

static int sector_erasable(uint32_t index) {
    uint32_t off, size;
    if (index >= BL_NUM_SECTORS || !sector_bounds(index, &off, &size)) {
        return 0;
    }
    return in_app(BL_FLASH_BASE + off, size);
}

static void sector_erase(uint32_t index) {
    uint32_t off, size;
    if (sector_bounds(index, &off, &size)) {
        memset((void *)(uintptr_t)(BL_FLASH_BASE + off), 0xFF, size);
    }
}

/* ---- protocol pieces ------------------------------------------------------ */

/* 4-byte big-endian address + XOR checksum; 0 on timeout or bad checksum. */
static int rx_address(uint32_t *addr) {
    uint32_t a = 0;
    uint8_t x = 0;
    for (int i = 0; i < 4; i++) {
        int c = rx();
        if (c < 0) {
            return 0;
        }
        a = (a << 8) | (uint32_t)c;
        x ^= (uint8_t)c;
    }
    int cs = rx();
    if (cs < 0 || (uint8_t)cs != x) {
        return 0;
    }
    *addr = a;
    return 1;
}

static void cmd_get(void) {
    tx(ACK);
    tx((uint8_t)sizeof(k_commands)); /* bytes to follow - 1: version + commands */
    tx(BL_VERSION);
    for (uint32_t i = 0; i < sizeof(k_commands); i++) {
        tx(k_commands[i]);
    }
    tx(ACK);
}

static void cmd_get_version(void) {
    tx(ACK);
    tx(BL_VERSION);
    tx(0x00); /* option byte 1 (read protection disabled count in old parts) */
    tx(0x00); /* option byte 2 */
    tx(ACK);
}

static void cmd_get_id(void) {
    tx(ACK);
    tx(1); /* N = bytes - 1 */
    tx((uint8_t)((BL_PRODUCT_ID >> 8) & 0xFFu));
    tx((uint8_t)(BL_PRODUCT_ID & 0xFFu));
    tx(ACK);
}

static void cmd_read(void) {
    uint32_t addr;
    tx(ACK);
    if (!rx_address(&addr)) {
        tx(NACK);
        return;
    }
    addr = to_native(addr);
    if (!readable(addr, 1)) {
        tx(NACK);
        return;
    }
    tx(ACK);
    int n = rx();
    int nc = rx();
    if (n < 0 || nc < 0 || (n ^ nc) != 0xFF || !readable(addr, (uint32_t)n + 1u)) {
        tx(NACK);
        return;
    }
    tx(ACK);
    const volatile uint8_t *p = (const volatile uint8_t *)(uintptr_t)addr;
    for (int i = 0; i <= n; i++) {
        tx(p[i]);
    }
}

static uint8_t g_buf[256];

static void cmd_write(void) {
    uint32_t addr;
    tx(ACK);
    if (!rx_address(&addr)) {
        tx(NACK);
        return;
    }
    addr = to_native(addr);
    if (in_app(addr, 1u) ? (addr & 3u) != 0u : !in_user_ram(addr, 1u)) {
        tx(NACK);
        return;
    }
    tx(ACK);
    int n = rx();
    if (n < 0) {
        tx(NACK);
        return;
    }
    uint8_t x = (uint8_t)n;
    for (int i = 0; i <= n; i++) {
        int c = rx();
        if (c < 0) {
            tx(NACK);
            return;
        }
        g_buf[i] = (uint8_t)c;
        x ^= (uint8_t)c;
    }
    int cs = rx();
    if (cs < 0 || (uint8_t)cs != x || !writable(addr, (uint32_t)n + 1u)) {
        tx(NACK);
        return;
    }
    memcpy((void *)(uintptr_t)addr, g_buf, (uint32_t)n + 1u); /* QEMU: flash is RAM */
    tx(ACK);
}

static void cmd_extended_erase(void) {
    tx(ACK);
    int hi = rx();
    int lo = rx();
    if (hi < 0 || lo < 0) {
        tx(NACK);
        return;
    }
    uint32_t n = ((uint32_t)hi << 8) | (uint32_t)lo;
    uint8_t x = (uint8_t)(hi ^ lo);
    if (n >= 0xFFF0u) { /* special erase */
        int cs = rx();
        if (cs < 0 || (uint8_t)cs != x || n != 0xFFFFu) {
            tx(NACK); /* bank erases (0xFFFE/0xFFFD) and reserved codes: refused */
            return;
        }
        for (uint32_t s = 0; s < BL_NUM_SECTORS; s++) {
            if (sector_erasable(s)) { /* global erase = the whole application region */
                sector_erase(s);
            }
        }
        tx(ACK);
        return;
    }
    uint32_t marks[(BL_NUM_SECTORS + 31u) / 32u];
    memset(marks, 0, sizeof(marks));
    int ok = 1;
    for (uint32_t i = 0; i <= n; i++) {
        int ph = rx();
        int pl = rx();
        if (ph < 0 || pl < 0) {
            tx(NACK);
            return;
        }
        x ^= (uint8_t)(ph ^ pl);
        uint32_t page = ((uint32_t)ph << 8) | (uint32_t)pl;
        if (!sector_erasable(page)) {
            ok = 0; /* keep reading the list; refuse the whole command at the end */
        } else {
            marks[page / 32u] |= 1u << (page % 32u);
        }
    }
    int cs = rx();
    if (cs < 0 || (uint8_t)cs != x || !ok) {
        tx(NACK);
        return;
    }
    for (uint32_t s = 0; s < BL_NUM_SECTORS; s++) {
        if (marks[s / 32u] & (1u << (s % 32u))) {
            sector_erase(s);
        }
    }
    tx(ACK);
}

static void jump(uint32_t vectors, uint32_t sp, uint32_t pc) __attribute__((noreturn));
static void jump(uint32_t vectors, uint32_t sp, uint32_t pc) {
    tick_deinit();
    SCB_VTOR = vectors;
    __asm volatile("dsb\n\tisb\n\tmsr msp, %0\n\tbx %1\n" : : "r"(sp), "r"(pc) : "memory");
    __builtin_unreachable();
}

static void cmd_go(void) {
    uint32_t addr;
    tx(ACK);
    if (!rx_address(&addr)) {
        tx(NACK);
        return;
    }
    addr = to_native(addr);
    /* A vector table in the application region or user RAM, aligned for
     * VTOR, holding a stack pointer in RAM and a Thumb reset handler in
     * the application region or user RAM. Anything else is NACKed rather
     * than jumped into (no fault loop on a garbage image). */
    if (!(in_app(addr, 8u) || in_user_ram(addr, 8u)) || (addr & 0x7Fu) != 0u) {
        tx(NACK);
        return;
    }
    uint32_t sp = ((const volatile uint32_t *)(uintptr_t)addr)[0];
    uint32_t pc = ((const volatile uint32_t *)(uintptr_t)addr)[1];
    uint32_t entry = pc & ~1u;
    int sp_ok = (sp & 3u) == 0u && sp > BL_RAM_BASE && (uint64_t)sp <= (uint64_t)BL_RAM_BASE + BL_RAM_PHYS_SIZE;
    int pc_ok = (pc & 1u) && (in_app(entry, 2u) || in_user_ram(entry, 2u));
    if (!sp_ok || !pc_ok) {
        tx(NACK);
        return;
    }
    tx(ACK);
    jump(addr, sp, pc);
}

/* ---- main loop --------------------------------------------------------------- */

int main(void) {
    BL_UART_INIT();
    tick_init();

    /* Start-up: wait for the synchronisation byte (on real parts it sets the
     * baud rate; here it only starts the session). Other bytes are ignored. */
    while (rx_forever() != SYNC) {
    }
    tx(ACK);

    for (;;) {
        int cmd = rx_forever();
        int comp = rx();
        if (comp < 0) {
            /* A lone byte. 0x7F alone is a host re-synchronising with a
             * bootloader that is already synchronised: answer ACK. */
            tx(cmd == (int)SYNC ? ACK : NACK);
            continue;
        }
        if ((cmd ^ comp) != 0xFF) {
            tx(NACK);
            continue;
        }
        switch (cmd) {
        case CMD_GET:
            cmd_get();
            break;
        case CMD_GET_VERSION:
            cmd_get_version();
            break;
        case CMD_GET_ID:
            cmd_get_id();
            break;
        case CMD_READ:
            cmd_read();
            break;
        case CMD_GO:
            cmd_go();
            break;
        case CMD_WRITE:
            cmd_write();
            break;
        case CMD_EXT_ERASE:
            cmd_extended_erase();
            break;
        default:
            tx(NACK);
            break;
        }
    }
}
