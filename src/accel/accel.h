/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The narrow accelerator interface: everything the VMM needs from KVM (or a
 * software CPU later) — create a VM, map memory, create vCPUs, run a vCPU
 * until an exit, get and set its state, raise interrupt lines. Nothing above
 * this header includes <linux/kvm.h>.
 */
#ifndef VIREO_ACCEL_ACCEL_H
#define VIREO_ACCEL_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/cpu_state.h"
#include "core/buf.h"
#include "core/err.h"

struct accel_vm;
struct accel_vcpu;

enum accel_exit_kind {
	ACCEL_EXIT_IO,             /* port I/O: see exit.io */
	ACCEL_EXIT_MMIO,           /* MMIO outside RAM: see exit.mmio */
	ACCEL_EXIT_INTERRUPTED,    /* kicked from another thread (accel_vcpu_kick) */
	ACCEL_EXIT_SHUTDOWN,       /* triple fault */
	ACCEL_EXIT_RESET,          /* architectural reset request */
	ACCEL_EXIT_HLT,            /* halted with no in-kernel irqchip to wait */
	ACCEL_EXIT_INTERNAL_ERROR, /* the accelerator could not emulate something */
	ACCEL_EXIT_FAIL_ENTRY,     /* the vCPU state was refused by hardware */
	ACCEL_EXIT_UNKNOWN,
};

struct accel_exit {
	enum accel_exit_kind kind;
	uint32_t raw_reason;   /* accelerator's own exit code, for messages */
	union {
		struct {
			uint16_t port;
			uint8_t size;    /* 1, 2 or 4 */
			bool write;
			uint32_t count;  /* string I/O repeats; data holds count*size bytes */
			uint8_t *data;
		} io;
		struct {
			uint64_t addr;
			uint32_t len;    /* 1..8 */
			bool write;
			uint8_t *data;
		} mmio;
		struct {
			uint32_t suberror;
			uint32_t ndata;
			uint64_t data[8];
		} internal;
		struct {
			uint64_t hw_reason;
		} fail_entry;
	};
};

struct accel_caps {
	unsigned max_vcpus;
	unsigned recommended_vcpus;
};

/* The backend: one implementation per accelerator (kvm.c today). */
int accel_open(struct accel_caps *caps, struct verr *err);
int accel_vm_create(struct accel_vm **vm, struct verr *err);
void accel_vm_destroy(struct accel_vm *vm);
/* Waits for VM set-up that runs in the background (the PIT); call before
 * the first accel_vcpu_run. */
int accel_vm_ready(struct accel_vm *vm, struct verr *err);

/* flags: ACCEL_MEM_DIRTY_LOG for snapshot diffs later */
#define ACCEL_MEM_DIRTY_LOG 1u
int accel_map_memory(struct accel_vm *vm, unsigned slot, uint64_t gpa, uint64_t size,
		     void *hva, unsigned flags, struct verr *err);
int accel_irq_line(struct accel_vm *vm, unsigned gsi, int level);
/* CPUID leaves the accelerator can offer guests (caller frees *out). */
int accel_supported_cpuid(struct accel_vm *vm, struct x86_cpuid_entry **out, unsigned *n,
			  struct verr *err);

int accel_vcpu_create(struct accel_vm *vm, unsigned id, struct accel_vcpu **vcpu,
		      struct verr *err);
void accel_vcpu_destroy(struct accel_vcpu *vcpu);
/* Runs until the next exit that needs the VMM. The I/O and MMIO data
 * pointers stay valid until the next accel_vcpu_run call. */
int accel_vcpu_run(struct accel_vcpu *vcpu, struct accel_exit *exit, struct verr *err);
/* Makes a running accel_vcpu_run return ACCEL_EXIT_INTERRUPTED soon; safe
 * from any thread. */
void accel_vcpu_kick(struct accel_vcpu *vcpu);
void accel_vcpu_clear_kick(struct accel_vcpu *vcpu);
/* The thread that ran this vCPU is about to end: no more kick signals. */
void accel_vcpu_thread_exit(struct accel_vcpu *vcpu);
/* Completes an I/O or MMIO exit already answered, without running guest
 * code further; call before saving the vCPU state. */
int accel_vcpu_complete_io(struct accel_vcpu *vcpu, struct verr *err);

int accel_vcpu_get_regs(struct accel_vcpu *vcpu, struct x86_regs *regs, struct verr *err);
int accel_vcpu_set_regs(struct accel_vcpu *vcpu, const struct x86_regs *regs, struct verr *err);
int accel_vcpu_get_sregs(struct accel_vcpu *vcpu, struct x86_sregs *sregs, struct verr *err);
int accel_vcpu_set_sregs(struct accel_vcpu *vcpu, const struct x86_sregs *sregs, struct verr *err);
int accel_vcpu_set_cpuid(struct accel_vcpu *vcpu, const struct x86_cpuid_entry *e, unsigned n,
			 struct verr *err);
int accel_vcpu_set_msrs(struct accel_vcpu *vcpu, const struct x86_msr *msrs, unsigned n,
			struct verr *err);
/* Power-on FPU state (FCW 0x37f, MXCSR 0x1f80). */
int accel_vcpu_reset_fpu(struct accel_vcpu *vcpu, struct verr *err);
/* Wire LINT0 as ExtINT and LINT1 as NMI, as firmware does on a PC. */
int accel_vcpu_setup_lapic(struct accel_vcpu *vcpu, struct verr *err);

/* Interrupt routing: the GSI table always holds the IOAPIC and PIC routes
 * for GSIs 0-23; these MSI routes come on top (GSIs >= 24). */
struct accel_msi_route {
	unsigned gsi;
	uint64_t addr;
	uint32_t data;
};
#define ACCEL_FIRST_MSI_GSI 24
int accel_set_msi_routes(struct accel_vm *vm, const struct accel_msi_route *r, unsigned n,
			 struct verr *err);
/* An eventfd that raises gsi when written (KVM irqfd). */
int accel_irqfd(struct accel_vm *vm, int fd, unsigned gsi, bool assign, struct verr *err);
/* An eventfd written by guest MMIO writes of len bytes at addr, without an
 * exit to the VMM (KVM ioeventfd). */
int accel_ioeventfd(struct accel_vm *vm, uint64_t addr, unsigned len, int fd, bool assign,
		    struct verr *err);

/* Snapshots: whole vCPU / VM state as opaque blobs this backend can read
 * back; restore refuses blobs whose records do not match this kernel. */
int accel_vcpu_save(struct accel_vcpu *vcpu, struct vbuf *out, struct verr *err);
int accel_vcpu_restore(struct accel_vcpu *vcpu, const uint8_t *blob, size_t len, struct verr *err);
int accel_vm_save(struct accel_vm *vm, struct vbuf *out, struct verr *err);
int accel_vm_restore(struct accel_vm *vm, const uint8_t *blob, size_t len, struct verr *err);
/* Pages written since the last call, one bit per 4 KiB page of the slot
 * (mapped with ACCEL_MEM_DIRTY_LOG); bitmap must cover the slot. */
int accel_dirty_log(struct accel_vm *vm, unsigned slot, uint64_t *bitmap, struct verr *err);

#endif
