/* SPDX-License-Identifier: Apache-2.0 */
/* VM lifecycle: configuration checks, creation, vCPU threads, stop and join. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/size.h"

int vm_config_check(const struct vm_config *cfg, unsigned max_vcpus, uint64_t host_mem,
		    struct verr *err)
{
	char a[32], b[32];
	unsigned limit = max_vcpus < VM_MAX_VCPUS ? max_vcpus : VM_MAX_VCPUS;

	if (!cfg->kernel)
		return verr_set(err, EINVAL, "no kernel given: use --kernel PATH");
	if (cfg->ncpus == 0)
		return verr_set(err, EINVAL, "--cpus must be at least 1");
	if (cfg->ncpus > limit)
		return verr_set(err, EINVAL, "--cpus %u is more than this host supports (at most %u: %s)",
				cfg->ncpus, limit,
				limit == max_vcpus ? "the KVM limit" : "xAPIC IDs in the firmware tables");
	if (cfg->mem_size < (16ull << 20))
		return verr_set(err, EINVAL, "--memory must be at least 16 MiB");
	if (cfg->mem_size & 0xfff)
		return verr_set(err, EINVAL, "--memory must be a multiple of 4 KiB");
	if (cfg->mem_size > (1ull << 46))
		return verr_set(err, EINVAL, "--memory is larger than the 64 TiB vireo supports");
	if (host_mem && cfg->mem_size > host_mem && !cfg->overcommit) {
		size_format(cfg->mem_size, a, sizeof(a));
		size_format(host_mem, b, sizeof(b));
		return verr_set(err, ENOMEM, "--memory %s is more than the host's physical memory (%s); add --overcommit to allow it",
				a, b);
	}
	return 0;
}

static int create_vcpus(struct vm *vm, struct verr *err)
{
	vm->vcpus = calloc(vm->cfg.ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return verr_set(err, ENOMEM, "out of memory");
	for (unsigned i = 0; i < vm->cfg.ncpus; i++) {
		struct vcpu *c = &vm->vcpus[i];
		int rc;
		c->vm = vm;
		c->id = i;
		rc = accel_vcpu_create(vm->accel, i, &c->accel, err);
		if (rc < 0)
			return rc;
		vm->nvcpus++;
	}
	return 0;
}

int vm_create(struct vm **out, const struct vm_config *cfg, struct verr *err)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int rc;

	if (!vm)
		return verr_set(err, ENOMEM, "out of memory");
	vm->cfg = *cfg;
	vm->mem.fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0) {
		rc = verr_set(err, errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	rc = accel_vm_create(&vm->accel, err);
	if (rc == 0)
		rc = create_vcpus(vm, err);
	if (rc == 0)
		rc = vm_machine_setup(vm, err);
	if (rc < 0)
		goto fail;
	*out = vm;
	return 0;
fail:
	vm_destroy(vm);
	return rc;
}

int vm_start(struct vm *vm, struct verr *err)
{
	int rc = accel_vm_ready(vm->accel, err);

	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *c = &vm->vcpus[i];
		int rc = pthread_create(&c->thread, NULL, vcpu_thread, c);
		if (rc != 0) {
			vm_request_stop(vm, VM_STOP_HOST_ERROR, 0);
			return verr_set(err, rc, "cannot start vCPU %u thread: %s", i, strerror(rc));
		}
		c->started = true;
	}
	return 0;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int code)
{
	uint64_t one = 1;

	pthread_mutex_lock(&vm->lock);
	if (vm->result.reason == VM_RUNNING) {
		vm->result.reason = reason;
		vm->result.code = code;
	}
	atomic_store(&vm->stopping, true);
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		accel_vcpu_kick(vm->vcpus[i].accel);
	if (write(vm->stop_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("vm", "stop notification failed: %s", strerror(errno));
}

int vm_stop_fd(const struct vm *vm)
{
	return vm->stop_efd;
}

void vm_join(struct vm *vm, struct vm_result *res)
{
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *c = &vm->vcpus[i];
		if (c->started)
			pthread_join(c->thread, NULL);
		c->started = false;
	}
	pthread_mutex_lock(&vm->lock);
	*res = vm->result;
	pthread_mutex_unlock(&vm->lock);
}

void vm_destroy(struct vm *vm)
{
	struct vm_result ignored;

	if (!vm)
		return;
	if (vm->vcpus) {
		vm_request_stop(vm, VM_STOP_HOST_ERROR, 0);
		vm_join(vm, &ignored);
	}
	vm_machine_teardown(vm);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		accel_vcpu_destroy(vm->vcpus[i].accel);
	free(vm->vcpus);
	accel_vm_destroy(vm->accel);
	guest_mem_destroy(&vm->mem);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

size_t vm_console_input(struct vm *vm, const uint8_t *buf, size_t len)
{
	int n = uart_push_input(&vm->com1, buf, len);
	return n > 0 ? (size_t)n : 0;
}
