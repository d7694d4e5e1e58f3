/* Kernel benchmark runtime (startup.c). SPDX-License-Identifier: Apache-2.0 */
#ifndef BENCH_H
#define BENCH_H
#include <stdint.h>
void bench_mark(void);
void bench_puts(const char *s);
void bench_put_hex32(uint32_t v);
uint32_t bench_fnv1a(const void *p, uint32_t n);
void bench_exit(int code) __attribute__((noreturn));
#endif
