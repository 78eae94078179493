/* SPDX-License-Identifier: Apache-2.0 */
/* VM lifecycle: configuration checks, creation, vCPU threads, stop and join. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/size.h"
#include "virtio/net.h"

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
	/* a tap handed in must be one, before anything else is set up */
	for (unsigned i = 0; i < cfg->nnets; i++) {
		char name[16];

		if (cfg->nets[i].has_fd && virtio_net_tap_check(cfg->nets[i].fd, name, err) < 0)
			return verr_prefix(err, "--net fd=%d: ", cfg->nets[i].fd);
	}
	if (host_mem && cfg->mem_size > host_mem && !cfg->overcommit) {
		size_format(cfg->mem_size, a, sizeof(a));
		size_format(host_mem, b, sizeof(b));
		return verr_set(err, EINVAL, "--memory %s is more than the host's physical memory (%s); add --overcommit to allow it",
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

int vm_alloc(struct vm **out, const struct vm_config *cfg, struct verr *err)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int rc;

	if (!vm)
		return verr_set(err, ENOMEM, "out of memory");
	vm->cfg = *cfg;
	vm->mem.fd = -1;
	vm->console_pipe[0] = vm->console_pipe[1] = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0) {
		rc = verr_set(err, errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	rc = accel_vm_create(&vm->accel, err);
	if (rc == 0)
		rc = create_vcpus(vm, err);
	if (rc < 0)
		goto fail;
	*out = vm;
	return 0;
fail:
	vm_destroy(vm);
	return rc;
}

int vm_create(struct vm **out, const struct vm_config *cfg, struct verr *err)
{
	int rc = vm_alloc(out, cfg, err);

	if (rc == 0 && (rc = vm_machine_setup(*out, err)) < 0) {
		vm_destroy(*out);
		*out = NULL;
	}
	return rc;
}

int vm_start(struct vm *vm, struct verr *err)
{
	int rc = vm_memory_ready(vm, err);

	if (rc == 0)
		rc = accel_vm_ready(vm->accel, err);
	if (rc < 0)
		return rc;
	if (vm->cfg.start_paused)
		atomic_store(&vm->pause_requested, true);
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *c = &vm->vcpus[i];
		rc = pthread_create(&c->thread, NULL, vcpu_thread, c);
		if (rc != 0) {
			vm_request_stop(vm, VM_STOP_HOST_ERROR, 0);
			return verr_set(err, rc, "cannot start vCPU %u thread: %s", i, strerror(rc));
		}
		c->started = true;
	}
	vm->run_state = vm->cfg.start_paused ? VM_STATE_PAUSED : VM_STATE_RUNNING;
	return vm->cfg.start_paused ? vm_pause(vm, err) : 0;
}

int vm_pause(struct vm *vm, struct verr *err)
{
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	atomic_store(&vm->pause_requested, true);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		accel_vcpu_kick(vm->vcpus[i].accel);
	pthread_mutex_lock(&vm->lock);
	while (vm->paused_vcpus < vm->nvcpus && !atomic_load(&vm->stopping) && rc == 0)
		rc = pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline);
	if (rc == 0 && !atomic_load(&vm->stopping))
		vm->run_state = VM_STATE_PAUSED;
	pthread_mutex_unlock(&vm->lock);
	if (atomic_load(&vm->stopping))
		return verr_set(err, ESHUTDOWN, "the VM has stopped");
	if (rc != 0) {
		vm_resume(vm, NULL);
		return verr_set(err, ETIMEDOUT, "vCPUs did not pause within 10 s");
	}
	return 0;
}

int vm_resume(struct vm *vm, struct verr *err)
{
	if (atomic_load(&vm->stopping))
		return verr_set(err, ESHUTDOWN, "the VM has stopped");
	pthread_mutex_lock(&vm->lock);
	atomic_store(&vm->pause_requested, false);
	if (vm->run_state == VM_STATE_PAUSED)
		vm->run_state = VM_STATE_RUNNING;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

enum vm_run_state vm_get_run_state(struct vm *vm)
{
	enum vm_run_state s;

	pthread_mutex_lock(&vm->lock);
	s = vm->run_state;
	pthread_mutex_unlock(&vm->lock);
	return s;
}

uint64_t vm_exit_count(struct vm *vm)
{
	return atomic_load(&vm->exits);
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
	pthread_cond_broadcast(&vm->cond);
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
	vm_memory_ready(vm, NULL);
	vm_machine_teardown(vm);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		accel_vcpu_destroy(vm->vcpus[i].accel);
	free(vm->vcpus);
	for (unsigned i = 0; i < vm->nowned; i++)
		free(vm->owned[i]);
	accel_vm_destroy(vm->accel);
	guest_mem_destroy(&vm->mem);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

size_t vm_console_input(struct vm *vm, const uint8_t *buf, size_t len)
{
	ssize_t w;
	int n;

	if (vm->console_pipe[1] >= 0) {
		w = write(vm->console_pipe[1], buf, len);   /* non-blocking: full is 0 */
		return w > 0 ? (size_t)w : 0;
	}
	n = uart_push_input(&vm->com1, buf, len);
	return n > 0 ? (size_t)n : 0;
}
