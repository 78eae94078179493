/* SPDX-License-Identifier: Apache-2.0 */
/* i8042 controller and a minimal AT keyboard; see i8042.h. */
#include "devices/i8042.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"

#define STS_OBF 0x01
#define STS_SYS 0x04
#define STS_A2 0x08          /* last write went to the command port */
#define STS_UNINHIBITED 0x10
#define STS_AUXB 0x20

#define CB_KBD_INT 0x01
#define CB_AUX_INT 0x02
#define CB_SYS 0x04
#define CB_KBD_OFF 0x10
#define CB_AUX_OFF 0x20
#define CB_XLATE 0x40

#define OUT_RESET 0x01       /* active low: 0 resets the CPU */
#define OUT_A20 0x02
#define OUT_KBD_OBF 0x10
#define OUT_AUX_OBF 0x20

#define KBD_ACK 0xfa
#define KBD_NAK 0xfe
#define KBD_BAT_OK 0xaa

static const char *const I8042_CTX = "i8042";

static void i8042_pulse(struct i8042 *k, const struct i8042_byte *b)
{
	uint8_t cb = k->ram[0];

	/* Edge-triggered ISA lines: a pulse per byte reaching the buffer. */
	if (b->aux && (cb & CB_AUX_INT)) {
		irq_line_set(&k->aux_irq, 1);
		irq_line_set(&k->aux_irq, 0);
	} else if (!b->aux && (cb & CB_KBD_INT)) {
		irq_line_set(&k->kbd_irq, 1);
		irq_line_set(&k->kbd_irq, 0);
	}
}

static void i8042_push(struct i8042 *k, uint8_t value, bool aux)
{
	struct i8042_byte *b;

	if (k->count >= I8042_QUEUE_CAP) {
		log_debug(I8042_CTX, "output queue full, dropped 0x%02x", value);
		return;
	}
	b = &k->queue[(k->head + k->count) % I8042_QUEUE_CAP];
	*b = (struct i8042_byte){ value, aux };
	if (k->count++ == 0)
		i8042_pulse(k, b);
}

static uint8_t i8042_pop(struct i8042 *k)
{
	if (k->count == 0)
		return k->last_out;
	k->last_out = k->queue[k->head].value;
	k->head = (k->head + 1) % I8042_QUEUE_CAP;
	if (--k->count)
		i8042_pulse(k, &k->queue[k->head]);
	return k->last_out;
}

static uint8_t i8042_status(const struct i8042 *k)
{
	uint8_t s = k->status | STS_UNINHIBITED;

	if (k->count) {
		s |= STS_OBF;
		if (k->queue[k->head].aux)
			s |= STS_AUXB;
	}
	return s;
}

static uint8_t i8042_outport(const struct i8042 *k)
{
	uint8_t v = k->outport & ~(OUT_KBD_OBF | OUT_AUX_OBF);

	if (k->count)
		v |= k->queue[k->head].aux ? OUT_AUX_OBF : OUT_KBD_OBF;
	return v;
}

static void i8042_set_cmd_byte(struct i8042 *k, uint8_t v)
{
	k->ram[0] = v;
	/* The system flag in the status register mirrors command byte bit 2. */
	k->status = (k->status & ~STS_SYS) | (v & CB_SYS);
}

/* Keyboard command parameters (LEDs, scan code set, typematic rate). */
static void i8042_kbd_param(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->kbd_pending;

	k->kbd_pending = 0;
	i8042_push(k, KBD_ACK, false);
	if (cmd == 0xf0 && v == 0)
		i8042_push(k, 2, false);  /* "which set?": set 2 */
}

static void i8042_kbd_write(struct i8042 *k, uint8_t v)
{
	if (k->kbd_pending) {
		i8042_kbd_param(k, v);
		return;
	}
	switch (v) {
	case 0xff:                   /* reset and self-test */
		k->scanning = true;
		i8042_push(k, KBD_ACK, false);
		i8042_push(k, KBD_BAT_OK, false);
		break;
	case 0xf2:                   /* identify: MF2 keyboard */
		i8042_push(k, KBD_ACK, false);
		i8042_push(k, 0xab, false);
		i8042_push(k, 0x83, false);
		break;
	case 0xee:                   /* echo */
		i8042_push(k, 0xee, false);
		break;
	case 0xed: case 0xf0: case 0xf3:
		k->kbd_pending = v;
		i8042_push(k, KBD_ACK, false);
		break;
	case 0xf4: case 0xf5:
		k->scanning = v == 0xf4;
		i8042_push(k, KBD_ACK, false);
		break;
	default:
		i8042_push(k, KBD_ACK, false);
		break;
	}
}

