/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VM snapshots: the state file (src/state/format.h container with the
 * accelerator's VM and vCPU blobs and each device's state) and the memory
 * file (a raw, sparse image of guest RAM in memfd order). Restore maps the
 * memory file copy-on-write, so it costs the same for any guest size.
 */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "core/log.h"
#include "state/format.h"

#define PAGE 4096ull

/* ---- saving ---- */

#define PUT_DEV(b, tag, save, dev, type)        \
	do {                                    \
		type st_;                       \
		memset(&st_, 0, sizeof(st_));    \
		save(dev, &st_);                \
		vbuf_put_tlv(b, tag, &st_, sizeof(st_)); \
	} while (0)

#define NO_STR UINT32_MAX
#define DEVLIST_CONSOLE_VIRTIO 1u
#define MAX_STR 4096

static void put_str(struct vbuf *b, const char *str)
{
	uint32_t n = str ? (uint32_t)strlen(str) : NO_STR;

	vbuf_put_u32(b, n);
	if (str)
		vbuf_put(b, str, n);
}

/* Absolute, so a restore from another directory finds the same files. */
static void put_path(struct vbuf *b, const char *path)
{
	char *abs = realpath(path, NULL);

	put_str(b, abs ? abs : path);
	free(abs);
}

/* What the devices are (to re-create them), then each transport's state. */
static int save_virtio(struct vm *vm, struct vbuf *p, struct verr *err)
{
	struct vbuf d = { 0 }, blob = { 0 };
	int rc = 0;

	vbuf_put_u32(&d, vm->cfg.ndisks);
	for (unsigned i = 0; i < vm->cfg.ndisks; i++) {
		const struct vm_disk *k = &vm->cfg.disks[i];
		put_path(&d, k->path);
		put_str(&d, k->format);
		put_str(&d, k->serial);
		vbuf_put_u32(&d, (uint32_t)k->read_only | (uint32_t)k->cache_none << 1);
	}
	vbuf_put_u32(&d, vm->cfg.nnets);
	for (unsigned i = 0; i < vm->cfg.nnets; i++) {
		put_str(&d, vm->cfg.nets[i].tap);
		vbuf_put(&d, vm->cfg.nets[i].mac, 6);
	}
	vbuf_put_u32(&d, vm->cfg.rng);
	/* Optional trailing fields (a list that ends after rng is an older
	 * vireo's): console, vsock, queue pairs per interface. */
	vbuf_put_u32(&d, vm->cfg.console_virtio ? DEVLIST_CONSOLE_VIRTIO : 0);
	vbuf_put_u64(&d, vm->cfg.vsock.cid);
	if (vm->cfg.vsock.cid)
		put_path(&d, vm->cfg.vsock.uds);
	else
		put_str(&d, NULL);
	for (unsigned i = 0; i < vm->cfg.nnets; i++)
		vbuf_put_u32(&d, vm->cfg.nets[i].queues ? vm->cfg.nets[i].queues : 1);
	vbuf_put_tlv(p, SNAP_VIRTIO_DEVICES, d.data, d.len);
	for (unsigned i = 0; rc == 0 && i < vm->nvirtio; i++) {
		blob.len = 0;
		vbuf_put_u32(&blob, i);
		rc = virtio_pci_save(vm->virtio[i], &blob, err);
		vbuf_put_tlv(p, SNAP_VIRTIO, blob.data, blob.len);
	}
	vbuf_free(&d);
	vbuf_free(&blob);
	return rc;
}

