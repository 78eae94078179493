/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Save and restore of KVM vCPU and VM state as opaque tag-length-value
 * blobs (the snapshot format wraps them; see src/state). Each record holds
 * one KVM structure; sizes are checked against what this KVM expects, so a
 * blob from an incompatible kernel is refused rather than misread.
 */
#include "accel/accel.h"
#include "accel/kvm_priv.h"

#include <cpuid.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"

enum vcpu_tag {
	T_CPUID = 1, T_SREGS, T_REGS, T_XSAVE, T_XCRS, T_MSRS, T_EVENTS, T_LAPIC, T_MPSTATE,
	T_DEBUGREGS,
};
enum vm_tag { T_PIC_MASTER = 100, T_PIC_SLAVE, T_IOAPIC, T_PIT, T_CLOCK };

#define MAX_MSRS 512
#define MAX_CPUID 256

static int fail(struct verr *err, const char *what)
{
	int e = errno;
	return verr_set(err, e, "KVM %s failed: %s", what, strerror(e));
}

static size_t xsave_size(struct accel_vm *vm)
{
	int n = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

/* KVM_GET_MSRS stops at the first MSR it cannot read; skip it and go on. */
static int save_msrs(struct accel_vcpu *v, struct vbuf *out, struct verr *err)
{
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + MAX_MSRS * 4);
	struct kvm_msrs *m = calloc(1, sizeof(*m) + MAX_MSRS * sizeof(struct kvm_msr_entry));
	struct kvm_msr_entry *kept = calloc(MAX_MSRS, sizeof(*kept));
	unsigned nk = 0, total;
	int rc = 0;

	if (!list || !m || !kept) {
		rc = verr_set(err, ENOMEM, "out of memory");
		goto out;
	}
	list->nmsrs = MAX_MSRS;
	if (ioctl(v->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		rc = fail(err, "KVM_GET_MSR_INDEX_LIST");
		goto out;
	}
	total = list->nmsrs < MAX_MSRS ? list->nmsrs : MAX_MSRS;
	for (unsigned i = 0; i < total;) {
		unsigned batch = 0;
		int got;
		for (unsigned j = i; j < total; j++)
			m->entries[batch++] = (struct kvm_msr_entry){ .index = list->indices[j] };
		m->nmsrs = batch;
		got = ioctl(v->fd, KVM_GET_MSRS, m);
		if (got < 0) {
			rc = fail(err, "KVM_GET_MSRS");
			goto out;
		}
		memcpy(kept + nk, m->entries, (size_t)got * sizeof(*kept));
		nk += (unsigned)got;
		i += (unsigned)got + 1;
	}
	vbuf_put_tlv(out, T_MSRS, kept, nk * sizeof(*kept));
out:
	free(list);
	free(m);
	free(kept);
	return rc;
}

static int restore_msrs(struct accel_vcpu *v, const uint8_t *p, uint32_t len, struct verr *err)
{
	unsigned n = len / sizeof(struct kvm_msr_entry);
	struct kvm_msrs *m;

	if (len % sizeof(struct kvm_msr_entry) || n > MAX_MSRS)
		return verr_set(err, EINVAL, "snapshot: malformed MSR record (%u bytes)", len);
	m = calloc(1, sizeof(*m) + (n ? n : 1) * sizeof(struct kvm_msr_entry));
	if (!m)
		return verr_set(err, ENOMEM, "out of memory");
	for (unsigned done = 0; done < n;) {
		int got;
		m->nmsrs = n - done;
		memcpy(m->entries, p + done * sizeof(struct kvm_msr_entry),
		       m->nmsrs * sizeof(struct kvm_msr_entry));
		got = ioctl(v->fd, KVM_SET_MSRS, m);
		if (got < 0) {
			free(m);
			return fail(err, "KVM_SET_MSRS");
		}
		if ((unsigned)got < m->nmsrs)
			log_debug("snapshot", "MSR 0x%x not restored", m->entries[got].index);
		done += (unsigned)got + 1;
	}
	free(m);
	return 0;
}

/* KVM drops a write of IA32_TSC_DEADLINE unless the LAPIC timer is already
 * in TSC-deadline mode, so the deadline goes in again after KVM_SET_LAPIC
 * (and after IA32_TSC, which it is measured against). Without this, a
 * restored Linux vCPU sleeping on its timer never woke. */
static int restore_tsc_deadline(struct accel_vcpu *v, const uint8_t *p, uint32_t len,
				struct verr *err)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = { .h.nmsrs = 1 };

	for (uint32_t off = 0; off + sizeof(m.e) <= len; off += sizeof(m.e)) {
		memcpy(&m.e, p + off, sizeof(m.e));
		if (m.e.index != 0x6e0)
			continue;
		if (ioctl(v->fd, KVM_SET_MSRS, &m) < 0)
			return fail(err, "KVM_SET_MSRS (IA32_TSC_DEADLINE)");
		return 0;
	}
	return 0;
}

