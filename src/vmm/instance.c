/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/instance.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "accel/accel.h"
#include "virtio/net.h"
#include "vmm/vm_priv.h"

struct vmm_instance {
	pthread_mutex_t lock;
	struct vm_config cfg;
	struct vmm_boot_source boot;
	bool have_boot;
	struct vm *vm;
	int ready_efd;
	struct timespec started;
	char id[64];
	/* Devices configured over the API (PUT /drives, /network-interfaces):
	 * they own their strings; sync_devices() lays them into cfg after the
	 * devices given on the command line. */
	struct vmm_drive drives[VM_MAX_DISKS];
	unsigned ndrives;
	struct vmm_net nets[VM_MAX_NETS];
	unsigned nnets;
	unsigned base_disks, base_nets;   /* from the command line */
	char cmdline[4096 + 32];          /* boot args plus the root device */
	struct vmm_vsock vsock;           /* PUT /vsock's, owning its path */
};

static const char *const NOT_BEFORE = "this operation is only allowed before the microVM starts";
static const char *const NOT_AFTER = "this operation needs a running microVM";

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

int vmm_instance_create(struct vmm_instance **out, const struct vm_config *base, struct verr *err)
{
	struct vmm_instance *in = calloc(1, sizeof(*in));

	if (!in)
		return verr_set(err, ENOMEM, "out of memory");
	in->ready_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (in->ready_efd < 0) {
		free(in);
		return verr_set(err, errno, "eventfd: %s", strerror(errno));
	}
	pthread_mutex_init(&in->lock, NULL);
	/* Strings from the command line stay where they are (argv outlives
	 * the instance); the API's are copied into in->boot. */
	in->cfg = *base;
	in->base_disks = base->ndisks;
	in->base_nets = base->nnets;
	in->have_boot = base->kernel != NULL;
	snprintf(in->id, sizeof(in->id), "vireo-%d", (int)getpid());
	*out = in;
	return 0;
}

void vmm_instance_destroy(struct vmm_instance *in)
{
	if (!in)
		return;
	vm_destroy(in->vm);
	close(in->ready_efd);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

int vmm_instance_ready_fd(const struct vmm_instance *in) { return in->ready_efd; }

struct vm *vmm_instance_vm(struct vmm_instance *in)
{
	struct vm *vm;

	pthread_mutex_lock(&in->lock);
	vm = in->vm;
	pthread_mutex_unlock(&in->lock);
	return vm;
}

static uint64_t host_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	return pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
}

/* Publishes a started VM; called with the lock held. */
static void set_vm(struct vmm_instance *in, struct vm *vm)
{
	uint64_t one = 1;

	in->vm = vm;
	clock_gettime(CLOCK_MONOTONIC, &in->started);
	if (write(in->ready_efd, &one, sizeof(one)) < 0)
		return; /* cannot fail for an eventfd below its limit */
}

static int start_locked(struct vmm_instance *in, struct verr *err)
{
	struct vm_config cfg = in->cfg;
	struct accel_caps caps = { 0 };
	struct vm *vm = NULL;
	int rc;

	if (in->vm)
		return verr_set(err, EPERM, "the microVM is already running");
	if (!in->have_boot)
		return verr_set(err, EINVAL, "no boot source: PUT /boot-source with kernel_image_path first");
	if ((rc = accel_open(&caps, err)) < 0) {
		/* Without an accelerator, what is wrong with the user's own
		 * input still comes first: it is what they can fix. */
		struct verr why = { 0 };

		if (vm_config_check(&cfg, VM_MAX_VCPUS, host_memory(), &why) < 0 ||
		    vm_check_boot_files(&cfg, &why) < 0) {
			verr_clear(err);
			return verr_set(err, why.code, "%s", why.msg);
		}
		return rc;
	}
	if ((rc = vm_config_check(&cfg, caps.max_vcpus, host_memory(), err)) < 0)
		return rc;
	if ((rc = vm_create(&vm, &cfg, err)) < 0)
		return rc;
	if ((rc = vm_start(vm, err)) < 0) {
		vm_destroy(vm);
		return rc;
	}
	set_vm(in, vm);
	return 0;
}

int vmm_instance_start(struct vmm_instance *in, struct verr *err)
{
	int rc;

	pthread_mutex_lock(&in->lock);
	rc = start_locked(in, err);
	pthread_mutex_unlock(&in->lock);
	return rc;
}