static int save_state(struct vm *vm, struct vbuf *p, struct verr *err)
{
	struct snapshot_config c = { vm->nvcpus, (uint32_t)PAGE, vm->layout.total,
		vm->layout.lowmem, vm->layout.highmem };
	struct vbuf blob = { 0 };
	int rc;

	vbuf_put_tlv(p, SNAP_CONFIG, &c, sizeof(c));
	if ((rc = accel_vm_save(vm->accel, &blob, err)) < 0)
		goto out;
	vbuf_put_tlv(p, SNAP_VM, blob.data, blob.len);
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		blob.len = 0;
		vbuf_put_u32(&blob, i);
		if ((rc = accel_vcpu_save(vm->vcpus[i].accel, &blob, err)) < 0)
			goto out;
		vbuf_put_tlv(p, SNAP_VCPU, blob.data, blob.len);
	}
	PUT_DEV(p, SNAP_DEV_UART, uart_save, &vm->com1, struct uart_state);
	PUT_DEV(p, SNAP_DEV_RTC, rtc_save, &vm->rtc, struct rtc_state);
	PUT_DEV(p, SNAP_DEV_I8042, i8042_save, &vm->i8042, struct i8042_state);
	PUT_DEV(p, SNAP_DEV_PM, acpi_pm_save, &vm->pm, struct acpi_pm_state);
	PUT_DEV(p, SNAP_DEV_PCI, pci_host_save, &vm->pci, struct pci_host_state);
	rc = save_virtio(vm, p, err);
out:
	vbuf_free(&blob);
	return rc;
}