/* Data byte for a controller command written earlier to 0x64. Returns true
 * when the guest asked for a reset. */
static bool i8042_ctrl_data(struct i8042 *k, uint8_t cmd, uint8_t v)
{
	if (cmd >= 0x60 && cmd <= 0x7f) {
		if (cmd == 0x60)
			i8042_set_cmd_byte(k, v);
		else
			k->ram[cmd & 0x1f] = v;
		return false;
	}
	switch (cmd) {
	case 0xd1:
		k->outport = v;
		return !(v & OUT_RESET);
	case 0xd2: i8042_push(k, v, false); break;
	case 0xd3: i8042_push(k, v, true); break;
	case 0xd4:
		/* No mouse: NAK, so a probing driver gives up at once. */
		log_debug(I8042_CTX, "aux byte 0x%02x: no device", v);
		i8042_push(k, KBD_NAK, true);
		break;
	default: break;
	}
	return false;
}

static bool i8042_data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->ctrl_pending;

	k->status &= ~STS_A2;
	if (cmd) {
		k->ctrl_pending = 0;
		return i8042_ctrl_data(k, cmd, v);
	}
	i8042_kbd_write(k, v);
	return false;
}

/* Returns true when the guest asked for a reset. */
static bool i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->status |= STS_A2;
	k->ctrl_pending = 0;
	if (cmd >= 0x20 && cmd <= 0x3f) {
		i8042_push(k, k->ram[cmd & 0x1f], false);
		return false;
	}
	if (cmd >= 0x60 && cmd <= 0x7f) {
		k->ctrl_pending = cmd;
		return false;
	}
	if (cmd >= 0xf0)   /* pulse output lines whose bit is 0; bit 0 is reset */
		return !(cmd & OUT_RESET);
	switch (cmd) {
	case 0xa7: k->ram[0] |= CB_AUX_OFF; break;
	case 0xa8: k->ram[0] &= ~CB_AUX_OFF; break;
	case 0xa9: case 0xab: i8042_push(k, 0x00, false); break; /* port tests pass */
	case 0xaa: i8042_push(k, 0x55, false); break;           /* self-test passes */
	case 0xad: k->ram[0] |= CB_KBD_OFF; break;
	case 0xae: k->ram[0] &= ~CB_KBD_OFF; break;
	case 0xc0: i8042_push(k, 0x80, false); break;           /* input port */
	case 0xd0: i8042_push(k, i8042_outport(k), false); break;
	case 0xd1: case 0xd2: case 0xd3: case 0xd4: k->ctrl_pending = cmd; break;
	case 0xdd: k->outport &= ~OUT_A20; break;
	case 0xdf: k->outport |= OUT_A20; break;
	case 0xe0: i8042_push(k, 0x00, false); break;           /* test inputs */
	default: log_debug(I8042_CTX, "ignored command 0x%02x", cmd); break;
	}
	return false;
}

static void i8042_request_reset(struct i8042 *k)
{
	log_debug(I8042_CTX, "guest requested reset");
	if (k->plat.request_reset)
		k->plat.request_reset(k->plat.ctx);
}