int vmm_instance_restore(struct vmm_instance *in, const char *state, const char *mem,
			 bool resume, struct verr *err)
{
	struct vm_config cfg;
	struct vm *vm = NULL;
	int rc;

	pthread_mutex_lock(&in->lock);
	cfg = in->cfg;
	cfg.start_paused = true;
	if (in->vm)
		rc = verr_set(err, EPERM, "%s", NOT_BEFORE);
	else if ((rc = vm_snapshot_restore(&vm, &cfg, state, mem, err)) == 0 &&
		 (rc = vm_start(vm, err)) == 0 && resume)
		rc = vm_resume(vm, err);
	if (rc == 0)
		set_vm(in, vm);
	else if (vm)
		vm_destroy(vm);
	pthread_mutex_unlock(&in->lock);
	return rc;
}

/* ---- struct vmm_ctl_ops ---- */

static void op_get_info(void *ctx, struct vmm_info *out)
{
	struct vmm_instance *in = ctx;
	struct vm *vm = vmm_instance_vm(in);

	memset(out, 0, sizeof(*out));
	copy_str(out->id, sizeof(out->id), in->id);
	copy_str(out->vmm_version, sizeof(out->vmm_version), VIREO_VERSION);
	copy_str(out->app_name, sizeof(out->app_name), "vireo");
	out->state = !vm ? VMM_NOT_STARTED :
		vm_get_run_state(vm) == VM_STATE_PAUSED ? VMM_PAUSED : VMM_RUNNING;
}

static int op_get_machine_config(void *ctx, struct vmm_machine_config *out, struct verr *err)
{
	struct vmm_instance *in = ctx;

	pthread_mutex_lock(&in->lock);
	out->vcpu_count = in->vm ? in->vm->nvcpus : in->cfg.ncpus;
	out->mem_size_mib = (in->vm ? in->vm->cfg.mem_size : in->cfg.mem_size) >> 20;
	out->smt = false;
	out->track_dirty_pages = in->cfg.track_dirty_pages;
	pthread_mutex_unlock(&in->lock);
	return 0;
}

static int op_put_machine_config(void *ctx, const struct vmm_machine_config *mc, struct verr *err)
{
	struct vmm_instance *in = ctx;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	if (in->vm)
		rc = verr_set(err, EPERM, "%s", NOT_BEFORE);
	else if (mc->smt)
		rc = verr_set(err, EINVAL, "smt is not supported: vCPUs are one thread per core");
	else if (mc->vcpu_count == 0 || mc->vcpu_count > VM_MAX_VCPUS)
		rc = verr_set(err, EINVAL, "vcpu_count must be between 1 and %d", VM_MAX_VCPUS);
	else if (mc->mem_size_mib < 16 || mc->mem_size_mib > (1ull << 26))
		rc = verr_set(err, EINVAL, "mem_size_mib must be between 16 and 67108864");
	else {
		in->cfg.ncpus = mc->vcpu_count;
		in->cfg.mem_size = mc->mem_size_mib << 20;
		in->cfg.track_dirty_pages = mc->track_dirty_pages;
	}
	pthread_mutex_unlock(&in->lock);
	return rc;
}

static void sync_devices(struct vmm_instance *in);

static int op_put_boot_source(void *ctx, const struct vmm_boot_source *b, struct verr *err)
{
	struct vmm_instance *in = ctx;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	if (in->vm)
		rc = verr_set(err, EPERM, "%s", NOT_BEFORE);
	else if (!b->kernel_image_path[0])
		rc = verr_set(err, EINVAL, "kernel_image_path is empty");
	else if (access(b->kernel_image_path, R_OK) != 0)
		rc = verr_set(err, ENOENT, "cannot read kernel image %s: %s", b->kernel_image_path,
			      strerror(errno));
	else {
		in->boot = *b;
		in->cfg.kernel = in->boot.kernel_image_path;
		in->cfg.initrd = in->boot.initrd_path[0] ? in->boot.initrd_path : NULL;
		in->have_boot = true;
		sync_devices(in);
	}
	pthread_mutex_unlock(&in->lock);
	return rc;
}

/* Lays the API's drives and interfaces into cfg after the command line's:
 * the root drive first (it becomes /dev/vda, as in Firecracker), the rest in
 * the order they were first PUT. The drive id is the disk's serial, so the
 * guest can find each drive by its id. Called with the lock held. */
