/* SPDX-License-Identifier: Apache-2.0 */
/* The KVM backend of the accelerator interface. */
#include "accel/accel.h"
#include "accel/kvm_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Addresses KVM needs on Intel for real-mode emulation; inside the MMIO hole
 * (docs/platform.md), away from the IOAPIC and LAPIC. */
#define KVM_TSS_ADDR 0xfffbd000u
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000u
#define KICK_SIGNAL SIGUSR1
#define MAX_CPUID_ENTRIES 256


static int kvm_ioctl_err(struct verr *err, const char *what)
{
	int e = errno;
	return verr_set(err, e, "KVM %s failed: %s", what, strerror(e));
}

static void kick_handler(int sig) { (void)sig; }

int accel_open(struct accel_caps *caps, struct verr *err)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int v;

	if (fd < 0) {
		int e = errno;
		return verr_set(err, e, "cannot open /dev/kvm: %s%s", strerror(e),
				e == ENOENT ? " (is KVM enabled and the kvm module loaded?)" :
				e == EACCES ? " (no permission: are you in the kvm group?)" : "");
	}
	v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		close(fd);
		return verr_set(err, ENOTSUP, "/dev/kvm speaks API version %d, vireo needs %d", v,
				KVM_API_VERSION);
	}
	if (caps) {
		int max = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
		int rec = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
		caps->recommended_vcpus = rec > 0 ? (unsigned)rec : 4;
		caps->max_vcpus = max > 0 ? (unsigned)max : caps->recommended_vcpus;
	}
	close(fd);
	return 0;
}

static int install_kick_handler(struct verr *err)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL) < 0)
		return verr_set(err, errno, "sigaction: %s", strerror(errno));
	return 0;
}

static void *create_pit(void *arg)
{
	struct accel_vm *vm = arg;
	struct kvm_pit_config pit = { .flags = 0 };

	vm->pit_errno = ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0 ? errno : 0;
	return NULL;
}

static int vm_setup_x86(struct accel_vm *vm, struct verr *err)
{
	uint64_t ident = KVM_IDENTITY_MAP_ADDR;
	int rc;

	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
		return kvm_ioctl_err(err, "KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
		return kvm_ioctl_err(err, "KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return kvm_ioctl_err(err, "KVM_CREATE_IRQCHIP");
	rc = pthread_create(&vm->pit_thread, NULL, create_pit, vm);
	if (rc != 0) {
		create_pit(vm); /* no thread: do it inline */
		return accel_vm_ready(vm, err);
	}
	vm->pit_pending = true;
	return 0;
}

int accel_vm_ready(struct accel_vm *vm, struct verr *err)
{
	if (vm->pit_pending) {
		pthread_join(vm->pit_thread, NULL);
		vm->pit_pending = false;
	}
	if (vm->pit_errno) {
		int e = vm->pit_errno;
		vm->pit_errno = 0;
		return verr_set(err, e, "KVM KVM_CREATE_PIT2 failed: %s", strerror(e));
	}
	return 0;
}

int accel_vm_create(struct accel_vm **out, struct verr *err)
{
	struct accel_vm *vm = calloc(1, sizeof(*vm));
	int rc;

	if (!vm)
		return verr_set(err, ENOMEM, "out of memory");
	vm->vm_fd = -1;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		rc = verr_set(err, errno, "cannot open /dev/kvm: %s", strerror(errno));
		goto fail;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		rc = kvm_ioctl_err(err, "KVM_CREATE_VM");
		goto fail;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		rc = kvm_ioctl_err(err, "KVM_GET_VCPU_MMAP_SIZE");
		goto fail;
	}
	rc = vm_setup_x86(vm, err);
	if (rc == 0)
		rc = install_kick_handler(err);
	if (rc < 0)
		goto fail;
	*out = vm;
	return 0;
fail:
	accel_vm_destroy(vm);
	return rc;
}

void accel_vm_destroy(struct accel_vm *vm)
{
	if (!vm)
		return;
	accel_vm_ready(vm, NULL);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	free(vm);
}

int accel_map_memory(struct accel_vm *vm, unsigned slot, uint64_t gpa, uint64_t size,
		     void *hva, unsigned flags, struct verr *err)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = (flags & ACCEL_MEM_DIRTY_LOG) ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return kvm_ioctl_err(err, "KVM_SET_USER_MEMORY_REGION");
	return 0;
}

