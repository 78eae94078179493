/* SPDX-License-Identifier: Apache-2.0 */
/* The MP 1.4 tables read back as an OS scanning 0xF0000 would, with the
 * layouts of MultiProcessor Specification 1.4 chapter 4 written out here. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/mptable.h"

#define GPA 0xf0000u
#define AREA 0x10000u
#define CANARY 0x5a

static uint64_t get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static struct mptable_config config(unsigned ncpus)
{
	struct mptable_config c = { .ncpus = ncpus, .lapic_addr = 0xfee00000u,
				    .ioapic_addr = 0xfec00000u, .ioapic_id = 0 };
	return c;
}

/* What the walk saw, for the assertions after it. */
struct census {
	unsigned cpus, bsps, buses, ioapics, ioints, lints;
	uint8_t cpu_seen[256];
	int irq_pin[16];
	int lint_kind[2];
};

static void processor(const uint8_t *e, const struct mptable_config *c, struct census *s)
{
	assert_true(e[1] < c->ncpus && !s->cpu_seen[e[1]]);
	s->cpu_seen[e[1]] = 1;
	assert_int_equal(e[2], 0x14);
	assert_int_equal(e[3] & 1, 1);                        /* enabled */
	if (e[3] & 2) {
		assert_int_equal(e[1], 0);                    /* BSP is CPU 0 */
		s->bsps++;
	}
	assert_int_not_equal(get(e + 4, 4), 0);               /* signature */
	s->cpus++;
}

static void entry8(const uint8_t *e, const struct mptable_config *c, struct census *s)
{
	switch (e[0]) {
	case 1:
		assert_memory_equal(e + 2, "ISA   ", 6);
		s->buses++;
		break;
	case 2:
		assert_int_equal(e[1], c->ioapic_id);
		assert_int_equal(e[2], 0x11);
		assert_int_equal(e[3] & 1, 1);
		assert_int_equal(get(e + 4, 4), c->ioapic_addr);
		s->ioapics++;
		break;
	case 3:
		assert_int_equal(e[1], 0);                    /* INT */
		assert_int_equal(e[4], 0);                    /* from the ISA bus */
		assert_true(e[5] < 16 && s->irq_pin[e[5]] < 0);
		assert_int_equal(e[6], c->ioapic_id);
		s->irq_pin[e[5]] = e[7];
		s->ioints++;
		break;
	case 4:
		assert_int_equal(e[6], 0xff);                 /* all local APICs */
		assert_true(e[7] < 2 && s->lint_kind[e[7]] < 0);
		s->lint_kind[e[7]] = e[1];
		s->lints++;
		break;
	default:
		fail_msg("unknown MP entry type %u", e[0]);
	}
}

static void walk(const uint8_t *t, const struct mptable_config *c, struct census *s)
{
	size_t len = (size_t)get(t + 4, 2), off = 44;
	unsigned count = 0, last_type = 0;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 16; i++)
		s->irq_pin[i] = -1;
	s->lint_kind[0] = s->lint_kind[1] = -1;
	while (off < len) {
		const uint8_t *e = t + off;
		size_t elen = e[0] == 0 ? 20 : 8;
		assert_true(off + elen <= len);
		assert_true(e[0] >= last_type);               /* sorted by type */
		last_type = e[0];
		if (e[0] == 0)
			processor(e, c, s);
		else
			entry8(e, c, s);
		off += elen;
		count++;
	}
	assert_int_equal(off, len);
	assert_int_equal(count, get(t + 34, 2));
}

static void check(unsigned ncpus)
{
	uint8_t *area = malloc(AREA);
	struct mptable_config c = config(ncpus);
	struct verr err = { 0 };
	struct census s;

	assert_non_null(area);
	memset(area, CANARY, AREA);
	assert_int_equal(mptable_build(area, GPA, AREA, &c, &err), 0);

	const uint8_t *f = area;
	assert_memory_equal(f, "_MP_", 4);
	assert_int_equal(f[8], 1);
	assert_int_equal(f[9], 4);
	assert_int_equal(sum(f, 16), 0);
	for (int i = 11; i < 16; i++)
		assert_int_equal(f[i], 0);                    /* feature bytes */
	uint64_t pcmp = get(f + 4, 4);
	assert_true(pcmp >= GPA + 16 && pcmp + 44 <= GPA + AREA);

	const uint8_t *t = area + (pcmp - GPA);
	size_t len = (size_t)get(t + 4, 2);
	assert_memory_equal(t, "PCMP", 4);
	assert_true(pcmp + len <= GPA + AREA);
	assert_int_equal(t[6], 4);
	assert_int_equal(sum(t, len), 0);
	assert_memory_equal(t + 8, "VIREO   ", 8);
	assert_int_equal(get(t + 28, 4), 0);                  /* no OEM table */
	assert_int_equal(get(t + 36, 4), c.lapic_addr);
	assert_int_equal(get(t + 40, 2), 0);                  /* no extended table */
	assert_int_equal(t[42], 0);
	for (size_t b = (size_t)(pcmp - GPA) + len; b < AREA; b++)
		assert_int_equal(area[b], CANARY);

	walk(t, &c, &s);
	assert_int_equal(s.cpus, ncpus);
	assert_int_equal(s.bsps, 1);
	assert_int_equal(s.buses, 1);
	assert_int_equal(s.ioapics, 1);
	assert_int_equal(s.ioints, 15);
	assert_int_equal(s.irq_pin[0], 2);
	assert_int_equal(s.irq_pin[2], -1);
	for (int irq = 1; irq < 16; irq++)
		if (irq != 2)
			assert_int_equal(s.irq_pin[irq], irq);
	assert_int_equal(s.lints, 2);
	assert_int_equal(s.lint_kind[0], 3);                  /* ExtINT on LINT0 */
	assert_int_equal(s.lint_kind[1], 1);                  /* NMI on LINT1 */
	free(area);
}

static void cpus(void **state)
{
	(void)state;
	check(1);
	check(2);
	check(8);
	check(255);
}

static void too_small(void **state)
{
	uint8_t *area = malloc(AREA);
	struct mptable_config c = config(255);
	(void)state;

	assert_non_null(area);
	/* 16 + 44 + 255 * 20 + 19 * 8 bytes */
	size_t need = 16 + 44 + 255 * 20 + 19 * 8;
	size_t lens[] = { 0, 15, 16, 60, need - 1 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct verr err = { 0 };
		memset(area, CANARY, AREA);
		assert_int_equal(mptable_build(area, GPA, lens[i], &c, &err), -ENOSPC);
		assert_int_equal(err.code, ENOSPC);
		for (size_t b = 0; b < AREA; b++)
			assert_int_equal(area[b], CANARY);
	}
	struct verr err = { 0 };
	assert_int_equal(mptable_build(area, GPA, need, &c, &err), 0);
	free(area);
}

static void bad_config(void **state)
{
	uint8_t area[256];
	struct verr err = { 0 };
	struct mptable_config c = config(0);
	(void)state;

	assert_int_equal(mptable_build(area, GPA, sizeof(area), &c, &err), -EINVAL);
	assert_true(err.msg[0] != '\0');
	verr_clear(&err);
	c = config(256);
	assert_int_equal(mptable_build(area, GPA, sizeof(area), &c, &err), -EINVAL);
	verr_clear(&err);
	c = config(1);
	assert_int_equal(mptable_build(area, GPA + 4, sizeof(area), &c, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cpus),
		cmocka_unit_test(too_small),
		cmocka_unit_test(bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