static bool has_root(const struct vmm_instance *in)
{
	for (unsigned i = 0; i < in->ndrives; i++)
		if (in->drives[i].is_root_device)
			return true;
	return false;
}

static void sync_devices(struct vmm_instance *in)
{
	unsigned nd = in->base_disks, nn = in->base_nets;
	const struct vmm_drive *root = NULL;

	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < in->ndrives && nd < VM_MAX_DISKS; i++) {
			const struct vmm_drive *d = &in->drives[i];
			struct vm_disk *vd = &in->cfg.disks[nd];

			if (d->is_root_device != (pass == 0))
				continue;
			if (d->is_root_device)
				root = d;
			memset(vd, 0, sizeof(*vd));
			vd->path = d->path_on_host;
			vd->read_only = d->is_read_only;
			vd->serial = d->drive_id;
			nd++;
		}
	}
	in->cfg.ndisks = nd;
	for (unsigned i = 0; i < in->nnets && nn < VM_MAX_NETS; i++) {
		struct vm_net *vn = &in->cfg.nets[nn++];

		memset(vn, 0, sizeof(*vn));
		vn->tap = in->nets[i].host_dev_name;
		if (in->nets[i].guest_mac[0])
			virtio_net_parse_mac(in->nets[i].guest_mac, vn->mac);
	}
	in->cfg.nnets = nn;
	/* Firecracker tells the kernel where its root file system is (only for
	 * a boot source from the API: a command line's arguments are the user's). */
	if (in->boot.kernel_image_path[0]) {
		const char *args = in->boot.boot_args;

		if (root) {
			snprintf(in->cmdline, sizeof(in->cmdline), "%s%sroot=/dev/vda %s", args,
				 args[0] ? " " : "", root->is_read_only ? "ro" : "rw");
			in->cfg.cmdline = in->cmdline;
		} else {
			in->cfg.cmdline = args;
		}
	}
}

static int op_put_drive(void *ctx, const struct vmm_drive *d, struct verr *err)
{
	struct vmm_instance *in = ctx;
	unsigned slot;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	for (slot = 0; slot < in->ndrives; slot++)
		if (!strcmp(in->drives[slot].drive_id, d->drive_id))
			break;
	if (in->vm)
		rc = verr_set(err, EPERM, "%s", NOT_BEFORE);
	else if (!d->drive_id[0] || strlen(d->drive_id) > 20)
		rc = verr_set(err, EINVAL, "drive_id must be 1 to 20 characters (it is the disk's serial)");
	else if (!d->path_on_host[0])
		rc = verr_set(err, EINVAL, "path_on_host is empty");
	else if (access(d->path_on_host, d->is_read_only ? R_OK : R_OK | W_OK) != 0)
		rc = verr_set(err, ENOENT, "cannot open drive %s (%s): %s", d->drive_id,
			      d->path_on_host, strerror(errno));
	else if (slot == in->ndrives && in->base_disks + in->ndrives >= VM_MAX_DISKS)
		rc = verr_set(err, EINVAL, "at most %d drives", VM_MAX_DISKS);
	else if (d->is_root_device && in->base_disks > 0)
		rc = verr_set(err, EINVAL, "the command line already gave the first disk; "
			      "drive %s cannot be the root device", d->drive_id);
	else {
		for (unsigned i = 0; i < in->ndrives; i++)
			if (i != slot && d->is_root_device && in->drives[i].is_root_device)
				rc = verr_set(err, EINVAL, "drive %s is already the root device",
					      in->drives[i].drive_id);
	}
	if (rc == 0) {
		in->drives[slot] = *d;
		if (slot == in->ndrives)
			in->ndrives++;
		sync_devices(in);
	}
	pthread_mutex_unlock(&in->lock);
	return rc;
}