static int save_cpuid(struct accel_vcpu *v, struct vbuf *out, struct verr *err)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + MAX_CPUID * sizeof(struct kvm_cpuid_entry2));

	if (!c)
		return verr_set(err, ENOMEM, "out of memory");
	c->nent = MAX_CPUID;
	if (ioctl(v->fd, KVM_GET_CPUID2, c) < 0) {
		free(c);
		return fail(err, "KVM_GET_CPUID2");
	}
	vbuf_put_tlv(out, T_CPUID, c->entries, c->nent * sizeof(struct kvm_cpuid_entry2));
	free(c);
	return 0;
}

/* Bits that software or vireo sets, not the CPU: leaf 1 ECX OSXSAVE and
 * hypervisor, EDX HTT; leaf 7 ECX OSPKE. */
static void mask_dynamic(uint32_t fn, uint32_t *ebx, uint32_t *ecx, uint32_t *edx)
{
	(void)ebx;
	if (fn == 1) {
		*ecx &= ~((1u << 27) | (1u << 31));
		*edx &= ~(1u << 28);
	} else if (fn == 7) {
		*ecx &= ~(1u << 4);
	}
}

/* What this host can give a guest: KVM's supported list, or what the CPU
 * itself reports (some nested KVMs report less than they deliver). */
static void host_offer(const struct x86_cpuid_entry *sup, unsigned nsup, uint32_t fn,
		       uint32_t r[3])
{
	unsigned a = 0, b = 0, c = 0, d = 0;

	__get_cpuid_count(fn, 0, &a, &b, &c, &d);
	r[0] = b;
	r[1] = c;
	r[2] = d;
	for (unsigned s = 0; s < nsup; s++)
		if (sup[s].function == fn && sup[s].index == 0) {
			r[0] |= sup[s].ebx;
			r[1] |= sup[s].ecx;
			r[2] |= sup[s].edx;
		}
}

/* Features the snapshot's CPUID promises must all be offered here. */
static int check_cpuid(struct accel_vm *vm, const struct kvm_cpuid_entry2 *e, unsigned n,
		       struct verr *err)
{
	static const uint32_t leaves[] = { 1, 7, 0x80000001 };
	struct x86_cpuid_entry *sup = NULL;
	unsigned nsup = 0;
	int rc = accel_supported_cpuid(vm, &sup, &nsup, err);

	for (unsigned i = 0; rc == 0 && i < n; i++) {
		for (unsigned l = 0; l < 3 && rc == 0; l++) {
			uint32_t have[3], b = e[i].ebx, c = e[i].ecx, d = e[i].edx;
			if (e[i].function != leaves[l] || e[i].index != 0)
				continue;
			host_offer(sup, nsup, leaves[l], have);
			mask_dynamic(leaves[l], &b, &c, &d);
			if (leaves[l] != 7)
				b = 0; /* leaf 1 and 0x80000001 EBX carry IDs, not features */
			if ((b & ~have[0]) || (c & ~have[1]) || (d & ~have[2]))
				rc = verr_set(err, ENOTSUP, "snapshot: it needs CPU features this host lacks (CPUID leaf 0x%x: ebx %08x ecx %08x edx %08x missing)",
					      leaves[l], b & ~have[0], c & ~have[1], d & ~have[2]);
		}
	}
	free(sup);
	return rc;
}

