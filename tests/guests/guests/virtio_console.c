/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-console (virtio 1.2, 5.3) from ring 3, one port without
 * MULTIPORT: queue 0 receives, queue 1 transmits.  The guest writes
 * "HVC hello <token>" through the transmit queue, then reads one line from
 * the receive queue (what the host typed on vireo's stdin) and writes it
 * back as "HVC echo <line>".  Nothing "HVC" goes to COM1, so a host that
 * sees those lines saw the virtio-console's output.
 *
 * Command line: token=WORD (default "vireo"); wait_s=N seconds to wait for
 * the input line (default 30); event_idx, indirect as virtio_blk.
 */
#include "virtio.h"

const char guest_name[] = "virtio_console";

#define VIRTIO_ID_CONSOLE 3
#define RX_BUFS 8
#define RX_BUF_LEN 64
#define LINE_MAX 128

static struct vdev dev;
static struct vq *rxq, *txq;
static uint8_t *rx_buf[256];		/* by descriptor head */

static void hvc_write(const char *s)
{
	static char out[LINE_MAX + 32];
	uint32_t n = (uint32_t)strlen(s);
	CHECK(n <= sizeof(out), "console line of %u bytes", n);
	memcpy(out, s, n);
	struct vbuf b = { out, n, false };
	uint32_t used = vq_exec(txq, &b, 1);
	CHECK(used == 0, "transmit used length %u: the device wrote into an output buffer", used);
}

static void rx_post(uint8_t *buf)
{
	struct vbuf b = { buf, RX_BUF_LEN, true };
	int head = vq_add(rxq, &b, 1);
	CHECK(head >= 0, "receive queue full");
	rx_buf[head] = buf;
}

/* Bytes from the receive queue until a newline (not kept), bounded by
 * the line's size and by wait_s. */
static uint32_t read_line(char *line, uint32_t max, uint64_t timeout_us)
{
	uint64_t end = tsc_deadline(timeout_us);
	uint32_t have = 0;
	for (;;) {
		uint32_t len;
		int head = vq_get(rxq, &len);
		if (head < 0) {
			CHECK(rdtsc() < end, "no input line within the time (%u bytes so far)", have);
			cpu_relax();
			continue;
		}
		CHECK(rx_buf[head], "receive used id %d was not posted", head);
		CHECK(len <= RX_BUF_LEN, "receive used length %u > buffer %u", len, RX_BUF_LEN);
		uint8_t *buf = rx_buf[head];
		rx_buf[head] = NULL;
		for (uint32_t i = 0; i < len; i++) {
			if (buf[i] == '\n' || buf[i] == '\r') {
				line[have] = 0;
				return have;
			}
			CHECK(have + 1 < max, "input line longer than %u bytes", max - 1);
			line[have++] = (char)buf[i];
		}
		rx_post(buf);
		vq_kick(rxq);
	}
}

/* "HVC <what> <arg>\n" into out (sized LINE_MAX + 32, arg < LINE_MAX). */
static void hvc_line(char *out, const char *what, const char *arg)
{
	size_t n = 0, w = strlen(what), a = strlen(arg);
	memcpy(out, "HVC ", 4);
	n = 4;
	memcpy(out + n, what, w);
	n += w;
	out[n++] = ' ';
	memcpy(out + n, arg, a);
	n += a;
	out[n++] = '\n';
	out[n] = 0;
}

void guest_main(void)
{
	static char token[64] = "vireo", line[LINE_MAX], msg[LINE_MAX + 32];
	cmdline_get("token", token, sizeof(token));
	uint64_t wait_s = cmdline_u64("wait_s", 30);

	virtio_open(&dev, VIRTIO_ID_CONSOLE, 0, virtio_cmdline_features());
	virtio_require(&dev, virtio_cmdline_features());
	CHECK(dev.nqueues >= 2, "console device has %u queues", dev.nqueues);
	rxq = virtio_queue(&dev, 0, 16);
	txq = virtio_queue(&dev, 1, 16);
	for (int i = 0; i < RX_BUFS && i < rxq->size; i++)
		rx_post(dma_alloc(RX_BUF_LEN, 64));
	virtio_driver_ok(&dev);
	vq_kick(rxq);

	hvc_line(msg, "hello", token);
	hvc_write(msg);
	printf("VCON: hello sent, waiting for a line on the receive queue\n");
	uint32_t n = read_line(line, sizeof(line), wait_s * 1000000);
	printf("VCON: received %u bytes\n", n);
	hvc_line(msg, "echo", line);
	hvc_write(msg);
	printf("VCON: %lu transmits, MSI-X tx %lu rx %lu\n", txq->completed, vq_irqs(txq),
	       vq_irqs(rxq));
	virtio_reset(&dev);
}
