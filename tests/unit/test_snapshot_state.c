/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshot state file as hostile input (vm_snapshot_check, which
 * restore runs before it opens KVM): a well-formed file passes, and every
 * kind of damage — header, CRC, truncation, sections, device list — is
 * refused with a message, never a crash.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/rtc.h"
#include "devices/uart.h"
#include "state/format.h"
#include "vmm/vm.h"

#define NO_STR UINT32_MAX

/* What a test changes in an otherwise well-formed state file. */
struct shape {
	uint32_t ncpus, cfg_cpus;
	uint64_t mem;
	bool no_vm, skip_vcpu1, dup_config, config_second, bad_uart_size, unknown_tag;
	void (*devlist)(struct vbuf *d);  /* NULL: a list with one disk */
};

static void put_str(struct vbuf *b, const char *s)
{
	if (!s) {
		vbuf_put_u32(b, NO_STR);
		return;
	}
	vbuf_put_u32(b, (uint32_t)strlen(s));
	vbuf_put(b, s, strlen(s));
}

static void devlist_disk(struct vbuf *d)
{
	vbuf_put_u32(d, 1);
	put_str(d, "/images/root.qcow2");
	put_str(d, "qcow2");
	put_str(d, NULL);
	vbuf_put_u32(d, 0);
	vbuf_put_u32(d, 0);  /* no nets */
	vbuf_put_u32(d, 1);  /* rng */
}

static void put_section_sized(struct vbuf *p, uint32_t tag, size_t n)
{
	void *z = calloc(1, n);

	vbuf_put_tlv(p, tag, z, n);
	free(z);
}

static void build(const struct shape *s, struct vbuf *file)
{
	struct vbuf p = { 0 }, d = { 0 };
	uint32_t ncpus = s->ncpus ? s->ncpus : 2;
	uint64_t mem = s->mem ? s->mem : 64ull << 20;
	struct x86_mem_layout l = x86_mem_layout_for(mem);
	struct snapshot_config c = { s->cfg_cpus ? s->cfg_cpus : ncpus, 4096, mem, l.lowmem,
				     l.highmem };
	static const size_t dev[] = { sizeof(struct uart_state), sizeof(struct rtc_state),
		sizeof(struct i8042_state), sizeof(struct acpi_pm_state),
		sizeof(struct pci_host_state) };
	struct verr err = { 0 };

	if (s->config_second)
		vbuf_put_tlv(&p, SNAP_VM, "vm", 2);
	vbuf_put_tlv(&p, SNAP_CONFIG, &c, sizeof(c));
	if (s->dup_config)
		vbuf_put_tlv(&p, SNAP_CONFIG, &c, sizeof(c));
	if (!s->no_vm && !s->config_second)
		vbuf_put_tlv(&p, SNAP_VM, "vm", 2);
	for (uint32_t i = 0; i < ncpus; i++) {
		uint8_t blob[8] = { 0 };

		if (i == 1 && s->skip_vcpu1)
			continue;
		memcpy(blob, &i, 4);
		vbuf_put_tlv(&p, SNAP_VCPU, blob, sizeof(blob));
	}
	for (unsigned i = 0; i < 5; i++)
		put_section_sized(&p, SNAP_DEV_UART + i, dev[i] + (i == 0 && s->bad_uart_size));
	(s->devlist ? s->devlist : devlist_disk)(&d);
	vbuf_put_tlv(&p, SNAP_VIRTIO_DEVICES, d.data, d.len);
	if (s->unknown_tag)
		vbuf_put_tlv(&p, 77, "x", 1);
	assert_int_equal(snapshot_encode(&p, file, &err), 0);
	vbuf_free(&p);
	vbuf_free(&d);
}

static int check(const struct shape *s, struct verr *err)
{
	struct vbuf f = { 0 };
	int rc;

	build(s, &f);
	rc = vm_snapshot_check(f.data, f.len, "state", err);
	vbuf_free(&f);
	return rc;
}

