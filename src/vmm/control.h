/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the control API (src/api) asks of a VMM instance, in plain C types.
 * The API layer parses HTTP/JSON, validates shapes and types, and calls
 * these operations; the VMM enforces the state machine (what is allowed
 * before and after boot) and answers with a verr message on refusal. The
 * error codes map to HTTP statuses: EINVAL/ENOENT/EEXIST/EBUSY/EPERM/
 * ENOTSUP -> 400, anything else -> 500.
 */
#ifndef VIREO_VMM_CONTROL_H
#define VIREO_VMM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum vmm_state { VMM_NOT_STARTED, VMM_RUNNING, VMM_PAUSED };

struct vmm_info {
	char id[64];                 /* instance id */
	enum vmm_state state;
	char vmm_version[32];
	char app_name[16];           /* "vireo" */
};

struct vmm_machine_config {
	unsigned vcpu_count;         /* 1..254 */
	uint64_t mem_size_mib;
	bool smt;                    /* accepted only false */
	bool track_dirty_pages;
};

struct vmm_boot_source {
	char kernel_image_path[4096];
	char initrd_path[4096];      /* "" = none */
	char boot_args[4096];        /* "" = none */
};

struct vmm_drive {
	char drive_id[64];
	char path_on_host[4096];
	bool is_root_device;
	bool is_read_only;
	char cache_type[16];         /* "Unsafe" | "Writeback" */
};

struct vmm_net {
	char iface_id[64];
	char host_dev_name[64];
	char guest_mac[18];          /* "" = generated */
};

struct vmm_vsock {
	uint32_t guest_cid;          /* >= 3 */
	char uds_path[4096];
};

/* GET /vm/config's network interfaces and vsock device */
#define VMM_MAX_NETS 16
struct vmm_devices {
	struct vmm_net nets[VMM_MAX_NETS];
	unsigned nnets;
	bool have_vsock;
	struct vmm_vsock vsock;
	bool have_entropy;           /* a virtio-rng device */
};

enum vmm_snapshot_type { VMM_SNAPSHOT_FULL, VMM_SNAPSHOT_DIFF };

struct vmm_snapshot_create {
	enum vmm_snapshot_type type;
	char snapshot_path[4096];    /* VM state file */
	char mem_file_path[4096];    /* guest memory file */
};

struct vmm_snapshot_load {
	char snapshot_path[4096];
	char mem_file_path[4096];    /* mem_backend File (or legacy mem_file_path) */
	bool enable_diff_snapshots;
	bool resume_vm;
};

struct vmm_stats {
	uint64_t uptime_ms;
	uint64_t vcpu_exits;
	uint64_t guest_memory_bytes;
};

/* PUT /vireo/clone: snapshot this VM into dir and start `count` new VMMs
 * restored from it, each with its own API socket, console log and disk
 * overlays in dir/clone<N>/; the source VM goes on as it was. */
#define VMM_MAX_CLONES 64
struct vmm_clone_request {
	uint32_t count;
	char dir[3800];
};

struct vmm_clone_result {
	uint32_t count;
	struct {
		int pid;
		char api_socket[4096];
		char console_log[4096];
	} clones[VMM_MAX_CLONES];
};

/* One VMM instance as seen by the API. ctx is the VMM's own context. */
struct vmm_ctl_ops {
	void (*get_info)(void *ctx, struct vmm_info *out);
	int (*get_machine_config)(void *ctx, struct vmm_machine_config *out, struct verr *err);
	int (*put_machine_config)(void *ctx, const struct vmm_machine_config *cfg, struct verr *err);
	int (*put_boot_source)(void *ctx, const struct vmm_boot_source *b, struct verr *err);
	int (*put_drive)(void *ctx, const struct vmm_drive *d, struct verr *err);
	int (*put_net)(void *ctx, const struct vmm_net *n, struct verr *err);
	int (*put_vsock)(void *ctx, const struct vmm_vsock *v, struct verr *err);
	/* optional: PUT /entropy, a virtio-rng device (before boot) */
	int (*put_entropy)(void *ctx, struct verr *err);
	int (*instance_start)(void *ctx, struct verr *err);
	int (*send_ctrl_alt_del)(void *ctx, struct verr *err);
	int (*pause)(void *ctx, struct verr *err);
	int (*resume)(void *ctx, struct verr *err);
	int (*snapshot_create)(void *ctx, const struct vmm_snapshot_create *s, struct verr *err);
	int (*snapshot_load)(void *ctx, const struct vmm_snapshot_load *s, struct verr *err);
	/* GET /vm/config: the whole configuration */
	int (*get_vm_config)(void *ctx, struct vmm_machine_config *mc, struct vmm_boot_source *bs,
			     struct vmm_drive *drives, unsigned *ndrives, unsigned max_drives,
			     struct verr *err);
	/* optional: the interfaces and vsock device GET /vm/config lists */
	int (*get_devices)(void *ctx, struct vmm_devices *out, struct verr *err);
	int (*get_stats)(void *ctx, struct vmm_stats *out, struct verr *err);
	int (*clone)(void *ctx, const struct vmm_clone_request *r, struct vmm_clone_result *out,
		     struct verr *err);
};

#endif
