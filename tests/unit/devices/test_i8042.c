/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/i8042.h"
#include "helpers.h"

#define DATA 0x60
#define CMD 0x64

struct fixture {
	struct bus bus;
	struct i8042 kbc;
	struct irq_rec irq;
	struct plat_rec plat;
};

static int setup(void **state)
{
	static struct fixture fx;
	struct fixture *f = &fx;
	struct verr err = {0};
	struct irq_line kbd, aux;
	struct platform_ops plat;

	memset(f, 0, sizeof(*f));
	kbd = irq_rec_line(&f->irq, I8042_KBD_GSI);
	aux = irq_rec_line(&f->irq, I8042_AUX_GSI);
	plat = plat_rec_ops(&f->plat);
	if (bus_init(&f->bus, "pio", &err) || i8042_init(&f->kbc, &kbd, &aux, &plat, &err) ||
	    i8042_attach(&f->kbc, &f->bus, &err))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	i8042_destroy(&f->kbc);
	bus_destroy(&f->bus);
	return 0;
}

static bool obf(struct fixture *f) { return inb(&f->bus, CMD) & 0x01; }

static void controller_tests(void **state)
{
	struct fixture *f = *state;

	assert_false(obf(f));
	assert_int_equal(inb(&f->bus, CMD) & 0x06, 0x04); /* IBF clear, SYS set */
	outb(&f->bus, CMD, 0xaa);
	assert_true(obf(f));
	assert_int_equal(inb(&f->bus, CMD) & 0x08, 0x08);  /* A2: command */
	assert_int_equal(inb(&f->bus, DATA), 0x55);
	assert_false(obf(f));
	outb(&f->bus, CMD, 0xab);
	assert_int_equal(inb(&f->bus, DATA), 0x00);
	outb(&f->bus, CMD, 0xa9);
	assert_int_equal(inb(&f->bus, DATA), 0x00);
	/* An empty buffer reads back its last byte. */
	assert_int_equal(inb(&f->bus, DATA), 0x00);
	assert_int_equal(f->plat.resets, 0);
}

static void command_byte(void **state)
{
	struct fixture *f = *state;

	outb(&f->bus, CMD, 0x20);
	assert_int_equal(inb(&f->bus, DATA), 0x65);
	outb(&f->bus, CMD, 0x60);
	outb(&f->bus, DATA, 0x00);  /* no interrupts, SYS off */
	assert_int_equal(inb(&f->bus, CMD) & 0x0c, 0x00);
	outb(&f->bus, CMD, 0xa8);
	outb(&f->bus, CMD, 0xad);
	outb(&f->bus, CMD, 0x20);
	assert_int_equal(inb(&f->bus, DATA), 0x10);
	outb(&f->bus, CMD, 0xae);
	outb(&f->bus, CMD, 0xa7);
	outb(&f->bus, CMD, 0x20);
	assert_int_equal(inb(&f->bus, DATA), 0x20);
	/* With interrupts off, no byte raised the line. */
	assert_int_equal(f->irq.raises[I8042_KBD_GSI], 1); /* only the first 0x20 */
	/* Other controller RAM bytes. */
	outb(&f->bus, CMD, 0x65);
	outb(&f->bus, DATA, 0x99);
	outb(&f->bus, CMD, 0x25);
	assert_int_equal(inb(&f->bus, DATA), 0x99);
}

static void reset_lines(void **state)
{
	struct fixture *f = *state;

	outb(&f->bus, CMD, 0xff);   /* pulse nothing */
	assert_int_equal(f->plat.resets, 0);
	outb(&f->bus, CMD, 0xfe);
	assert_int_equal(f->plat.resets, 1);
	outb(&f->bus, CMD, 0xf0);
	assert_int_equal(f->plat.resets, 2);
	outb(&f->bus, CMD, 0xd0);
	assert_int_equal(inb(&f->bus, DATA) & 0x03, 0x03);
	outb(&f->bus, CMD, 0xd1);
	outb(&f->bus, DATA, 0x03);  /* A20 on, reset line high: nothing */
	assert_int_equal(f->plat.resets, 2);
	outb(&f->bus, CMD, 0xd1);
	outb(&f->bus, DATA, 0x02);
	assert_int_equal(f->plat.resets, 3);
	/* A wider access is not for this one-byte port. */
	outl(&f->bus, CMD, 0xfe);
	assert_int_equal(f->plat.resets, 3);
}

static void keyboard_probe(void **state)
{
	struct fixture *f = *state;
	unsigned gsi = I8042_KBD_GSI;

	outb(&f->bus, DATA, 0xff);
	assert_int_equal(inb(&f->bus, CMD) & 0x08, 0);  /* A2: data */
	assert_int_equal(f->irq.raises[gsi], 1);
	assert_int_equal(f->irq.level[gsi], 0);        /* a pulse, not a level */
	assert_int_equal(inb(&f->bus, DATA), 0xfa);
	assert_int_equal(f->irq.raises[gsi], 2);        /* next byte, next pulse */
	assert_int_equal(inb(&f->bus, DATA), 0xaa);
	assert_false(obf(f));
	outb(&f->bus, DATA, 0xf2);
	assert_int_equal(inb(&f->bus, DATA), 0xfa);
	assert_int_equal(inb(&f->bus, DATA), 0xab);
	assert_int_equal(inb(&f->bus, DATA), 0x83);
	outb(&f->bus, DATA, 0xed);  /* LEDs take a parameter */
	assert_int_equal(inb(&f->bus, DATA), 0xfa);
	outb(&f->bus, DATA, 0x07);
	assert_int_equal(inb(&f->bus, DATA), 0xfa);
	assert_false(obf(f));
	outb(&f->bus, DATA, 0xf4);
	assert_int_equal(inb(&f->bus, DATA), 0xfa);
	outb(&f->bus, DATA, 0xee);
	assert_int_equal(inb(&f->bus, DATA), 0xee);
}