#define PUT_SIMPLE(tag, ioc, type)                                          \
	do {                                                                \
		type s_;                                                    \
		memset(&s_, 0, sizeof(s_));                                  \
		if (ioctl(v->fd, ioc, &s_) < 0)                              \
			return fail(err, #ioc);                              \
		vbuf_put_tlv(out, tag, &s_, sizeof(s_));                     \
	} while (0)

int accel_vcpu_save(struct accel_vcpu *v, struct vbuf *out, struct verr *err)
{
	size_t xs = xsave_size(v->vm);
	struct kvm_xsave *x;
	int rc;

	if ((rc = save_cpuid(v, out, err)) < 0)
		return rc;
	PUT_SIMPLE(T_SREGS, KVM_GET_SREGS, struct kvm_sregs);
	PUT_SIMPLE(T_REGS, KVM_GET_REGS, struct kvm_regs);
	x = calloc(1, xs);
	if (!x)
		return verr_set(err, ENOMEM, "out of memory");
	if (ioctl(v->fd, xs > sizeof(*x) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, x) < 0) {
		free(x);
		return fail(err, "KVM_GET_XSAVE");
	}
	vbuf_put_tlv(out, T_XSAVE, x, xs);
	free(x);
	PUT_SIMPLE(T_XCRS, KVM_GET_XCRS, struct kvm_xcrs);
	if ((rc = save_msrs(v, out, err)) < 0)
		return rc;
	PUT_SIMPLE(T_EVENTS, KVM_GET_VCPU_EVENTS, struct kvm_vcpu_events);
	PUT_SIMPLE(T_LAPIC, KVM_GET_LAPIC, struct kvm_lapic_state);
	PUT_SIMPLE(T_MPSTATE, KVM_GET_MP_STATE, struct kvm_mp_state);
	PUT_SIMPLE(T_DEBUGREGS, KVM_GET_DEBUGREGS, struct kvm_debugregs);
	return out->oom ? verr_set(err, ENOMEM, "out of memory") : 0;
}

struct vcpu_records {
	const uint8_t *val[T_DEBUGREGS + 1];
	uint32_t len[T_DEBUGREGS + 1];
};

static int collect(const uint8_t *blob, size_t len, struct vcpu_records *r, struct verr *err)
{
	struct vreader rd = vreader_init(blob, len);
	const uint8_t *val;
	uint32_t tag, l;

	memset(r, 0, sizeof(*r));
	while (vreader_tlv(&rd, &tag, &val, &l)) {
		if (tag == 0 || tag > T_DEBUGREGS || r->val[tag])
			return verr_set(err, EINVAL, "snapshot: unexpected vCPU record %u", tag);
		r->val[tag] = val;
		r->len[tag] = l;
	}
	if (rd.bad)
		return verr_set(err, EINVAL, "snapshot: truncated vCPU state");
	for (unsigned t = 1; t <= T_DEBUGREGS; t++)
		if (!r->val[t])
			return verr_set(err, EINVAL, "snapshot: vCPU record %u missing", t);
	return 0;
}

static int set_fixed(struct accel_vcpu *v, const struct vcpu_records *r, unsigned tag,
		     unsigned long ioc, size_t size, const char *name, struct verr *err)
{
	void *tmp;
	int rc = 0;

	if (r->len[tag] != size)
		return verr_set(err, EINVAL, "snapshot: %s record is %u bytes, this KVM expects %zu",
				name, r->len[tag], size);
	tmp = malloc(size); /* aligned copy of the record */
	if (!tmp)
		return verr_set(err, ENOMEM, "out of memory");
	memcpy(tmp, r->val[tag], size);
	if (ioctl(v->fd, ioc, tmp) < 0)
		rc = fail(err, name);
	free(tmp);
	return rc;
}

static int restore_cpuid(struct accel_vcpu *v, const struct vcpu_records *r, struct verr *err)
{
	unsigned n = r->len[T_CPUID] / sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c;
	int rc;

	if (r->len[T_CPUID] % sizeof(struct kvm_cpuid_entry2) || n == 0 || n > MAX_CPUID)
		return verr_set(err, EINVAL, "snapshot: malformed CPUID record");
	c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return verr_set(err, ENOMEM, "out of memory");
	c->nent = n;
	memcpy(c->entries, r->val[T_CPUID], n * sizeof(struct kvm_cpuid_entry2));
	rc = check_cpuid(v->vm, c->entries, n, err);
	if (rc == 0 && ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		rc = fail(err, "KVM_SET_CPUID2");
	free(c);
	return rc;
}

int accel_vcpu_restore(struct accel_vcpu *v, const uint8_t *blob, size_t len, struct verr *err)
{
	struct vcpu_records r;
	int rc = collect(blob, len, &r, err);

	/* Order matters: CPUID before anything that depends on features,
	 * special registers (APIC base) before the LAPIC, events after regs,
	 * the TSC deadline after the LAPIC, the MP state last. */
	if (rc == 0)
		rc = restore_cpuid(v, &r, err);
	if (rc == 0)
		rc = set_fixed(v, &r, T_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), "KVM_SET_SREGS", err);
	if (rc == 0)
		rc = set_fixed(v, &r, T_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), "KVM_SET_REGS", err);
	if (rc == 0)
		rc = set_fixed(v, &r, T_XSAVE, KVM_SET_XSAVE, xsave_size(v->vm), "KVM_SET_XSAVE", err);
	if (rc == 0)
		rc = set_fixed(v, &r, T_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), "KVM_SET_XCRS", err);
	if (rc == 0)
		rc = restore_msrs(v, r.val[T_MSRS], r.len[T_MSRS], err);
	if (rc == 0)
		rc = set_fixed(v, &r, T_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events), "KVM_SET_VCPU_EVENTS", err);
	if (rc == 0)
		rc = set_fixed(v, &r, T_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), "KVM_SET_LAPIC", err);
	if (rc == 0)
		rc = restore_tsc_deadline(v, r.val[T_MSRS], r.len[T_MSRS], err);
	if (rc == 0)
		rc = set_fixed(v, &r, T_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs), "KVM_SET_DEBUGREGS", err);
	if (rc == 0)
		rc = set_fixed(v, &r, T_MPSTATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state), "KVM_SET_MP_STATE", err);
	return rc;
}

