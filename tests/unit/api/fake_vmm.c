/* SPDX-License-Identifier: Apache-2.0 */
#include "fake_vmm.h"

#include <errno.h>
#include <string.h>

void fake_vmm_init(struct fake_vmm *f)
{
	memset(f, 0, sizeof(*f));
	f->state = VMM_NOT_STARTED;
	f->mc = (struct vmm_machine_config){ .vcpu_count = 1, .mem_size_mib = 128 };
}

/* Common entry of every op: count it, and fail on request. */
static int enter(struct fake_vmm *f, enum fake_op op, struct verr *err)
{
	int code = f->fail_next;

	f->calls[op]++;
	f->fail_next = 0;
	if (code)
		return verr_set(err, code, "fake: injected failure (errno %d)", code);
	return 0;
}

static int pre_boot(struct fake_vmm *f, enum fake_op op, const char *what, struct verr *err)
{
	int rc = enter(f, op, err);

	if (rc == 0 && f->state != VMM_NOT_STARTED)
		return verr_set(err, EPERM, "%s is not allowed after the instance started", what);
	if (rc == 0)
		f->configured = true;
	return rc;
}

static void get_info(void *ctx, struct vmm_info *out)
{
	struct fake_vmm *f = ctx;

	f->calls[FAKE_GET_INFO]++;
	*out = (struct vmm_info){ .id = "fake-vm", .state = f->state, .vmm_version = "0.1.0",
				  .app_name = "vireo" };
}

static int get_mc(void *ctx, struct vmm_machine_config *out, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = enter(f, FAKE_GET_MC, err);

	if (rc == 0)
		*out = f->mc;
	return rc;
}

static int put_mc(void *ctx, const struct vmm_machine_config *cfg, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = pre_boot(f, FAKE_PUT_MC, "machine-config", err);

	if (rc < 0)
		return rc;
	if (cfg->vcpu_count < 1 || cfg->vcpu_count > 32)
		return verr_set(err, EINVAL, "vcpu_count must be 1 to 32");
	if (cfg->mem_size_mib == 0)
		return verr_set(err, EINVAL, "mem_size_mib must not be 0");
	if (cfg->smt)
		return verr_set(err, EINVAL, "smt is not supported");
	f->mc = *cfg;
	return 0;
}

static int put_boot(void *ctx, const struct vmm_boot_source *b, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = pre_boot(f, FAKE_PUT_BOOT, "boot-source", err);

	if (rc == 0 && !b->kernel_image_path[0])
		return verr_set(err, EINVAL, "kernel_image_path is empty");
	if (rc == 0)
		f->boot = *b;
	return rc;
}

static int put_drive(void *ctx, const struct vmm_drive *d, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = pre_boot(f, FAKE_PUT_DRIVE, "drives", err);
	unsigned i;

	if (rc < 0)
		return rc;
	for (i = 0; i < f->ndrives && strcmp(f->drives[i].drive_id, d->drive_id); i++)
		;
	if (i == FAKE_MAX_DRIVES)
		return verr_set(err, EINVAL, "too many drives");
	f->drives[i] = *d;
	if (i == f->ndrives)
		f->ndrives++;
	return 0;
}

static int put_net(void *ctx, const struct vmm_net *n, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = pre_boot(f, FAKE_PUT_NET, "network-interfaces", err);

	if (rc < 0)
		return rc;
	if (f->nnets == FAKE_MAX_NETS)
		return verr_set(err, EINVAL, "too many network interfaces");
	f->nets[f->nnets++] = *n;
	return 0;
}

static int put_vsock(void *ctx, const struct vmm_vsock *v, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = pre_boot(f, FAKE_PUT_VSOCK, "vsock", err);

	if (rc == 0 && v->guest_cid < 3)
		return verr_set(err, EINVAL, "guest_cid must be at least 3");
	if (rc == 0) {
		f->vsock = *v;
		f->has_vsock = true;
	}
	return rc;
}

