/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake VMM behind struct vmm_ctl_ops for the API's tests, the fuzz target
 * and api_fake_server: it records every call and enforces a small state
 * machine like the real VMM's (configure before boot; pause, resume and
 * snapshot after; load a snapshot only on a fresh instance).
 */
#ifndef VIREO_TESTS_FAKE_VMM_H
#define VIREO_TESTS_FAKE_VMM_H

#include "vmm/control.h"

#define FAKE_MAX_DRIVES 8
#define FAKE_MAX_NETS 4

enum fake_op {
	FAKE_GET_INFO, FAKE_GET_MC, FAKE_PUT_MC, FAKE_PUT_BOOT, FAKE_PUT_DRIVE, FAKE_PUT_NET,
	FAKE_PUT_VSOCK, FAKE_PUT_ENTROPY, FAKE_START, FAKE_CAD, FAKE_PAUSE, FAKE_RESUME, FAKE_SNAP_CREATE,
	FAKE_SNAP_LOAD, FAKE_GET_VM_CONFIG, FAKE_GET_STATS, FAKE_NOPS
};

struct fake_vmm {
	enum vmm_state state;
	bool configured;                /* anything PUT since creation */
	unsigned calls[FAKE_NOPS];
	int fail_next;                  /* if non-zero, the next op fails with this errno */
	struct vmm_machine_config mc;
	struct vmm_boot_source boot;
	struct vmm_drive drives[FAKE_MAX_DRIVES];
	unsigned ndrives;
	struct vmm_net nets[FAKE_MAX_NETS];
	unsigned nnets;
	struct vmm_vsock vsock;
	bool has_vsock;
	bool has_entropy;
	struct vmm_snapshot_create last_create;
	struct vmm_snapshot_load last_load;
};

void fake_vmm_init(struct fake_vmm *f);
extern const struct vmm_ctl_ops fake_vmm_ops;

#endif
