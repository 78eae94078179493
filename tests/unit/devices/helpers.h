/* SPDX-License-Identifier: Apache-2.0 */
/* Test doubles shared by the device unit tests: an IRQ recorder and
 * byte/word/dword helpers over the bus API. */
#ifndef VIREO_TESTS_DEVICES_HELPERS_H
#define VIREO_TESTS_DEVICES_HELPERS_H

#include <stdint.h>
#include <string.h>

#include "devices/bus.h"
#include "devices/irq.h"

struct irq_rec {
	int level[32];       /* current level per GSI */
	unsigned raises[32]; /* 0 -> 1 transitions per GSI */
	unsigned calls;
};

static inline void irq_rec_set(void *ctx, unsigned gsi, int level)
{
	struct irq_rec *r = ctx;

	r->calls++;
	if (gsi >= 32)
		return;
	if (level && !r->level[gsi])
		r->raises[gsi]++;
	r->level[gsi] = level;
}

static inline struct irq_line irq_rec_line(struct irq_rec *r, unsigned gsi)
{
	return (struct irq_line){ .set = irq_rec_set, .ctx = r, .gsi = gsi };
}

struct plat_rec {
	unsigned resets, poweroffs;
};

static inline void plat_rec_reset(void *ctx) { ((struct plat_rec *)ctx)->resets++; }
static inline void plat_rec_poweroff(void *ctx) { ((struct plat_rec *)ctx)->poweroffs++; }

static inline struct platform_ops plat_rec_ops(struct plat_rec *p)
{
	return (struct platform_ops){ plat_rec_reset, plat_rec_poweroff, p };
}

static inline uint32_t in_n(struct bus *b, uint64_t port, unsigned len)
{
	uint32_t v = 0;

	bus_read(b, port, &v, len);
	if (len < 4)
		v &= (1u << (8 * len)) - 1;
	return v;
}

static inline uint8_t inb(struct bus *b, uint64_t port) { return (uint8_t)in_n(b, port, 1); }
static inline uint16_t inw(struct bus *b, uint64_t port) { return (uint16_t)in_n(b, port, 2); }
static inline uint32_t inl(struct bus *b, uint64_t port) { return in_n(b, port, 4); }

static inline void out_n(struct bus *b, uint64_t port, uint32_t v, unsigned len)
{
	bus_write(b, port, &v, len);
}

static inline void outb(struct bus *b, uint64_t port, uint8_t v) { out_n(b, port, v, 1); }
static inline void outw(struct bus *b, uint64_t port, uint16_t v) { out_n(b, port, v, 2); }
static inline void outl(struct bus *b, uint64_t port, uint32_t v) { out_n(b, port, v, 4); }

#endif