static int put_entropy(void *ctx, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = pre_boot(f, FAKE_PUT_ENTROPY, "entropy", err);

	if (rc == 0)
		f->has_entropy = true;
	return rc;
}

static int start(void *ctx, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = enter(f, FAKE_START, err);

	if (rc == 0 && f->state != VMM_NOT_STARTED)
		return verr_set(err, EPERM, "the instance has already started");
	if (rc == 0 && !f->boot.kernel_image_path[0])
		return verr_set(err, EINVAL, "no boot source: PUT /boot-source first");
	if (rc == 0)
		f->state = VMM_RUNNING;
	return rc;
}

static int need_state(struct fake_vmm *f, enum fake_op op, enum vmm_state want,
		      const char *what, struct verr *err)
{
	int rc = enter(f, op, err);

	if (rc == 0 && f->state != want)
		return verr_set(err, EPERM, "%s needs a %s instance", what,
				want == VMM_RUNNING ? "running" : "paused");
	return rc;
}

static int cad(void *ctx, struct verr *err)
{
	return need_state(ctx, FAKE_CAD, VMM_RUNNING, "SendCtrlAltDel", err);
}

static int pause_vm(void *ctx, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = need_state(f, FAKE_PAUSE, VMM_RUNNING, "pausing", err);

	if (rc == 0)
		f->state = VMM_PAUSED;
	return rc;
}

static int resume_vm(void *ctx, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = need_state(f, FAKE_RESUME, VMM_PAUSED, "resuming", err);

	if (rc == 0)
		f->state = VMM_RUNNING;
	return rc;
}

static int snap_create(void *ctx, const struct vmm_snapshot_create *s, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = need_state(f, FAKE_SNAP_CREATE, VMM_PAUSED, "a snapshot", err);

	if (rc == 0 && s->type == VMM_SNAPSHOT_DIFF && !f->mc.track_dirty_pages)
		return verr_set(err, EINVAL, "diff snapshots need track_dirty_pages");
	if (rc == 0)
		f->last_create = *s;
	return rc;
}

static int snap_load(void *ctx, const struct vmm_snapshot_load *s, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = enter(f, FAKE_SNAP_LOAD, err);

	if (rc == 0 && (f->state != VMM_NOT_STARTED || f->configured))
		return verr_set(err, EPERM, "loading a snapshot needs a fresh instance");
	if (rc == 0) {
		f->last_load = *s;
		f->state = s->resume_vm ? VMM_RUNNING : VMM_PAUSED;
	}
	return rc;
}

static int get_vm_config(void *ctx, struct vmm_machine_config *mc, struct vmm_boot_source *bs,
			 struct vmm_drive *drives, unsigned *ndrives, unsigned max_drives,
			 struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = enter(f, FAKE_GET_VM_CONFIG, err);

	if (rc < 0)
		return rc;
	*mc = f->mc;
	*bs = f->boot;
	*ndrives = f->ndrives < max_drives ? f->ndrives : max_drives;
	memcpy(drives, f->drives, *ndrives * sizeof(*drives));
	return 0;
}

static int get_stats(void *ctx, struct vmm_stats *out, struct verr *err)
{
	struct fake_vmm *f = ctx;
	int rc = enter(f, FAKE_GET_STATS, err);

	if (rc == 0)
		*out = (struct vmm_stats){ .uptime_ms = 1234, .vcpu_exits = 5678,
					   .guest_memory_bytes = f->mc.mem_size_mib << 20 };
	return rc;
}

const struct vmm_ctl_ops fake_vmm_ops = {
	.get_info = get_info,
	.get_machine_config = get_mc,
	.put_machine_config = put_mc,
	.put_boot_source = put_boot,
	.put_drive = put_drive,
	.put_net = put_net,
	.put_vsock = put_vsock,
	.put_entropy = put_entropy,
	.instance_start = start,
	.send_ctrl_alt_del = cad,
	.pause = pause_vm,
	.resume = resume_vm,
	.snapshot_create = snap_create,
	.snapshot_load = snap_load,
	.get_vm_config = get_vm_config,
	.get_stats = get_stats,
};