static int save_irqchip(struct accel_vm *vm, unsigned chip, unsigned tag, struct vbuf *out,
			struct verr *err)
{
	struct kvm_irqchip c;

	memset(&c, 0, sizeof(c));
	c.chip_id = chip;
	if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &c) < 0)
		return fail(err, "KVM_GET_IRQCHIP");
	vbuf_put_tlv(out, tag, &c, sizeof(c));
	return 0;
}

int accel_vm_save(struct accel_vm *vm, struct vbuf *out, struct verr *err)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	int rc;

	if ((rc = save_irqchip(vm, KVM_IRQCHIP_PIC_MASTER, T_PIC_MASTER, out, err)) < 0 ||
	    (rc = save_irqchip(vm, KVM_IRQCHIP_PIC_SLAVE, T_PIC_SLAVE, out, err)) < 0 ||
	    (rc = save_irqchip(vm, KVM_IRQCHIP_IOAPIC, T_IOAPIC, out, err)) < 0)
		return rc;
	memset(&pit, 0, sizeof(pit));
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return fail(err, "KVM_GET_PIT2");
	vbuf_put_tlv(out, T_PIT, &pit, sizeof(pit));
	memset(&clock, 0, sizeof(clock));
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return fail(err, "KVM_GET_CLOCK");
	clock.flags = 0; /* KVM_SET_CLOCK takes only the value */
	vbuf_put_tlv(out, T_CLOCK, &clock, sizeof(clock));
	return out->oom ? verr_set(err, ENOMEM, "out of memory") : 0;
}

static int restore_vm_record(struct accel_vm *vm, uint32_t tag, const uint8_t *val, uint32_t len,
			     struct verr *err)
{
	union {
		struct kvm_irqchip chip;
		struct kvm_pit_state2 pit;
		struct kvm_clock_data clock;
	} u;
	size_t want = tag == T_PIT ? sizeof(u.pit) : tag == T_CLOCK ? sizeof(u.clock) : sizeof(u.chip);

	if (tag < T_PIC_MASTER || tag > T_CLOCK)
		return verr_set(err, EINVAL, "snapshot: unexpected VM record %u", tag);
	if (len != want)
		return verr_set(err, EINVAL, "snapshot: VM record %u is %u bytes, this KVM expects %zu",
				tag, len, want);
	memcpy(&u, val, len);
	if (tag == T_PIT)
		return ioctl(vm->vm_fd, KVM_SET_PIT2, &u.pit) < 0 ? fail(err, "KVM_SET_PIT2") : 0;
	if (tag == T_CLOCK)
		return ioctl(vm->vm_fd, KVM_SET_CLOCK, &u.clock) < 0 ? fail(err, "KVM_SET_CLOCK") : 0;
	if (u.chip.chip_id != tag - T_PIC_MASTER)
		return verr_set(err, EINVAL, "snapshot: irqchip record %u names chip %u", tag,
				u.chip.chip_id);
	return ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &u.chip) < 0 ? fail(err, "KVM_SET_IRQCHIP") : 0;
}

int accel_vm_restore(struct accel_vm *vm, const uint8_t *blob, size_t len, struct verr *err)
{
	struct vreader rd = vreader_init(blob, len);
	const uint8_t *val;
	uint32_t tag, l;
	unsigned seen = 0;
	int rc = accel_vm_ready(vm, err); /* the PIT must exist */

	while (rc == 0 && vreader_tlv(&rd, &tag, &val, &l)) {
		rc = restore_vm_record(vm, tag, val, l, err);
		if (tag >= T_PIC_MASTER && tag <= T_CLOCK)
			seen |= 1u << (tag - T_PIC_MASTER);
	}
	if (rc == 0 && rd.bad)
		rc = verr_set(err, EINVAL, "snapshot: truncated VM state");
	if (rc == 0 && seen != 0x1f)
		rc = verr_set(err, EINVAL, "snapshot: VM state incomplete");
	return rc;
}

int accel_dirty_log(struct accel_vm *vm, unsigned slot, uint64_t *bitmap, struct verr *err)
{
	struct kvm_dirty_log log = { .slot = slot };

	log.dirty_bitmap = bitmap;
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return fail(err, "KVM_GET_DIRTY_LOG");
	return 0;
}
