/* SPDX-License-Identifier: Apache-2.0 */
/* The VM context, shared by the files of src/vmm only. */
#ifndef VIREO_VMM_VM_PRIV_H
#define VIREO_VMM_VM_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "accel/accel.h"
#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "core/guest_mem.h"
#include "devices/acpi_pm.h"
#include "devices/bus.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/irq.h"
#include "devices/pci.h"
#include "devices/rtc.h"
#include "devices/uart.h"
#include "virtio/pci.h"
#include "vmm/vm.h"

struct vcpu {
	struct vm *vm;
	unsigned id;
	struct accel_vcpu *accel;
	pthread_t thread;
	bool started;
};

struct vm {
	struct vm_config cfg;
	struct accel_vm *accel;
	struct guest_mem mem;
	struct x86_mem_layout layout;
	/* memory slots registered on a helper thread (restore): the ioctl
	 * takes milliseconds on a nested host and needs nothing else */
	pthread_t mem_thread;
	bool mem_pending;
	int mem_rc;
	struct verr mem_err;
	struct bus pio, mmio;
	bool buses_ready;

	struct platform_ops platform;
	struct uart com1;
	struct rtc rtc;
	struct i8042 i8042;
	struct pci_host pci;
	struct acpi_pm pm;
	struct debug_exit debug_exit;
	unsigned devices_ready;      /* bit per device, so destroy frees what exists */

	/* virtio devices on PCI (vmm/virtio.c) */
	struct virtio_pci *virtio[VM_MAX_VIRTIO];
	struct block_dev *disks[VM_MAX_DISKS];
	unsigned nvirtio;
	uint64_t next_bar;
	pthread_mutex_t msi_lock;
	struct accel_msi_route *msi;
	unsigned nmsi, next_gsi;
	char net_ifname[VM_MAX_NETS][16];   /* of taps handed in as fds */
	/* console input for hvc0: the CLI writes [1], the device reads [0] */
	int console_pipe[2];

	/* strings the configuration points to that the VM owns (restored) */
	char *owned[2 * VM_MAX_DISKS * 3 + VM_MAX_NETS + 2];
	unsigned nowned;

	struct vcpu *vcpus;
	unsigned nvcpus;

	pthread_mutex_t lock;
	pthread_cond_t cond;          /* pause handshake, under lock */
	atomic_bool pause_requested;
	unsigned paused_vcpus;
	enum vm_run_state run_state;
	atomic_ullong exits;          /* statistics */
	atomic_bool stopping;
	struct vm_result result;
	int stop_efd;
};

/* vm.c: the VM with its accelerator and vCPUs, nothing else yet */
int vm_alloc(struct vm **out, const struct vm_config *cfg, struct verr *err);

/* machine.c: memory, devices, firmware tables, kernel */
int vm_machine_setup(struct vm *vm, struct verr *err);
/* The checks of a boot that need no accelerator: the kernel and initrd
 * loaded into scratch memory of the configured size (never run). */
int vm_check_boot_files(const struct vm_config *cfg, struct verr *err);
/* mem_file: NULL for fresh memfd RAM, or a snapshot image mapped privately */
int vm_setup_memory(struct vm *vm, const char *mem_file, struct verr *err);
/* With a snapshot file the slots are registered in the background;
 * vm_memory_ready waits for them (before any vCPU runs). */
int vm_memory_ready(struct vm *vm, struct verr *err);
int vm_setup_devices(struct vm *vm, struct verr *err);
void vm_machine_teardown(struct vm *vm);

/* virtio.c: virtio-pci devices from the configuration */
int vm_setup_virtio(struct vm *vm, struct verr *err);
void vm_teardown_virtio(struct vm *vm);

/* vcpu.c */
/* boot is the BSP's entry state; NULL for application processors, which
 * wait for INIT/SIPI. */
int vcpu_setup(struct vcpu *c, const struct x86_cpuid_entry *supported, unsigned nsupported,
	       const struct boot_result *boot, struct verr *err);
void *vcpu_thread(void *arg);
void vcpu_dump(struct vcpu *c, const char *why);

#endif
