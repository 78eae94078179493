/* SPDX-License-Identifier: Apache-2.0 */
/* vCPU setup and the run loop: one thread per vCPU, I/O dispatched to the
 * VM's buses, every exit that ends the guest turned into a stop request. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/cpuid.h"
#include "core/log.h"

int vcpu_setup(struct vcpu *c, const struct x86_cpuid_entry *sup, unsigned nsup,
	       const struct boot_result *boot, struct verr *err)
{
	struct x86_cpuid_entry *cpuid = calloc(nsup + X86_CPUID_EXTRA, sizeof(*cpuid));
	struct x86_msr msrs[16];
	unsigned n = 0, nmsrs;
	int rc;

	if (!cpuid)
		return verr_set(err, ENOMEM, "out of memory");
	rc = x86_cpuid_for_vcpu(sup, nsup, c->id, c->vm->nvcpus, cpuid, &n, err);
	if (rc == 0)
		rc = accel_vcpu_set_cpuid(c->accel, cpuid, n, err);
	free(cpuid);
	if (rc < 0)
		return rc;
	nmsrs = x86_boot_msrs(msrs, 16);
	if ((rc = accel_vcpu_set_msrs(c->accel, msrs, nmsrs, err)) < 0)
		return rc;
	if ((rc = accel_vcpu_reset_fpu(c->accel, err)) < 0)
		return rc;
	if ((rc = accel_vcpu_setup_lapic(c->accel, err)) < 0)
		return rc;
	if (!boot)
		return 0;
	if ((rc = accel_vcpu_set_sregs(c->accel, &boot->sregs, err)) < 0)
		return rc;
	return accel_vcpu_set_regs(c->accel, &boot->regs, err);
}

void vcpu_dump(struct vcpu *c, const char *why)
{
	struct x86_regs r;
	struct x86_sregs s;
	struct verr err = { 0 };

	log_error("vcpu", "vCPU %u: %s", c->id, why);
	if (accel_vcpu_get_regs(c->accel, &r, &err) < 0 ||
	    accel_vcpu_get_sregs(c->accel, &s, &err) < 0) {
		log_error("vcpu", "vCPU %u: registers unavailable: %s", c->id, err.msg);
		return;
	}
	log_error("vcpu", "  rip=%016" PRIx64 " rsp=%016" PRIx64 " rflags=%016" PRIx64,
		  r.rip, r.rsp, r.rflags);
	log_error("vcpu", "  rax=%016" PRIx64 " rbx=%016" PRIx64 " rcx=%016" PRIx64 " rdx=%016" PRIx64,
		  r.rax, r.rbx, r.rcx, r.rdx);
	log_error("vcpu", "  rsi=%016" PRIx64 " rdi=%016" PRIx64 " rbp=%016" PRIx64,
		  r.rsi, r.rdi, r.rbp);
	log_error("vcpu", "  cs=%04x ss=%04x cr0=%08" PRIx64 " cr2=%016" PRIx64 " cr3=%016" PRIx64
		  " cr4=%08" PRIx64 " efer=%" PRIx64,
		  s.cs.selector, s.ss.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
}

static void handle_io(struct vcpu *c, const struct accel_exit *ex)
{
	for (uint32_t i = 0; i < ex->io.count; i++) {
		uint8_t *d = ex->io.data + (size_t)i * ex->io.size;
		bool claimed = ex->io.write ? bus_write(&c->vm->pio, ex->io.port, d, ex->io.size)
					    : bus_read(&c->vm->pio, ex->io.port, d, ex->io.size);
		if (!claimed)
			log_debug("pio", "unclaimed %s of port 0x%x (%u bytes)",
				  ex->io.write ? "write" : "read", ex->io.port, ex->io.size);
	}
}

static void handle_mmio(struct vcpu *c, const struct accel_exit *ex)
{
	bool claimed = ex->mmio.write ? bus_write(&c->vm->mmio, ex->mmio.addr, ex->mmio.data, ex->mmio.len)
				      : bus_read(&c->vm->mmio, ex->mmio.addr, ex->mmio.data, ex->mmio.len);
	if (!claimed)
		log_debug("mmio", "unclaimed %s at 0x%" PRIx64 " (%u bytes)",
			  ex->mmio.write ? "write" : "read", ex->mmio.addr, ex->mmio.len);
}

static void report_accel_error(struct vcpu *c, const struct accel_exit *ex)
{
	char why[160];

	switch (ex->kind) {
	case ACCEL_EXIT_INTERNAL_ERROR:
		snprintf(why, sizeof(why), "KVM internal error (suberror %u%s)", ex->internal.suberror,
			 ex->internal.suberror == 1 ? ": instruction emulation failed" : "");
		break;
	case ACCEL_EXIT_FAIL_ENTRY:
		snprintf(why, sizeof(why), "KVM entry failed (hardware reason 0x%" PRIx64 ")",
			 ex->fail_entry.hw_reason);
		break;
	default:
		snprintf(why, sizeof(why), "unexpected KVM exit reason %u", ex->raw_reason);
	}
	vcpu_dump(c, why);
}

/* Returns false when the loop must end. */
static bool handle_exit(struct vcpu *c, const struct accel_exit *ex)
{
	switch (ex->kind) {
	case ACCEL_EXIT_IO:
		handle_io(c, ex);
		return true;
	case ACCEL_EXIT_MMIO:
		handle_mmio(c, ex);
		return true;
	case ACCEL_EXIT_INTERRUPTED:
	case ACCEL_EXIT_HLT:
		return true;
	case ACCEL_EXIT_SHUTDOWN:
		vcpu_dump(c, "guest triple fault (KVM_EXIT_SHUTDOWN)");
		vm_request_stop(c->vm, VM_STOP_TRIPLE_FAULT, 0);
		return false;
	case ACCEL_EXIT_RESET:
		vm_request_stop(c->vm, VM_STOP_RESET, 0);
		return false;
	default:
		report_accel_error(c, ex);
		vm_request_stop(c->vm, VM_STOP_ACCEL_ERROR, 0);
		return false;
	}
}

/* Parks this vCPU while a pause is requested. The pending I/O is completed
 * first so that the state a snapshot saves is between instructions. */
static void pause_point(struct vcpu *c)
{
	struct vm *vm = c->vm;
	struct verr err = { 0 };

	if (accel_vcpu_complete_io(c->accel, &err) < 0)
		log_warn("vcpu", "vCPU %u: %s", c->id, err.msg);
	pthread_mutex_lock(&vm->lock);
	vm->paused_vcpus++;
	pthread_cond_broadcast(&vm->cond);
	while (atomic_load(&vm->pause_requested) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->cond, &vm->lock);
	vm->paused_vcpus--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct accel_exit ex;

	while (!atomic_load(&c->vm->stopping)) {
		struct verr err = { 0 };
		if (atomic_load(&c->vm->pause_requested)) {
			pause_point(c);
			continue;
		}
		if (accel_vcpu_run(c->accel, &ex, &err) < 0) {
			log_error("vcpu", "vCPU %u: %s", c->id, err.msg);
			vm_request_stop(c->vm, VM_STOP_HOST_ERROR, 0);
			break;
		}
		atomic_fetch_add(&c->vm->exits, 1);
		if (!handle_exit(c, &ex))
			break;
	}
	accel_vcpu_thread_exit(c->accel);
	return NULL;
}
