/*
 * QEMU TCG plugin: exact count of guest instructions executed between marks.
 *
 * Every translated block adds its instruction count to a counter when it is
 * entered (inline, no callback), and the one instruction at mark=ADDR gets a
 * callback that prints "mark <count>" to the plugin log, so the differences
 * between consecutive marks are the instructions executed in between (plus a
 * constant call overhead of the mark function, which bench/kernels.py
 * calibrates away). Interrupt-free code only: a block left early (exception)
 * would still be counted whole.
 *
 * With profile=1 it also counts, per translated block, how often it ran, and
 * prints "tb <address> <instructions> <executions>" at exit (bench/kernels.py
 * --profile maps the addresses to functions).
 *
 * Debian's QEMU 7.2 ships no qemu-plugin.h: the few declarations of plugin API
 * version 1 used here are written out below.
 *
 * Build: gcc -shared -fPIC -O2 -o insn_count.so insn_count.c
 * Use:   qemu-system-arm ... -plugin ./insn_count.so,mark=0x1234 -d plugin -D log.txt
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t insn_count;
static uint64_t mark_addr = UINT64_MAX;
static int profile;

typedef struct {
    uint64_t vaddr;
    uint64_t n_insns;
    uint64_t count;
} tb_stat;
static tb_stat *tbs;
static size_t n_tbs, cap_tbs;

static void on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    char line[64];
    snprintf(line, sizeof line, "mark %" PRIu64 "\n", insn_count);
    qemu_plugin_outs(line);
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    const size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, n);
    if (profile && n > 0) {
        if (n_tbs == cap_tbs) {
            cap_tbs = cap_tbs ? 2 * cap_tbs : 4096;
            tbs = realloc(tbs, cap_tbs * sizeof *tbs);
        }
        /* Never freed or moved while QEMU runs: blocks are only appended, and the
         * inline counter points into a separately allocated cell. */
        tb_stat *t = &tbs[n_tbs++];
        t->vaddr = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, 0));
        t->n_insns = n;
        uint64_t *cell = calloc(1, sizeof *cell);
        t->count = (uint64_t)(uintptr_t)cell;
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, cell, 1);
    }
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (qemu_plugin_insn_vaddr(insn) == mark_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    char line[64];
    snprintf(line, sizeof line, "total %" PRIu64 "\n", insn_count);
    qemu_plugin_outs(line);
    for (size_t i = 0; i < n_tbs; i++) {
        const uint64_t runs = *(uint64_t *)(uintptr_t)tbs[i].count;
        if (runs) {
            snprintf(line, sizeof line, "tb %" PRIx64 " %" PRIu64 " %" PRIu64 "\n", tbs[i].vaddr, tbs[i].n_insns,
                     runs);
            qemu_plugin_outs(line);
        }
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "mark=", 5) == 0) {
            mark_addr = strtoull(argv[i] + 5, NULL, 0);
        } else if (strncmp(argv[i], "profile=", 8) == 0) {
            profile = atoi(argv[i] + 8);
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