int accel_irq_line(struct accel_vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level ? 1 : 0 };
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

int accel_supported_cpuid(struct accel_vm *vm, struct x86_cpuid_entry **out, unsigned *n,
			  struct verr *err)
{
	size_t sz = sizeof(struct kvm_cpuid2) + MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, sz);
	struct x86_cpuid_entry *e;
	bool tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;

	if (!c)
		return verr_set(err, ENOMEM, "out of memory");
	c->nent = MAX_CPUID_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		free(c);
		return kvm_ioctl_err(err, "KVM_GET_SUPPORTED_CPUID");
	}
	e = calloc(c->nent ? c->nent : 1, sizeof(*e));
	if (!e) {
		free(c);
		return verr_set(err, ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *k = &c->entries[i];
		e[i] = (struct x86_cpuid_entry){ k->function, k->index,
			k->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX ? X86_CPUID_FLAG_SIGNIFICANT_INDEX : 0,
			k->eax, k->ebx, k->ecx, k->edx };
		/* KVM leaves the TSC-deadline timer out of this list (api.rst):
		 * its in-kernel LAPIC has one when the capability says so. Linux
		 * then neither calibrates the LAPIC timer nor programs it through
		 * its initial count ("TSC deadline timer available"). */
		if (k->function == 1 && tsc_deadline)
			e[i].ecx |= 1u << 24;
	}
	*n = c->nent;
	*out = e;
	free(c);
	return 0;
}

int accel_vcpu_create(struct accel_vm *vm, unsigned id, struct accel_vcpu **out,
		      struct verr *err)
{
	struct accel_vcpu *v = calloc(1, sizeof(*v));

	if (!v)
		return verr_set(err, ENOMEM, "out of memory");
	v->vm = vm;
	v->id = id;
	pthread_mutex_init(&v->kick_lock, NULL);
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		int rc = kvm_ioctl_err(err, "KVM_CREATE_VCPU");
		free(v);
		return rc;
	}
	v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		int rc = verr_set(err, errno, "mmap of vCPU %u run area: %s", id, strerror(errno));
		close(v->fd);
		free(v);
		return rc;
	}
	*out = v;
	return 0;
}

void accel_vcpu_destroy(struct accel_vcpu *v)
{
	if (!v)
		return;
	munmap(v->run, v->vm->run_size);
	close(v->fd);
	pthread_mutex_destroy(&v->kick_lock);
	free(v);
}

static void fill_io_exit(struct accel_vcpu *v, struct accel_exit *ex)
{
	struct kvm_run *r = v->run;
	uint64_t bytes = (uint64_t)r->io.size * r->io.count;

	ex->kind = ACCEL_EXIT_IO;
	ex->io.port = r->io.port;
	ex->io.size = r->io.size;
	ex->io.write = r->io.direction == KVM_EXIT_IO_OUT;
	ex->io.count = r->io.count;
	ex->io.data = (uint8_t *)r + r->io.data_offset;
	/* Never let a bogus offset or count walk past the shared run page. */
	if (r->io.data_offset >= (uint64_t)v->vm->run_size ||
	    bytes > (uint64_t)v->vm->run_size - r->io.data_offset ||
	    (r->io.size != 1 && r->io.size != 2 && r->io.size != 4))
		ex->kind = ACCEL_EXIT_UNKNOWN;
}