static void aux_port(void **state)
{
	struct fixture *f = *state;

	outb(&f->bus, CMD, 0x60);
	outb(&f->bus, DATA, 0x47);  /* enable the aux interrupt too */
	outb(&f->bus, CMD, 0xd3);
	outb(&f->bus, DATA, 0x5a);
	assert_int_equal(inb(&f->bus, CMD) & 0x21, 0x21);  /* OBF + AUXB */
	assert_int_equal(f->irq.raises[I8042_AUX_GSI], 1);
	assert_int_equal(inb(&f->bus, DATA), 0x5a);
	outb(&f->bus, CMD, 0xd4);
	outb(&f->bus, DATA, 0xff);
	assert_int_equal(inb(&f->bus, DATA), 0xfe);
	assert_int_equal(f->irq.raises[I8042_KBD_GSI], 0);
}

static void queue_bounded(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < 100; i++)
		outb(&f->bus, DATA, 0xf2);
	for (unsigned i = 0; i < I8042_QUEUE_CAP; i++) {
		assert_true(obf(f));
		inb(&f->bus, DATA);
	}
	assert_false(obf(f));
}

static void save_restore(void **state)
{
	struct fixture *f = *state;
	struct i8042_state st, bad;
	struct verr err = {0};

	outb(&f->bus, DATA, 0xf2);
	assert_int_equal(inb(&f->bus, DATA), 0xfa);
	outb(&f->bus, CMD, 0xd1);     /* leave a controller command pending */
	i8042_save(&f->kbc, &st);
	assert_int_equal(st.count, 2);
	bad = st;
	bad.count = I8042_QUEUE_CAP + 1;
	assert_int_equal(i8042_restore(&f->kbc, &bad, &err), -EINVAL);

	inb(&f->bus, DATA);
	inb(&f->bus, DATA);
	outb(&f->bus, CMD, 0xad);
	assert_false(obf(f));
	assert_int_equal(i8042_restore(&f->kbc, &st, &err), 0);
	assert_int_equal(inb(&f->bus, DATA), 0xab);
	assert_int_equal(inb(&f->bus, DATA), 0x83);
	outb(&f->bus, DATA, 0x00);    /* the pending 0xd1: reset line low */
	assert_int_equal(f->plat.resets, 1);
}

/* SendCtrlAltDel: refused while the guest disables its keyboard, then the
 * eight set-1 bytes of Ctrl, Alt, Delete down and up (translation is on),
 * each raising IRQ 1 as it reaches the buffer; set 2 without translation. */
static void ctrl_alt_del(void **state)
{
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0,
					0x11, 0xf0, 0x14 };
	struct fixture *f = *state;
	struct verr err = {0};
	unsigned raises;

	outb(&f->bus, DATA, 0xf5);                     /* disable scanning */
	assert_int_equal(inb(&f->bus, DATA), 0xfa);
	assert_int_equal(i8042_send_ctrl_alt_del(&f->kbc, &err), -EAGAIN);
	assert_false(obf(f));
	outb(&f->bus, DATA, 0xf4);                     /* enable scanning */
	assert_int_equal(inb(&f->bus, DATA), 0xfa);
	raises = f->irq.raises[I8042_KBD_GSI];
	assert_int_equal(i8042_send_ctrl_alt_del(&f->kbc, &err), 0);
	for (size_t i = 0; i < sizeof(set1); i++) {
		assert_true(obf(f));
		assert_int_equal(inb(&f->bus, DATA), set1[i]);
	}
	assert_false(obf(f));
	assert_int_equal(f->irq.raises[I8042_KBD_GSI], raises + sizeof(set1));

	outb(&f->bus, CMD, 0x60);                      /* command byte: no XLATE */
	outb(&f->bus, DATA, 0x01 | 0x04);
	assert_int_equal(i8042_send_ctrl_alt_del(&f->kbc, &err), 0);
	for (size_t i = 0; i < sizeof(set2); i++)
		assert_int_equal(inb(&f->bus, DATA), set2[i]);
	assert_false(obf(f));

	/* No room for all of it: nothing is queued, so no half-pressed keys. */
	assert_int_equal(i8042_send_ctrl_alt_del(&f->kbc, &err), 0);
	assert_int_equal(i8042_send_ctrl_alt_del(&f->kbc, &err), -EAGAIN);
	for (size_t i = 0; i < sizeof(set2); i++)
		assert_int_equal(inb(&f->bus, DATA), set2[i]);
	assert_false(obf(f));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(controller_tests), T(command_byte), T(reset_lines), T(keyboard_probe),
		T(aux_port), T(queue_bounded), T(save_restore), T(ctrl_alt_del),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
