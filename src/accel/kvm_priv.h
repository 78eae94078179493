/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the KVM backend (kvm.c, kvm_state.c). */
#ifndef VIREO_ACCEL_KVM_PRIV_H
#define VIREO_ACCEL_KVM_PRIV_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct accel_vm {
	int kvm_fd;
	int vm_fd;
	int run_size;
	/* KVM_CREATE_PIT2 starts a kernel thread and takes milliseconds on a
	 * nested host; it runs here while the rest of the VM is set up. */
	pthread_t pit_thread;
	bool pit_pending;
	int pit_errno;
};

struct accel_vcpu {
	struct accel_vm *vm;
	int fd;
	unsigned id;
	struct kvm_run *run;
	/* The thread running this vCPU, for kicks; kick_lock keeps a kick from
	 * signalling a thread that has already ended. */
	pthread_mutex_t kick_lock;
	pthread_t thread;
	bool has_thread;
};

#endif