static void refused(const struct shape *s, const char *needle)
{
	struct verr err = { 0 };

	assert_true(check(s, &err) < 0);
	if (!strstr(err.msg, needle))
		fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void well_formed_passes(void **state)
{
	struct shape s = { 0 };
	struct verr err = { 0 };

	(void)state;
	assert_int_equal(check(&s, &err), 0);
	s.mem = 5ull << 30;  /* with memory above 4 GiB */
	assert_int_equal(check(&s, &err), 0);
}

static void header_and_crc(void **state)
{
	struct shape s = { 0 };
	struct vbuf f = { 0 };

	(void)state;
	build(&s, &f);
	/* every byte of the header and a spread of payload bytes, flipped */
	for (size_t i = 0; i < f.len; i += i < SNAPSHOT_HEADER_SIZE ? 1 : 7) {
		struct verr err = { 0 };

		if (i >= 28 && i < 32)
			continue;  /* reserved: ignored */
		f.data[i] ^= 0x41;
		assert_true(vm_snapshot_check(f.data, f.len, "state", &err) < 0);
		assert_true(err.msg[0] != '\0');
		f.data[i] ^= 0x41;
	}
	vbuf_free(&f);
}

static void truncated_everywhere(void **state)
{
	struct shape s = { 0 };
	struct vbuf f = { 0 };

	(void)state;
	build(&s, &f);
	for (size_t n = 0; n < f.len; n++) {
		struct verr err = { 0 };
		uint8_t *copy = malloc(n ? n : 1);

		memcpy(copy, f.data, n);  /* its own allocation: ASan sees overreads */
		assert_true(vm_snapshot_check(copy, n, "state", &err) < 0);
		assert_true(err.msg[0] != '\0');
		free(copy);
	}
	vbuf_free(&f);
}

static void sections(void **state)
{
	(void)state;
	refused(&(struct shape){ .no_vm = true }, "lacks its configuration or VM state");
	refused(&(struct shape){ .config_second = true }, "does not start with its configuration");
	refused(&(struct shape){ .dup_config = true }, "bad configuration section");
	refused(&(struct shape){ .skip_vcpu1 = true }, "state of vCPU 1 missing");
	refused(&(struct shape){ .ncpus = 3, .cfg_cpus = 2 }, "vCPU section 2 out of range");
	refused(&(struct shape){ .bad_uart_size = true }, "wrong size");
	refused(&(struct shape){ .unknown_tag = true }, "unknown section 77");
	refused(&(struct shape){ .mem = (64ull << 20) + 4096 * 3 + 1 }, "memory layout");
}

/* ---- the virtio device list ---- */

static void list_nine_disks(struct vbuf *d)
{
	vbuf_put_u32(d, 9);
}

static void list_string_past_end(struct vbuf *d)
{
	vbuf_put_u32(d, 1);
	vbuf_put_u32(d, 1000);
	vbuf_put(d, "abc", 3);
}

static void list_string_with_nul(struct vbuf *d)
{
	vbuf_put_u32(d, 1);
	vbuf_put_u32(d, 4);
	vbuf_put(d, "a\0bc", 4);
}

static void list_disk_without_path(struct vbuf *d)
{
	vbuf_put_u32(d, 1);
	put_str(d, NULL);
	put_str(d, NULL);
	put_str(d, NULL);
	vbuf_put_u32(d, 0);
	vbuf_put_u32(d, 0);
	vbuf_put_u32(d, 0);
}

static void list_net_without_tap(struct vbuf *d)
{
	vbuf_put_u32(d, 0);
	vbuf_put_u32(d, 1);
	put_str(d, NULL);
	vbuf_put(d, "\x52\x54\0\0\0\1", 6);
	vbuf_put_u32(d, 0);
}

static void list_five_nets(struct vbuf *d)
{
	vbuf_put_u32(d, 0);
	vbuf_put_u32(d, 5);
}

static void ext(struct vbuf *d, uint32_t flags, uint64_t cid, const char *uds, uint32_t nets,
		uint32_t queues)
{
	vbuf_put_u32(d, 0);
	vbuf_put_u32(d, nets);
	for (uint32_t i = 0; i < nets; i++) {
		put_str(d, "tap0");
		vbuf_put(d, "\x52\x54\0\0\0\1", 6);
	}
	vbuf_put_u32(d, 0);
	vbuf_put_u32(d, flags);
	vbuf_put_u64(d, cid);
	put_str(d, uds);
	for (uint32_t i = 0; i < nets; i++)
		vbuf_put_u32(d, queues);
}

static void list_ext_ok(struct vbuf *d) { ext(d, 1, 3, "/run/v.sock", 1, 2); }
static void list_ext_bad_flags(struct vbuf *d) { ext(d, 6, 0, NULL, 0, 0); }
static void list_ext_reserved_cid(struct vbuf *d) { ext(d, 0, 2, "/run/v.sock", 0, 0); }
static void list_ext_huge_cid(struct vbuf *d) { ext(d, 0, 1ull << 32, "/run/v.sock", 0, 0); }
static void list_ext_cid_no_socket(struct vbuf *d) { ext(d, 0, 3, NULL, 0, 0); }
static void list_ext_socket_no_cid(struct vbuf *d) { ext(d, 0, 0, "/run/v.sock", 0, 0); }
static void list_ext_no_queues(struct vbuf *d) { ext(d, 0, 0, NULL, 1, 0); }
static void list_ext_many_queues(struct vbuf *d) { ext(d, 0, 0, NULL, 1, 9); }

static void list_ext_trailing(struct vbuf *d)
{
	ext(d, 0, 0, NULL, 0, 0);
	vbuf_put_u32(d, 0);
}

static void list_ext_cut(struct vbuf *d)
{
	ext(d, 0, 0, NULL, 0, 0);
	d->len -= 2;  /* inside the socket path's length */
}

static void device_list(void **state)
{
	struct verr err = { 0 };

	(void)state;
	/* an older vireo's list (ends after rng), and a full one, load */
	assert_int_equal(check(&(struct shape){ 0 }, &err), 0);
	assert_int_equal(check(&(struct shape){ .devlist = list_ext_ok }, &err), 0);

	refused(&(struct shape){ .devlist = list_nine_disks }, "9 disks");
	refused(&(struct shape){ .devlist = list_string_past_end }, "malformed virtio device list");
	refused(&(struct shape){ .devlist = list_string_with_nul }, "malformed string");
	refused(&(struct shape){ .devlist = list_disk_without_path }, "disk 0 has no path");
	refused(&(struct shape){ .devlist = list_net_without_tap }, "interface 0 has no tap");
	refused(&(struct shape){ .devlist = list_five_nets }, "5 network interfaces");
	refused(&(struct shape){ .devlist = list_ext_bad_flags }, "unknown device flags 0x6");
	refused(&(struct shape){ .devlist = list_ext_reserved_cid }, "malformed vsock device (CID 2)");
	refused(&(struct shape){ .devlist = list_ext_huge_cid }, "malformed vsock device");
	refused(&(struct shape){ .devlist = list_ext_cid_no_socket }, "malformed vsock device (CID 3)");
	refused(&(struct shape){ .devlist = list_ext_socket_no_cid }, "vsock socket without a vsock device");
	refused(&(struct shape){ .devlist = list_ext_no_queues }, "has 0 queue pairs");
	refused(&(struct shape){ .devlist = list_ext_many_queues }, "has 9 queue pairs");
	refused(&(struct shape){ .devlist = list_ext_trailing }, "malformed virtio device list");
	refused(&(struct shape){ .devlist = list_ext_cut }, "malformed");
}

/* With VIREO_SNAPSHOT_SEED_DIR set, the well-formed files are written
 * there too: scripts/fuzz.sh seeds fuzz_snapshot's corpus with them. */
static void write_seeds(void)
{
	static const struct shape seeds[] = { { 0 }, { .devlist = list_ext_ok, .mem = 5ull << 30 } };
	const char *dir = getenv("VIREO_SNAPSHOT_SEED_DIR");

	for (unsigned i = 0; dir && i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char path[4096];
		struct vbuf f = { 0 };
		FILE *out;

		build(&seeds[i], &f);
		snprintf(path, sizeof(path), "%s/state%u", dir, i);
		if ((out = fopen(path, "wb"))) {
			fwrite(f.data, 1, f.len, out);
			fclose(out);
		}
		vbuf_free(&f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(well_formed_passes),
		cmocka_unit_test(header_and_crc),
		cmocka_unit_test(truncated_everywhere),
		cmocka_unit_test(sections),
		cmocka_unit_test(device_list),
	};
	write_seeds();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