static int op_put_net(void *ctx, const struct vmm_net *n, struct verr *err)
{
	struct vmm_instance *in = ctx;
	uint8_t mac[6];
	unsigned slot;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	for (slot = 0; slot < in->nnets; slot++)
		if (!strcmp(in->nets[slot].iface_id, n->iface_id))
			break;
	if (in->vm)
		rc = verr_set(err, EPERM, "%s", NOT_BEFORE);
	else if (!n->iface_id[0])
		rc = verr_set(err, EINVAL, "iface_id is empty");
	else if (!n->host_dev_name[0] || strlen(n->host_dev_name) > 15)
		rc = verr_set(err, EINVAL, "host_dev_name must be a tap name of 1 to 15 characters");
	else if (n->guest_mac[0] && virtio_net_parse_mac(n->guest_mac, mac) < 0)
		rc = verr_set(err, EINVAL, "guest_mac '%s' is not a unicast MAC address like 06:00:ac:10:00:02",
			      n->guest_mac);
	else if (slot == in->nnets && in->base_nets + in->nnets >= VM_MAX_NETS)
		rc = verr_set(err, EINVAL, "at most %d network interfaces", VM_MAX_NETS);
	else {
		for (unsigned i = 0; i < in->nnets; i++)
			if (i != slot && !strcmp(in->nets[i].host_dev_name, n->host_dev_name))
				rc = verr_set(err, EINVAL, "tap %s is already used by interface %s",
					      n->host_dev_name, in->nets[i].iface_id);
	}
	if (rc == 0) {
		in->nets[slot] = *n;
		if (slot == in->nnets)
			in->nnets++;
		sync_devices(in);
	}
	pthread_mutex_unlock(&in->lock);
	return rc;
}

static int op_put_vsock(void *ctx, const struct vmm_vsock *v, struct verr *err)
{
	struct vmm_instance *in = ctx;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	if (in->vm)
		rc = verr_set(err, EPERM, "%s", NOT_BEFORE);
	else if (v->guest_cid < 3 || v->guest_cid > UINT32_MAX - 1)
		rc = verr_set(err, EINVAL, "guest_cid %u: must be from 3 to 4294967294 (0-2 are reserved)",
			      v->guest_cid);
	else if (!v->uds_path[0] || strlen(v->uds_path) > VM_VSOCK_UDS_MAX)
		rc = verr_set(err, EINVAL, "uds_path must be 1 to %d bytes (room is left for _<port>)",
			      VM_VSOCK_UDS_MAX);
	else {
		/* one vsock device: a second PUT replaces it, as in Firecracker */
		in->vsock = *v;
		in->cfg.vsock.cid = v->guest_cid;
		in->cfg.vsock.uds = in->vsock.uds_path;
	}
	pthread_mutex_unlock(&in->lock);
	return rc;
}

static int op_put_entropy(void *ctx, struct verr *err)
{
	struct vmm_instance *in = ctx;
	int rc = 0;

	pthread_mutex_lock(&in->lock);
	if (in->vm)
		rc = verr_set(err, EPERM, "%s", NOT_BEFORE);
	else
		in->cfg.rng = true;      /* one device: a second PUT changes nothing */
	pthread_mutex_unlock(&in->lock);
	return rc;
}

static int op_instance_start(void *ctx, struct verr *err)
{
	return vmm_instance_start(ctx, err);
}

static struct vm *running_vm(struct vmm_instance *in, struct verr *err)
{
	struct vm *vm = vmm_instance_vm(in);
	if (!vm)
		verr_set(err, EPERM, "%s", NOT_AFTER);
	return vm;
}

static int op_send_ctrl_alt_del(void *ctx, struct verr *err)
{
	struct vm *vm = running_vm(ctx, err);

	if (!vm)
		return -EPERM;
	/* As Firecracker: the keys are typed on the i8042 keyboard. Linux
	 * turns them into a reboot, or SIGINT for init (ctrl-alt-del = 0). */
	return i8042_send_ctrl_alt_del(&vm->i8042, err);
}

static int op_pause(void *ctx, struct verr *err)
{
	struct vm *vm = running_vm(ctx, err);
	return vm ? vm_pause(vm, err) : -EPERM;
}

static int op_resume(void *ctx, struct verr *err)
{
	struct vm *vm = running_vm(ctx, err);
	return vm ? vm_resume(vm, err) : -EPERM;
}

static int op_snapshot_create(void *ctx, const struct vmm_snapshot_create *s, struct verr *err)
{
	struct vm *vm = running_vm(ctx, err);

	if (!vm)
		return -EPERM;
	return vm_snapshot_save(vm, s->snapshot_path, s->mem_file_path,
				s->type == VMM_SNAPSHOT_DIFF, err);
}

static int op_snapshot_load(void *ctx, const struct vmm_snapshot_load *s, struct verr *err)
{
	struct vmm_instance *in = ctx;

	pthread_mutex_lock(&in->lock);
	in->cfg.track_dirty_pages = in->cfg.track_dirty_pages || s->enable_diff_snapshots;
	pthread_mutex_unlock(&in->lock);
	return vmm_instance_restore(in, s->snapshot_path, s->mem_file_path, s->resume_vm, err);
}