static void translate_exit(struct accel_vcpu *v, struct accel_exit *ex)
{
	struct kvm_run *r = v->run;

	memset(ex, 0, sizeof(*ex));
	ex->raw_reason = r->exit_reason;
	switch (r->exit_reason) {
	case KVM_EXIT_IO:
		fill_io_exit(v, ex);
		break;
	case KVM_EXIT_MMIO:
		ex->kind = r->mmio.len >= 1 && r->mmio.len <= 8 ? ACCEL_EXIT_MMIO : ACCEL_EXIT_UNKNOWN;
		ex->mmio.addr = r->mmio.phys_addr;
		ex->mmio.len = r->mmio.len;
		ex->mmio.write = r->mmio.is_write;
		ex->mmio.data = r->mmio.data;
		break;
	case KVM_EXIT_SHUTDOWN:
		ex->kind = ACCEL_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_HLT:
		ex->kind = ACCEL_EXIT_HLT;
		break;
	case KVM_EXIT_INTR:
		ex->kind = ACCEL_EXIT_INTERRUPTED;
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		ex->kind = r->system_event.type == KVM_SYSTEM_EVENT_RESET ? ACCEL_EXIT_RESET
									  : ACCEL_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_FAIL_ENTRY:
		ex->kind = ACCEL_EXIT_FAIL_ENTRY;
		ex->fail_entry.hw_reason = r->fail_entry.hardware_entry_failure_reason;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		ex->kind = ACCEL_EXIT_INTERNAL_ERROR;
		ex->internal.suberror = r->internal.suberror;
		ex->internal.ndata = r->internal.ndata < 8 ? r->internal.ndata : 8;
		memcpy(ex->internal.data, r->internal.data, ex->internal.ndata * sizeof(uint64_t));
		break;
	default:
		ex->kind = ACCEL_EXIT_UNKNOWN;
	}
}

int accel_vcpu_run(struct accel_vcpu *v, struct accel_exit *ex, struct verr *err)
{
	if (!v->has_thread) {
		pthread_mutex_lock(&v->kick_lock);
		v->thread = pthread_self();
		v->has_thread = true;
		pthread_mutex_unlock(&v->kick_lock);
		/* The kick signal must reach this thread even if the caller blocked it. */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, KICK_SIGNAL);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	}
	if (ioctl(v->fd, KVM_RUN, 0) < 0) {
		if (errno == EINTR || errno == EAGAIN) {
			v->run->immediate_exit = 0;
			memset(ex, 0, sizeof(*ex));
			ex->kind = ACCEL_EXIT_INTERRUPTED;
			return 0;
		}
		return kvm_ioctl_err(err, "KVM_RUN");
	}
	translate_exit(v, ex);
	return 0;
}

void accel_vcpu_kick(struct accel_vcpu *v)
{
	/* immediate_exit covers a kick that lands before KVM_RUN is entered;
	 * the signal interrupts one already inside it. */
	v->run->immediate_exit = 1;
	pthread_mutex_lock(&v->kick_lock);
	if (v->has_thread)
		pthread_kill(v->thread, KICK_SIGNAL);
	pthread_mutex_unlock(&v->kick_lock);
}

void accel_vcpu_thread_exit(struct accel_vcpu *v)
{
	pthread_mutex_lock(&v->kick_lock);
	v->has_thread = false;
	pthread_mutex_unlock(&v->kick_lock);
}

void accel_vcpu_clear_kick(struct accel_vcpu *v)
{
	v->run->immediate_exit = 0;
}

int accel_vcpu_complete_io(struct accel_vcpu *v, struct verr *err)
{
	int rc = 0;

	/* KVM finishes an I/O or MMIO read the VMM has answered only on the
	 * next KVM_RUN; immediate_exit makes that call return right after. */
	v->run->immediate_exit = 1;
	if (ioctl(v->fd, KVM_RUN, 0) < 0 && errno != EINTR && errno != EAGAIN)
		rc = kvm_ioctl_err(err, "KVM_RUN (completing I/O)");
	v->run->immediate_exit = 0;
	return rc;
}
