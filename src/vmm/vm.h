/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A virtual machine: guest memory, vCPUs, buses and devices in one context
 * (no file-scope state, so several VMs can live in one process). The CLI
 * builds a vm_config, creates the VM, starts it and waits for it to stop.
 */
#ifndef VIREO_VMM_VM_H
#define VIREO_VMM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define VM_MAX_VCPUS 254  /* xAPIC IDs 0..253 in the MADT and MP table */

#define VM_MAX_DISKS 8
#define VM_MAX_NETS 4
#define VM_NET_MAX_QUEUES 8   /* queue pairs per interface */
/* disks, nets, rng, console, vsock: the order of the PCI functions and of
 * the snapshot's virtio sections */
#define VM_MAX_VIRTIO (VM_MAX_DISKS + VM_MAX_NETS + 3)
/* the vsock socket path leaves room for "_<port>" in a sun_path */
#define VM_VSOCK_UDS_MAX 95

struct vm_disk {
	const char *path;
	const char *format;      /* NULL: probe */
	bool read_only;
	bool cache_none;         /* O_DIRECT */
	const char *serial;      /* NULL: the file name */
};

struct vm_net {
	const char *tap;         /* interface name (with has_fd: filled in from the fd) */
	bool has_fd;             /* fd: an open tap handed in by the caller, adopted */
	int fd;
	unsigned queues;         /* queue pairs; 0 means 1 */
	uint8_t mac[6];          /* all zero: derived */
};

struct vm_vsock {
	uint64_t cid;            /* 0: no vsock device */
	const char *uds;         /* host socket; guest connections reach uds_<port> */
};

struct vm_config {
	const char *kernel;
	const char *initrd;      /* NULL: none */
	const char *cmdline;     /* NULL: empty */
	unsigned ncpus;
	uint64_t mem_size;
	bool debug_exit;         /* isa-debug-exit compatible port 0x501 */
	bool overcommit;         /* allow more guest RAM than the host has */
	int console_out_fd;      /* COM1 output (stdout), and hvc0's with console_virtio */
	/* A virtio-console (hvc0) that takes the console input; COM1 stays */
	bool console_virtio;
	bool track_dirty_pages;  /* KVM dirty logging, for diff snapshots */
	bool start_paused;       /* vm_start leaves the vCPUs parked */
	struct vm_disk disks[VM_MAX_DISKS];
	unsigned ndisks;
	struct vm_net nets[VM_MAX_NETS];
	unsigned nnets;
	bool rng;                /* virtio-rng */
	struct vm_vsock vsock;   /* virtio-vsock (Firecracker's hybrid Unix sockets) */
	/* Restore only: put each disk of the snapshot behind a new qcow2
	 * overlay in this directory (clones must not share writable disks). */
	const char *clone_overlay_dir;
};

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,
	VM_STOP_RESET,
	VM_STOP_TRIPLE_FAULT,
	VM_STOP_ACCEL_ERROR,
	VM_STOP_HOST_ERROR,
	VM_STOP_DEBUG_EXIT,
	VM_STOP_USER,
};

struct vm_result {
	enum vm_stop_reason reason;
	int code;                /* the debug-exit code for VM_STOP_DEBUG_EXIT */
};

struct vm;

enum vm_run_state { VM_STATE_CREATED, VM_STATE_RUNNING, VM_STATE_PAUSED };

/* Checks a configuration before anything is allocated; the message names the
 * offending option. host_mem is the host's physical memory in bytes. */
int vm_config_check(const struct vm_config *cfg, unsigned max_vcpus, uint64_t host_mem,
		    struct verr *err);

int vm_create(struct vm **vm, const struct vm_config *cfg, struct verr *err);
int vm_start(struct vm *vm, struct verr *err);
/* First request wins; safe from any thread (devices, vCPUs, the CLI). */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int code);
/* An eventfd that becomes readable once the VM has been asked to stop. */
int vm_stop_fd(const struct vm *vm);
/* Joins the vCPU threads after a stop request and reports why it stopped. */
void vm_join(struct vm *vm, struct vm_result *res);
void vm_destroy(struct vm *vm);

/* Stops every vCPU outside guest code (pending I/O completed) and returns
 * once all are parked; resume lets them go on. */
int vm_pause(struct vm *vm, struct verr *err);
int vm_resume(struct vm *vm, struct verr *err);
enum vm_run_state vm_get_run_state(struct vm *vm);
uint64_t vm_exit_count(struct vm *vm);

/* Snapshots (vmm/snapshot.c). Saving needs a paused VM; diff writes only
 * the pages dirtied since the previous snapshot (needs track_dirty_pages)
 * into an existing memory file. */
int vm_snapshot_save(struct vm *vm, const char *state_path, const char *mem_path, bool diff,
		     struct verr *err);
/* Builds a paused VM from a state file and a memory file (mapped
 * copy-on-write, not read in). cfg gives the console; the rest comes from
 * the snapshot. */
/* Checks a state file's contents (header, CRC, sections, device list)
 * without building anything: what restore refuses before it opens KVM. */
int vm_snapshot_check(const uint8_t *data, size_t len, const char *name, struct verr *err);
int vm_snapshot_restore(struct vm **vm, const struct vm_config *cfg, const char *state_path,
			const char *mem_path, struct verr *err);

/* Feeds console input to the console (COM1, or hvc0 with console_virtio);
 * returns bytes accepted (0 while its buffer is full). */
size_t vm_console_input(struct vm *vm, const uint8_t *buf, size_t len);

#endif
