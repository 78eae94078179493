/* SPDX-License-Identifier: Apache-2.0 */
/* vCPU state get/set for the KVM backend: conversion between vireo's x86
 * structures and KVM's. */
#include "accel/accel.h"
#include "accel/kvm_priv.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>


static int fail(struct verr *err, const char *what)
{
	int e = errno;
	return verr_set(err, e, "KVM %s failed: %s", what, strerror(e));
}

int accel_vcpu_get_regs(struct accel_vcpu *v, struct x86_regs *r, struct verr *err)
{
	struct kvm_regs k;

	if (ioctl(v->fd, KVM_GET_REGS, &k) < 0)
		return fail(err, "KVM_GET_REGS");
	*r = (struct x86_regs){ k.rax, k.rbx, k.rcx, k.rdx, k.rsi, k.rdi, k.rsp, k.rbp,
		k.r8, k.r9, k.r10, k.r11, k.r12, k.r13, k.r14, k.r15, k.rip, k.rflags };
	return 0;
}

int accel_vcpu_set_regs(struct accel_vcpu *v, const struct x86_regs *r, struct verr *err)
{
	struct kvm_regs k = { r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp,
		r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, r->rip, r->rflags };

	if (ioctl(v->fd, KVM_SET_REGS, &k) < 0)
		return fail(err, "KVM_SET_REGS");
	return 0;
}

static void seg_from_kvm(struct x86_segment *s, const struct kvm_segment *k)
{
	*s = (struct x86_segment){ k->base, k->limit, k->selector, k->type, k->present,
		k->dpl, k->db, k->s, k->l, k->g, k->avl };
}

static void seg_to_kvm(struct kvm_segment *k, const struct x86_segment *s)
{
	memset(k, 0, sizeof(*k));
	k->base = s->base;
	k->limit = s->limit;
	k->selector = s->selector;
	k->type = s->type;
	k->present = s->present;
	k->dpl = s->dpl;
	k->db = s->db;
	k->s = s->s;
	k->l = s->l;
	k->g = s->g;
	k->avl = s->avl;
	k->unusable = !s->present;
}

int accel_vcpu_get_sregs(struct accel_vcpu *v, struct x86_sregs *s, struct verr *err)
{
	struct kvm_sregs k;

	if (ioctl(v->fd, KVM_GET_SREGS, &k) < 0)
		return fail(err, "KVM_GET_SREGS");
	seg_from_kvm(&s->cs, &k.cs);
	seg_from_kvm(&s->ds, &k.ds);
	seg_from_kvm(&s->es, &k.es);
	seg_from_kvm(&s->fs, &k.fs);
	seg_from_kvm(&s->gs, &k.gs);
	seg_from_kvm(&s->ss, &k.ss);
	seg_from_kvm(&s->tr, &k.tr);
	seg_from_kvm(&s->ldt, &k.ldt);
	s->gdt = (struct x86_dtable){ k.gdt.base, k.gdt.limit };
	s->idt = (struct x86_dtable){ k.idt.base, k.idt.limit };
	s->cr0 = k.cr0;
	s->cr2 = k.cr2;
	s->cr3 = k.cr3;
	s->cr4 = k.cr4;
	s->cr8 = k.cr8;
	s->efer = k.efer;
	s->apic_base = k.apic_base;
	return 0;
}

int accel_vcpu_set_sregs(struct accel_vcpu *v, const struct x86_sregs *s, struct verr *err)
{
	struct kvm_sregs k;

	/* Start from KVM's view so fields vireo does not model (the pending
	 * interrupt bitmap) keep their values. */
	if (ioctl(v->fd, KVM_GET_SREGS, &k) < 0)
		return fail(err, "KVM_GET_SREGS");
	seg_to_kvm(&k.cs, &s->cs);
	seg_to_kvm(&k.ds, &s->ds);
	seg_to_kvm(&k.es, &s->es);
	seg_to_kvm(&k.fs, &s->fs);
	seg_to_kvm(&k.gs, &s->gs);
	seg_to_kvm(&k.ss, &s->ss);
	seg_to_kvm(&k.tr, &s->tr);
	seg_to_kvm(&k.ldt, &s->ldt);
	k.gdt.base = s->gdt.base;
	k.gdt.limit = s->gdt.limit;
	k.idt.base = s->idt.base;
	k.idt.limit = s->idt.limit;
	k.cr0 = s->cr0;
	k.cr2 = s->cr2;
	k.cr3 = s->cr3;
	k.cr4 = s->cr4;
	k.cr8 = s->cr8;
	k.efer = s->efer;
	if (s->apic_base)
		k.apic_base = s->apic_base;
	if (ioctl(v->fd, KVM_SET_SREGS, &k) < 0)
		return fail(err, "KVM_SET_SREGS");
	return 0;
}

int accel_vcpu_set_cpuid(struct accel_vcpu *v, const struct x86_cpuid_entry *e, unsigned n,
			 struct verr *err)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
	int rc = 0;

	if (!c)
		return verr_set(err, ENOMEM, "out of memory");
	c->nent = n;
	for (unsigned i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *k = &c->entries[i];
		k->function = e[i].function;
		k->index = e[i].index;
		k->flags = e[i].flags & X86_CPUID_FLAG_SIGNIFICANT_INDEX ?
			KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
		k->eax = e[i].eax;
		k->ebx = e[i].ebx;
		k->ecx = e[i].ecx;
		k->edx = e[i].edx;
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		rc = fail(err, "KVM_SET_CPUID2");
	free(c);
	return rc;
}

int accel_vcpu_set_msrs(struct accel_vcpu *v, const struct x86_msr *m, unsigned n,
			struct verr *err)
{
	struct kvm_msrs *k = calloc(1, sizeof(*k) + n * sizeof(struct kvm_msr_entry));
	int got;

	if (!k)
		return verr_set(err, ENOMEM, "out of memory");
	k->nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		k->entries[i].index = m[i].index;
		k->entries[i].data = m[i].value;
	}
	got = ioctl(v->fd, KVM_SET_MSRS, k);
	free(k);
	if (got < 0)
		return fail(err, "KVM_SET_MSRS");
	if ((unsigned)got != n)
		return verr_set(err, EINVAL, "KVM refused MSR 0x%x (set %d of %u)",
				m[got].index, got, n);
	return 0;
}

int accel_vcpu_reset_fpu(struct accel_vcpu *v, struct verr *err)
{
	struct kvm_fpu fpu;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return fail(err, "KVM_SET_FPU");
	return 0;
}

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_EXTINT 0x7
#define APIC_MODE_NMI 0x4

static void lvt_set_mode(struct kvm_lapic_state *l, unsigned reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, &l->regs[reg], 4);
	v = (v & ~0x700u) | (mode << 8);
	v &= ~(1u << 16); /* unmask */
	memcpy(&l->regs[reg], &v, 4);
}

int accel_vcpu_setup_lapic(struct accel_vcpu *v, struct verr *err)
{
	struct kvm_lapic_state l;

	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return fail(err, "KVM_GET_LAPIC");
	lvt_set_mode(&l, APIC_LVT0, APIC_MODE_EXTINT);
	lvt_set_mode(&l, APIC_LVT1, APIC_MODE_NMI);
	if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0)
		return fail(err, "KVM_SET_LAPIC");
	return 0;
}