static int write_all(int fd, const void *p, size_t n, uint64_t off, const char *path,
		     struct verr *err)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return verr_set(err, errno ? errno : EIO, "cannot write %s: %s", path,
					strerror(errno ? errno : EIO));
		p = (const uint8_t *)p + w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int write_state_file(const char *path, const struct vbuf *payload, struct verr *err)
{
	struct vbuf file = { 0 };
	char tmp[4200];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return verr_set(err, ENAMETOOLONG, "snapshot path too long");
	if ((rc = snapshot_encode(payload, &file, err)) < 0)
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = verr_set(err, errno, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = write_all(fd, file.data, file.len, 0, tmp, err);
	if (rc == 0 && fsync(fd) < 0)
		rc = verr_set(err, errno, "cannot sync %s: %s", tmp, strerror(errno));
	close(fd);
	/* rename: a reader never sees a half-written state file */
	if (rc == 0 && rename(tmp, path) < 0)
		rc = verr_set(err, errno, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
	if (rc < 0)
		unlink(tmp);
out:
	vbuf_free(&file);
	return rc;
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[64];
	for (unsigned i = 0; i < PAGE; i += 64)
		if (memcmp(p + i, zero, 64) != 0)
			return false;
	return true;
}

/* Full image: only non-zero data is written, so the file stays sparse. For
 * RAM in a file the holes are known from SEEK_DATA; anonymous RAM and a
 * privately mapped file (a restored VM) are scanned page by page. */
static int write_full(struct vm *vm, int fd, const char *path, struct verr *err)
{
	const struct guest_mem *m = &vm->mem;
	uint64_t off = 0;

	while (off < m->size) {
		uint64_t end = m->size;
		if (m->fd >= 0 && !m->private_file) {
			off_t d = lseek(m->fd, (off_t)off, SEEK_DATA);
			if (d < 0)
				break; /* ENXIO: no more data */
			off = (uint64_t)d;
			off_t h = lseek(m->fd, (off_t)off, SEEK_HOLE);
			end = h < 0 ? m->size : (uint64_t)h;
		} else {
			while (off < m->size && page_is_zero(m->base + off))
				off += PAGE;
			end = off;
			while (end < m->size && !page_is_zero(m->base + end))
				end += PAGE;
		}
		if (end > m->size)
			end = m->size;
		if (end > off && write_all(fd, m->base + off, end - off, off, path, err) < 0)
			return -EIO;
		off = end;
	}
	return 0;
}

/* Diff: the pages KVM logged as written since the last snapshot. */
static int write_dirty(struct vm *vm, int fd, const char *path, bool write, struct verr *err)
{
	const struct guest_mem *m = &vm->mem;

	for (unsigned s = 0; s < m->nregions; s++) {
		const struct guest_mem_region *r = &m->regions[s];
		uint64_t pages = r->size / PAGE, words = (pages + 63) / 64;
		uint64_t *bm = calloc(words ? words : 1, 8);
		int rc;

		if (!bm)
			return verr_set(err, ENOMEM, "out of memory");
		rc = accel_dirty_log(vm->accel, s, bm, err);
		for (uint64_t pg = 0; rc == 0 && write && pg < pages; pg++)
			if (bm[pg / 64] & (1ull << (pg % 64)))
				rc = write_all(fd, r->hva + pg * PAGE, PAGE, r->fd_offset + pg * PAGE, path, err);
		free(bm);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int write_memory(struct vm *vm, const char *path, bool diff, struct verr *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | (diff ? 0 : O_TRUNC) | O_CLOEXEC, 0600);
	struct stat st;
	int rc = 0;

	if (fd < 0)
		return verr_set(err, errno, "cannot create memory file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size != vm->mem.size &&
	    ftruncate(fd, (off_t)vm->mem.size) < 0)
		rc = verr_set(err, errno, "cannot size %s: %s", path, strerror(errno));
	if (rc == 0 && diff)
		rc = write_dirty(vm, fd, path, true, err);
	else if (rc == 0) {
		rc = write_full(vm, fd, path, err);
		/* restart dirty tracking from this point for the next diff */
		if (rc == 0 && vm->cfg.track_dirty_pages)
			rc = write_dirty(vm, fd, path, false, err);
	}
	if (rc == 0 && fdatasync(fd) < 0)
		rc = verr_set(err, errno, "cannot sync %s: %s", path, strerror(errno));
	close(fd);
	return rc;
}

int vm_snapshot_save(struct vm *vm, const char *state_path, const char *mem_path, bool diff,
		     struct verr *err)
{
	struct vbuf payload = { 0 };
	int rc;

	if (vm_get_run_state(vm) != VM_STATE_PAUSED)
		return verr_set(err, EPERM, "the VM must be paused to take a snapshot");
	if (diff && vm->nvirtio)
		return verr_set(err, ENOTSUP, "diff snapshots of VMs with virtio devices are not supported: device writes to guest memory are not in KVM's dirty log");
	if (diff && !vm->cfg.track_dirty_pages)
		return verr_set(err, EINVAL, "diff snapshots need dirty page tracking (track_dirty_pages)");
	rc = save_state(vm, &payload, err);
	/* The disks must hold everything the guest wrote up to now: the
	 * snapshot's memory (page cache) assumes it, and this process may be
	 * killed right after. */
	for (unsigned i = 0; rc == 0 && i < VM_MAX_DISKS; i++)
		if (vm->disks[i] && (rc = block_flush(vm->disks[i], err)) < 0)
			verr_prefix(err, "flushing %s: ", vm->cfg.disks[i].path);
	if (rc == 0)
		rc = write_memory(vm, mem_path, diff, err);
	/* Guest memory is in the file: the devices may run again. */
	for (unsigned i = 0; i < vm->nvirtio; i++)
		virtio_pci_save_finish(vm->virtio[i]);
	if (rc == 0)
		rc = write_state_file(state_path, &payload, err);
	vbuf_free(&payload);
	return rc;
}

/* ---- restoring ---- */

enum { DEV_UART, DEV_RTC, DEV_I8042, DEV_PM, DEV_PCI, NDEV };

struct parsed {
	struct snapshot_config cfg;
	bool have_cfg;
	const uint8_t *vm_blob;
	uint32_t vm_len;
	const uint8_t *vcpu[VM_MAX_VCPUS];
	uint32_t vcpu_len[VM_MAX_VCPUS];
	const uint8_t *dev[NDEV];
	uint32_t dev_len[NDEV];
	const uint8_t *virtio_devices;
	uint32_t virtio_devices_len;
	const uint8_t *virtio[VM_MAX_VIRTIO];
	uint32_t virtio_len[VM_MAX_VIRTIO];
};

static const size_t dev_size[NDEV] = {
	sizeof(struct uart_state), sizeof(struct rtc_state), sizeof(struct i8042_state),
	sizeof(struct acpi_pm_state), sizeof(struct pci_host_state),
};

static int read_state_file(const char *path, uint8_t **data, size_t *len, struct verr *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t got = 0;

	if (fd < 0)
		return verr_set(err, errno, "cannot open snapshot %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SNAPSHOT_MAX_SIZE) {
		close(fd);
		return verr_set(err, EINVAL, "snapshot %s is not a regular file of at most %u MiB",
				path, SNAPSHOT_MAX_SIZE >> 20);
	}
	*data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!*data) {
		close(fd);
		return verr_set(err, ENOMEM, "out of memory");
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return 0;
}

static int check_config(const struct snapshot_config *c, const char *name, struct verr *err)
{
	struct x86_mem_layout l = x86_mem_layout_for(c->mem_size);

	if (c->ncpus == 0 || c->ncpus > VM_MAX_VCPUS)
		return verr_set(err, EINVAL, "%s: snapshot names %u vCPUs", name, c->ncpus);
	if (c->page_size != PAGE || c->mem_size < (16ull << 20) || c->mem_size % PAGE ||
	    c->mem_size > (1ull << 46) || l.lowmem != c->lowmem || l.highmem != c->highmem)
		return verr_set(err, EINVAL, "%s: snapshot memory layout is not one vireo makes", name);
	return 0;
}

static int parse_section(struct parsed *p, uint32_t tag, const uint8_t *val, uint32_t len,
			 const char *name, struct verr *err)
{
	if (tag != SNAP_CONFIG && !p->have_cfg)
		return verr_set(err, EINVAL, "%s: snapshot does not start with its configuration", name);
	switch (tag) {
	case SNAP_CONFIG:
		if (p->have_cfg || len != sizeof(p->cfg))
			return verr_set(err, EINVAL, "%s: bad configuration section", name);
		memcpy(&p->cfg, val, len);
		p->have_cfg = true;
		return check_config(&p->cfg, name, err);
	case SNAP_VM:
		if (p->vm_blob)
			return verr_set(err, EINVAL, "%s: two VM sections", name);
		p->vm_blob = val;
		p->vm_len = len;
		return 0;
	case SNAP_VCPU: {
		uint32_t idx;
		if (len < 4)
			return verr_set(err, EINVAL, "%s: short vCPU section", name);
		memcpy(&idx, val, 4);
		if (idx >= p->cfg.ncpus || p->vcpu[idx])
			return verr_set(err, EINVAL, "%s: vCPU section %u out of range or repeated", name, idx);
		p->vcpu[idx] = val + 4;
		p->vcpu_len[idx] = len - 4;
		return 0;
	}
	case SNAP_VIRTIO_DEVICES:
		if (p->virtio_devices)
			return verr_set(err, EINVAL, "%s: two virtio device lists", name);
		p->virtio_devices = val;
		p->virtio_devices_len = len;
		return 0;
	case SNAP_VIRTIO: {
		uint32_t idx;
		if (len < 4)
			return verr_set(err, EINVAL, "%s: short virtio section", name);
		memcpy(&idx, val, 4);
		if (idx >= VM_MAX_VIRTIO || p->virtio[idx])
			return verr_set(err, EINVAL, "%s: virtio section %u out of range or repeated", name, idx);
		p->virtio[idx] = val + 4;
		p->virtio_len[idx] = len - 4;
		return 0;
	}
	default:
		if (tag < SNAP_DEV_UART || tag >= SNAP_DEV_UART + NDEV)
			return verr_set(err, EINVAL, "%s: unknown section %u", name, tag);
		tag -= SNAP_DEV_UART;
		if (p->dev[tag] || len != dev_size[tag])
			return verr_set(err, EINVAL, "%s: device section %u repeated or of the wrong size",
					name, tag);
		p->dev[tag] = val;
		p->dev_len[tag] = len;
		return 0;
	}
}

static int parse(const uint8_t *payload, size_t len, struct parsed *p, const char *name,
		 struct verr *err)
{
	struct vreader rd = vreader_init(payload, len);
	const uint8_t *val;
	uint32_t tag, l;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	while (rc == 0 && vreader_tlv(&rd, &tag, &val, &l))
		rc = parse_section(p, tag, val, l, name, err);
	if (rc < 0)
		return rc;
	if (rd.bad)
		return verr_set(err, EINVAL, "%s: a section runs past the end of the snapshot", name);
	if (!p->have_cfg || !p->vm_blob)
		return verr_set(err, EINVAL, "%s: snapshot lacks its configuration or VM state", name);
	for (unsigned i = 0; i < p->cfg.ncpus; i++)
		if (!p->vcpu[i])
			return verr_set(err, EINVAL, "%s: state of vCPU %u missing", name, i);
	for (unsigned d = 0; d < NDEV; d++)
		if (!p->dev[d])
			return verr_set(err, EINVAL, "%s: state of device %u missing", name, d);
	return 0;
}

static int restore_devices(struct vm *vm, const struct parsed *p, struct verr *err)
{
	union {
		struct uart_state uart;
		struct rtc_state rtc;
		struct i8042_state kbd;
		struct acpi_pm_state pm;
		struct pci_host_state pci;
	} u;
	int rc;

	memcpy(&u.uart, p->dev[DEV_UART], sizeof(u.uart));
	if ((rc = uart_restore(&vm->com1, &u.uart, err)) < 0)
		return rc;
	memcpy(&u.rtc, p->dev[DEV_RTC], sizeof(u.rtc));
	if ((rc = rtc_restore(&vm->rtc, &u.rtc, err)) < 0)
		return rc;
	memcpy(&u.kbd, p->dev[DEV_I8042], sizeof(u.kbd));
	if ((rc = i8042_restore(&vm->i8042, &u.kbd, err)) < 0)
		return rc;
	memcpy(&u.pm, p->dev[DEV_PM], sizeof(u.pm));
	acpi_pm_restore(&vm->pm, &u.pm);
	memcpy(&u.pci, p->dev[DEV_PCI], sizeof(u.pci));
	pci_host_restore(&vm->pci, &u.pci);
	return 0;
}

/* A string from the device list, copied into storage the VM owns. */
static int get_str(struct vm *vm, struct vreader *r, const char **out, struct verr *err)
{
	uint32_t n = vreader_u32(r);
	char *s;

	*out = NULL;
	if (n == NO_STR)
		return r->bad ? -EINVAL : 0;
	if (n > MAX_STR || r->bad || n > r->left ||
	    vm->nowned >= sizeof(vm->owned) / sizeof(vm->owned[0]))
		return verr_set(err, EINVAL, "snapshot: malformed virtio device list");
	s = strndup((const char *)r->p, n);
	if (!s || memchr(r->p, 0, n)) {
		free(s);
		return verr_set(err, EINVAL, "snapshot: malformed string in the virtio device list");
	}
	vreader_get(r, NULL, n);
	vm->owned[vm->nowned++] = s;
	*out = s;
	return 0;
}

/* The trailing fields: all of them or none. */
static int read_devices_ext(struct vm *vm, struct vreader *r, struct verr *err)
{
	struct vm_config *c = &vm->cfg;
	uint32_t flags = vreader_u32(r);
	int rc;

	if (flags & ~DEVLIST_CONSOLE_VIRTIO)
		return verr_set(err, EINVAL, "snapshot: unknown device flags 0x%x", flags);
	c->console_virtio = flags & DEVLIST_CONSOLE_VIRTIO;
	c->vsock.cid = vreader_u64(r);
	if ((rc = get_str(vm, r, &c->vsock.uds, err)) < 0)
		return rc;
	/* (a path too long for a socket is the device's to refuse, after a
	 * --vsock uds= could replace it) */
	if (c->vsock.cid && (c->vsock.cid < 3 || c->vsock.cid > UINT32_MAX - 1 || !c->vsock.uds ||
			     !*c->vsock.uds))
		return verr_set(err, EINVAL, "snapshot: malformed vsock device (CID %llu)",
				(unsigned long long)c->vsock.cid);
	if (!c->vsock.cid && c->vsock.uds)
		return verr_set(err, EINVAL, "snapshot: vsock socket without a vsock device");
	for (unsigned i = 0; i < c->nnets; i++) {
		c->nets[i].queues = vreader_u32(r);
		if (c->nets[i].queues < 1 || c->nets[i].queues > VM_NET_MAX_QUEUES)
			return verr_set(err, EINVAL, "snapshot: network interface %u has %u queue pairs",
					i, c->nets[i].queues);
	}
	return 0;
}

static int read_devices(struct vm *vm, struct vreader *r, struct verr *err)
{
	struct vm_config *c = &vm->cfg;
	int rc = 0;

	c->ndisks = vreader_u32(r);
	if (c->ndisks > VM_MAX_DISKS)
		return verr_set(err, EINVAL, "snapshot: %u disks", c->ndisks);
	for (unsigned i = 0; rc == 0 && i < c->ndisks; i++) {
		struct vm_disk *d = &c->disks[i];
		uint32_t flags;
		if ((rc = get_str(vm, r, &d->path, err)) < 0 || (rc = get_str(vm, r, &d->format, err)) < 0 ||
		    (rc = get_str(vm, r, &d->serial, err)) < 0)
			break;
		flags = vreader_u32(r);
		d->read_only = flags & 1;
		d->cache_none = (flags >> 1) & 1;
		if (!d->path)
			rc = verr_set(err, EINVAL, "snapshot: disk %u has no path", i);
	}
	c->nnets = rc == 0 ? vreader_u32(r) : 0;
	if (c->nnets > VM_MAX_NETS)
		return verr_set(err, EINVAL, "snapshot: %u network interfaces", c->nnets);
	for (unsigned i = 0; rc == 0 && i < c->nnets; i++) {
		memset(&c->nets[i], 0, sizeof(c->nets[i]));
		c->nets[i].queues = 1;          /* what a list without them means */
		rc = get_str(vm, r, &c->nets[i].tap, err);
		vreader_get(r, c->nets[i].mac, 6);
		if (rc == 0 && !c->nets[i].tap)
			rc = verr_set(err, EINVAL, "snapshot: network interface %u has no tap", i);
	}
	c->rng = rc == 0 && vreader_u32(r) != 0;
	if (rc == 0 && !r->bad && r->left)
		rc = read_devices_ext(vm, r, err);
	if (rc == 0 && (r->bad || r->left))
		rc = verr_set(err, EINVAL, "snapshot: malformed virtio device list");
	return rc;
}

/* A clone writes to a fresh qcow2 overlay over each disk of the snapshot. */
static int make_overlay(struct vm *vm, struct vm_disk *d, const char *dir, struct verr *err)
{
	struct block_open_opts ro = { .format = d->format };
	struct block_create_opts co = { .backing_file = d->path, .compat = 3 };
	struct block_info info;
	struct block_dev *bd;
	const char *base = strrchr(d->path, '/');
	char *path;
	int rc;

	if ((rc = block_open(d->path, &ro, &bd, err)) < 0)
		return rc;
	rc = block_get_info(bd, &info, err);
	co.size = info.virtual_size;
	co.backing_format = info.format;
	if (rc == 0 && asprintf(&path, "%s/%s.clone-%d.qcow2", dir, base ? base + 1 : d->path,
				(int)getpid()) < 0)
		rc = verr_set(err, ENOMEM, "out of memory");
	if (rc == 0 && vm->nowned >= sizeof(vm->owned) / sizeof(vm->owned[0])) {
		free(path);
		rc = verr_set(err, ENOSPC, "too many disks");
	}
	if (rc == 0) {
		vm->owned[vm->nowned++] = path;
		rc = block_create("qcow2", path, &co, err);
	}
	block_close(bd);
	if (rc == 0) {
		d->path = path;
		d->format = "qcow2";
	}
	return rc < 0 ? verr_prefix(err, "clone overlay for %s: ", d->path) : 0;
}

/* The guest knows its CID, so it stays; the socket may move: to the
 * command line's path, or for a clone to its own DIR/vsock.sock (clones
 * must not take each other's socket). */
static int configure_vsock(struct vm *vm, const struct vm_config *base, struct verr *err)
{
	struct vm_vsock *v = &vm->cfg.vsock;
	char *path;

	if (base->vsock.uds && !v->cid)
		return verr_set(err, EINVAL, "--vsock: the snapshot has no vsock device");
	if (base->vsock.cid && base->vsock.cid != v->cid)
		return verr_set(err, EINVAL, "--vsock: cid=%llu, but the snapshot's guest has CID %llu: a restored guest keeps its CID",
				(unsigned long long)base->vsock.cid, (unsigned long long)v->cid);
	if (base->vsock.uds) {
		v->uds = base->vsock.uds;
		return 0;
	}
	if (!v->cid || !base->clone_overlay_dir)
		return 0;
	if (asprintf(&path, "%s/vsock.sock", base->clone_overlay_dir) < 0)
		return verr_set(err, ENOMEM, "out of memory");
	if (strlen(path) > VM_VSOCK_UDS_MAX || vm->nowned >= sizeof(vm->owned) / sizeof(vm->owned[0])) {
		verr_set(err, ENAMETOOLONG, "clone vsock socket %s: longer than %d bytes", path,
			 VM_VSOCK_UDS_MAX);
		free(path);
		return -ENAMETOOLONG;
	}
	vm->owned[vm->nowned++] = path;
	v->uds = path;
	return 0;
}

/* Devices of the snapshot, with what the command line overrides for a
 * clone: taps (in order), disk overlays and the vsock socket. */
static int configure_virtio(struct vm *vm, const struct parsed *p, const struct vm_config *base,
			    struct verr *err)
{
	struct vreader r = vreader_init(p->virtio_devices, p->virtio_devices_len);
	int rc;

	if (!p->virtio_devices)
		return verr_set(err, EINVAL, "snapshot lacks its virtio device list");
	if ((rc = read_devices(vm, &r, err)) < 0)
		return rc;
	if (base->nnets && base->nnets != vm->cfg.nnets)
		return verr_set(err, EINVAL, "the snapshot has %u network interfaces; give as many --net options, or none",
				vm->cfg.nnets);
	for (unsigned i = 0; i < base->nnets; i++) {
		struct vm_net *n = &vm->cfg.nets[i];

		if (base->nets[i].queues && base->nets[i].queues != n->queues)
			return verr_set(err, EINVAL, "the snapshot's network interface %u has %u queue pairs: queues=%u cannot change them",
					i, n->queues, base->nets[i].queues);
		n->tap = base->nets[i].tap;
		n->has_fd = base->nets[i].has_fd;
		n->fd = base->nets[i].fd;
		if (n->has_fd && n->queues > 1)
			return verr_set(err, EINVAL, "the snapshot's network interface %u has %u queue pairs: fd= gives one",
					i, n->queues);
	}
	if ((rc = configure_vsock(vm, base, err)) < 0)
		return rc;
	for (unsigned i = 0; base->clone_overlay_dir && i < vm->cfg.ndisks; i++)
		if ((rc = make_overlay(vm, &vm->cfg.disks[i], base->clone_overlay_dir, err)) < 0)
			return rc;
	return 0;
}

static int restore_virtio(struct vm *vm, const struct parsed *p, struct verr *err)
{
	int rc = 0;

	for (unsigned i = 0; rc == 0 && i < vm->nvirtio; i++) {
		if (!p->virtio[i])
			return verr_set(err, EINVAL, "snapshot: state of virtio device %u missing", i);
		rc = virtio_pci_restore(vm->virtio[i], p->virtio[i], p->virtio_len[i], err);
	}
	if (rc == 0 && vm->nvirtio < VM_MAX_VIRTIO && p->virtio[vm->nvirtio])
		rc = verr_set(err, EINVAL, "snapshot: more virtio devices than it lists");
	return rc;
}

static int restore_into(struct vm *vm, const struct parsed *p, const struct vm_config *base,
			const char *mem_path, struct verr *err)
{
	int rc = vm_setup_memory(vm, mem_path, err);

	if (rc == 0)
		rc = vm_setup_devices(vm, err);
	if (rc == 0)
		rc = configure_virtio(vm, p, base, err);
	if (rc == 0)
		rc = vm_setup_virtio(vm, err);
	if (rc == 0)
		rc = restore_devices(vm, p, err);
	if (rc == 0)
		rc = restore_virtio(vm, p, err);
	if (rc == 0)
		rc = accel_vm_restore(vm->accel, p->vm_blob, p->vm_len, err);
	/* vCPU state can name guest memory (kvmclock's MSRs): slots first */
	if (rc == 0)
		rc = vm_memory_ready(vm, err);
	for (unsigned i = 0; rc == 0 && i < vm->nvcpus; i++)
		rc = accel_vcpu_restore(vm->vcpus[i].accel, p->vcpu[i], p->vcpu_len[i], err);
	/* devices go live only now: their interrupts need the restored LAPICs */
	for (unsigned i = 0; rc == 0 && i < vm->nvirtio; i++)
		virtio_pci_restore_finish(vm->virtio[i]);
	return rc;
}

/* Everything in a state file that can be checked before a VM is built:
 * header and CRC, sections, and the virtio device list (read into a
 * scratch VM whose strings are freed again). */
static int check_state(const uint8_t *data, size_t len, const char *name, struct parsed *p,
		       struct verr *err)
{
	const uint8_t *payload;
	size_t plen = 0;
	struct vm *scratch;
	struct vreader r;
	int rc = snapshot_decode(data, len, name, &payload, &plen, err);

	if (rc == 0)
		rc = parse(payload, plen, p, name, err);
	if (rc < 0)
		return rc;
	if (!p->virtio_devices)
		return verr_set(err, EINVAL, "%s: snapshot lacks its virtio device list", name);
	if (!(scratch = calloc(1, sizeof(*scratch))))
		return verr_set(err, ENOMEM, "out of memory");
	r = vreader_init(p->virtio_devices, p->virtio_devices_len);
	rc = read_devices(scratch, &r, err);
	for (unsigned i = 0; i < scratch->nowned; i++)
		free(scratch->owned[i]);
	free(scratch);
	return rc;
}

int vm_snapshot_check(const uint8_t *data, size_t len, const char *name, struct verr *err)
{
	struct parsed *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return verr_set(err, ENOMEM, "out of memory");
	rc = check_state(data, len, name, p, err);
	free(p);
	return rc;
}

int vm_snapshot_restore(struct vm **out, const struct vm_config *base, const char *state_path,
			const char *mem_path, struct verr *err)
{
	struct parsed *p = calloc(1, sizeof(*p));
	struct vm_config cfg = *base;
	size_t len = 0;
	uint8_t *data = NULL;
	struct vm *vm = NULL;
	int rc;

	if (!p)
		return verr_set(err, ENOMEM, "out of memory");
	rc = read_state_file(state_path, &data, &len, err);
	if (rc == 0)
		rc = check_state(data, len, state_path, p, err);
	if (rc == 0) {
		cfg.ncpus = p->cfg.ncpus;
		cfg.mem_size = p->cfg.mem_size;
		cfg.ndisks = cfg.nnets = 0;
		cfg.rng = false;
		cfg.console_virtio = false;
		cfg.vsock = (struct vm_vsock){ 0 };
		rc = vm_alloc(&vm, &cfg, err);
	}
	if (rc == 0 && (rc = restore_into(vm, p, base, mem_path, err)) < 0) {
		vm_destroy(vm);
		vm = NULL;
	}
	free(data);
	free(p);
	*out = vm;
	return rc;
}