/* Both ports are one byte wide: the bus refuses wider accesses. */
static void i8042_read_data(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data = i8042_pop(k);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write_data(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct i8042 *k = opaque;
	bool reset;

	pthread_mutex_lock(&k->lock);
	reset = i8042_data_write(k, *(const uint8_t *)data);
	pthread_mutex_unlock(&k->lock);
	/* Outside the lock: the VM may stop vCPUs that are waiting on it. */
	if (reset)
		i8042_request_reset(k);
}

static void i8042_read_status(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data = i8042_status(k);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write_cmd(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct i8042 *k = opaque;
	bool reset;

	pthread_mutex_lock(&k->lock);
	reset = i8042_command(k, *(const uint8_t *)data);
	pthread_mutex_unlock(&k->lock);
	if (reset)
		i8042_request_reset(k);
}

const struct bus_dev_ops i8042_data_ops = { i8042_read_data, i8042_write_data };
const struct bus_dev_ops i8042_cmd_ops = { i8042_read_status, i8042_write_cmd };

int i8042_init(struct i8042 *k, const struct irq_line *kbd_irq,
	       const struct irq_line *aux_irq, const struct platform_ops *plat,
	       struct verr *err)
{
	int rc;

	memset(k, 0, sizeof(*k));
	if (kbd_irq)
		k->kbd_irq = *kbd_irq;
	if (aux_irq)
		k->aux_irq = *aux_irq;
	if (plat)
		k->plat = *plat;
	/* As firmware leaves it: keyboard interrupt, POST done, translation. */
	i8042_set_cmd_byte(k, CB_KBD_INT | CB_SYS | CB_XLATE | CB_AUX_OFF);
	k->outport = OUT_RESET | OUT_A20;
	k->scanning = true;
	rc = pthread_mutex_init(&k->lock, NULL);
	if (rc)
		return verr_set(err, rc, "i8042: cannot create lock");
	return 0;
}

void i8042_destroy(struct i8042 *k)
{
	if (k)
		pthread_mutex_destroy(&k->lock);
}

int i8042_attach(struct i8042 *k, struct bus *pio, struct verr *err)
{
	int rc = bus_register(pio, I8042_DATA_PORT, 1, "i8042", &i8042_data_ops, k, err);

	if (rc)
		return rc;
	rc = bus_register(pio, I8042_CMD_PORT, 1, "i8042", &i8042_cmd_ops, k, err);
	if (rc)
		bus_unregister(pio, I8042_DATA_PORT, k);
	return rc;
}

int i8042_send_ctrl_alt_del(struct i8042 *k, struct verr *err)
{
	/* Left Ctrl, left Alt, Delete (an extended key) down, then up. */
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0,
					0x11, 0xf0, 0x14 };
	const uint8_t *codes;
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&k->lock);
	if (k->ram[0] & CB_XLATE) {
		codes = set1;
		n = sizeof(set1);
	} else {
		codes = set2;
		n = sizeof(set2);
	}
	if (!k->scanning || (k->ram[0] & CB_KBD_OFF)) {
		rc = verr_set(err, EAGAIN, "the guest has not enabled its keyboard");
	} else if (k->count + n > I8042_QUEUE_CAP) {
		rc = verr_set(err, EAGAIN, "the keyboard's buffer is full; try again");
	} else {
		for (size_t i = 0; i < n; i++)
			i8042_push(k, codes[i], false);
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}

void i8042_save(struct i8042 *k, struct i8042_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&k->lock);
	memcpy(st->ram, k->ram, sizeof(st->ram));
	st->status = k->status;
	st->outport = k->outport;
	st->ctrl_pending = k->ctrl_pending;
	st->kbd_pending = k->kbd_pending;
	st->last_out = k->last_out;
	st->scanning = k->scanning;
	st->count = (uint8_t)k->count;
	for (unsigned i = 0; i < k->count; i++)
		st->queue[i] = k->queue[(k->head + i) % I8042_QUEUE_CAP];
	pthread_mutex_unlock(&k->lock);
}

int i8042_restore(struct i8042 *k, const struct i8042_state *st, struct verr *err)
{
	if (st->count > I8042_QUEUE_CAP)
		return verr_set(err, EINVAL, "i8042: bad saved state (queue count %u)", st->count);
	pthread_mutex_lock(&k->lock);
	memcpy(k->ram, st->ram, sizeof(k->ram));
	k->status = st->status & (STS_SYS | STS_A2);
	k->outport = st->outport;
	k->ctrl_pending = st->ctrl_pending;
	k->kbd_pending = st->kbd_pending;
	k->last_out = st->last_out;
	k->scanning = st->scanning != 0;
	k->head = 0;
	k->count = st->count;
	for (unsigned i = 0; i < st->count; i++)
		k->queue[i] = (struct i8042_byte){ st->queue[i].value, st->queue[i].aux };
	pthread_mutex_unlock(&k->lock);
	return 0;
}