static int op_get_vm_config(void *ctx, struct vmm_machine_config *mc, struct vmm_boot_source *bs,
			    struct vmm_drive *drives, unsigned *ndrives, unsigned max_drives,
			    struct verr *err)
{
	struct vmm_instance *in = ctx;

	op_get_machine_config(ctx, mc, err);
	pthread_mutex_lock(&in->lock);
	memset(bs, 0, sizeof(*bs));
	copy_str(bs->kernel_image_path, sizeof(bs->kernel_image_path), in->cfg.kernel);
	copy_str(bs->initrd_path, sizeof(bs->initrd_path), in->cfg.initrd);
	/* the arguments as given: root= is added again at the next boot */
	copy_str(bs->boot_args, sizeof(bs->boot_args),
		 in->boot.kernel_image_path[0] ? in->boot.boot_args : in->cfg.cmdline);
	*ndrives = 0;
	for (unsigned i = 0; i < in->cfg.ndisks && *ndrives < max_drives; i++) {
		const struct vm_disk *vd = &in->cfg.disks[i];
		struct vmm_drive *d = &drives[(*ndrives)++];
		const char *base = strrchr(vd->path, '/');

		memset(d, 0, sizeof(*d));
		copy_str(d->drive_id, sizeof(d->drive_id), vd->serial ? vd->serial : base ? base + 1 : vd->path);
		copy_str(d->path_on_host, sizeof(d->path_on_host), vd->path);
		d->is_root_device = i == in->base_disks && has_root(in);
		d->is_read_only = vd->read_only;
		copy_str(d->cache_type, sizeof(d->cache_type), "Writeback");
	}
	pthread_mutex_unlock(&in->lock);
	return 0;
}

static int op_get_devices(void *ctx, struct vmm_devices *out, struct verr *err)
{
	struct vmm_instance *in = ctx;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&in->lock);
	for (unsigned i = 0; i < in->cfg.nnets && out->nnets < VMM_MAX_NETS; i++) {
		const struct vm_net *vn = &in->cfg.nets[i];
		struct vmm_net *n = &out->nets[out->nnets];
		const uint8_t *m = vn->mac;
		char fd_name[16];

		/* A tap fd handed in is named by its interface: a config file
		 * with that name opens the same tap. */
		if (vn->has_fd && virtio_net_tap_name(vn->fd, fd_name) == 0)
			copy_str(n->host_dev_name, sizeof(n->host_dev_name), fd_name);
		else if (vn->tap)
			copy_str(n->host_dev_name, sizeof(n->host_dev_name), vn->tap);
		else
			continue;
		if (i >= in->base_nets)
			copy_str(n->iface_id, sizeof(n->iface_id), in->nets[i - in->base_nets].iface_id);
		else
			snprintf(n->iface_id, sizeof(n->iface_id), "net%u", i);
		if (m[0] | m[1] | m[2] | m[3] | m[4] | m[5])
			snprintf(n->guest_mac, sizeof(n->guest_mac), "%02x:%02x:%02x:%02x:%02x:%02x",
				 m[0], m[1], m[2], m[3], m[4], m[5]);
		out->nnets++;
	}
	if (in->cfg.vsock.cid && in->cfg.vsock.uds) {
		out->have_vsock = true;
		out->vsock.guest_cid = (uint32_t)in->cfg.vsock.cid;
		copy_str(out->vsock.uds_path, sizeof(out->vsock.uds_path), in->cfg.vsock.uds);
	}
	out->have_entropy = in->cfg.rng;
	pthread_mutex_unlock(&in->lock);
	return 0;
}

static int op_get_stats(void *ctx, struct vmm_stats *out, struct verr *err)
{
	struct vmm_instance *in = ctx;
	struct vm *vm = vmm_instance_vm(in);
	struct timespec now;

	memset(out, 0, sizeof(*out));
	if (!vm)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	out->uptime_ms = (uint64_t)((int64_t)(now.tv_sec - in->started.tv_sec) * 1000 +
				    ((int64_t)now.tv_nsec - in->started.tv_nsec) / 1000000);
	out->vcpu_exits = vm_exit_count(vm);
	out->guest_memory_bytes = vm->cfg.mem_size;
	return 0;
}

/* One restored VMM: our own binary, its console to a log file. */
static int spawn_clone(struct vm *vm, const char *dir, unsigned k, struct vmm_clone_result *out,
		       struct verr *err)
{
	char sub[4000], state[4100], mem[4100], net[VM_MAX_NETS][32];
	char *argv[16 + 2 * VM_MAX_NETS];
	int argc = 0, rc;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	pid_t pid;

	snprintf(sub, sizeof(sub), "%s/clone%u", dir, k);
	snprintf(state, sizeof(state), "%s/clone.state", dir);
	snprintf(mem, sizeof(mem), "%s/clone.mem", dir);
	snprintf(out->clones[k].api_socket, sizeof(out->clones[k].api_socket), "%s/api.sock", sub);
	snprintf(out->clones[k].console_log, sizeof(out->clones[k].console_log), "%s/console.log", sub);
	if (mkdir(sub, 0700) < 0 && errno != EEXIST)
		return verr_set(err, errno, "cannot create %s: %s", sub, strerror(errno));
	argv[argc++] = "vireo";
	argv[argc++] = "run";
	argv[argc++] = "--restore";
	argv[argc++] = state;
	argv[argc++] = "--restore-mem";
	argv[argc++] = mem;
	argv[argc++] = "--api-socket";
	argv[argc++] = out->clones[k].api_socket;
	/* its own disk overlays and vsock socket in its directory */
	if (vm->cfg.ndisks || vm->cfg.vsock.cid) {
		argv[argc++] = "--clone-overlays";
		argv[argc++] = sub;
	}
	/* its own network attachment: a new tap per interface (the guest keeps
	 * its MAC; give each clone's tap its own bridge or namespace) */
	for (unsigned n = 0; n < vm->cfg.nnets; n++) {
		snprintf(net[n], sizeof(net[n]), "tap=vc%dn%uk%u", (int)getpid() % 100000, n, k);
		argv[argc++] = "--net";
		argv[argc++] = net[n];
	}
	argv[argc] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out->clones[k].console_log,
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	/* this runs on the API thread, which blocks every signal: the clone
	 * must start with none blocked */
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
	rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, NULL);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0)
		return verr_set(err, rc, "cannot start clone %u: %s", k, strerror(rc));
	out->clones[k].pid = pid;
	out->count = k + 1;
	return 0;
}

static int op_clone(void *ctx, const struct vmm_clone_request *r, struct vmm_clone_result *out,
		    struct verr *err)
{
	struct vm *vm = running_vm(ctx, err);
	char state[4100], mem[4100];
	bool was_running;
	int rc;

	if (!vm)
		return -EPERM;
	if (mkdir(r->dir, 0700) < 0 && errno != EEXIST)
		return verr_set(err, errno, "cannot create %s: %s", r->dir, strerror(errno));
	snprintf(state, sizeof(state), "%s/clone.state", r->dir);
	snprintf(mem, sizeof(mem), "%s/clone.mem", r->dir);
	was_running = vm_get_run_state(vm) == VM_STATE_RUNNING;
	if (was_running && (rc = vm_pause(vm, err)) < 0)
		return rc;
	rc = vm_snapshot_save(vm, state, mem, false, err);
	if (was_running)
		vm_resume(vm, NULL);
	/* Clones are not waited for: the kernel reaps them when they end. */
	signal(SIGCHLD, SIG_IGN);
	for (unsigned k = 0; rc == 0 && k < r->count; k++)
		rc = spawn_clone(vm, r->dir, k, out, err);
	return rc;
}

const struct vmm_ctl_ops vmm_instance_ops = {
	.get_info = op_get_info,
	.get_machine_config = op_get_machine_config,
	.put_machine_config = op_put_machine_config,
	.put_boot_source = op_put_boot_source,
	.put_drive = op_put_drive,
	.put_net = op_put_net,
	.put_vsock = op_put_vsock,
	.put_entropy = op_put_entropy,
	.instance_start = op_instance_start,
	.send_ctrl_alt_del = op_send_ctrl_alt_del,
	.pause = op_pause,
	.resume = op_resume,
	.snapshot_create = op_snapshot_create,
	.snapshot_load = op_snapshot_load,
	.get_vm_config = op_get_vm_config,
	.get_devices = op_get_devices,
	.get_stats = op_get_stats,
	.clone = op_clone,
};
