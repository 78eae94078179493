/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VMM instance: the configuration gathered before boot (from the command
 * line, a config file or the API) and, once started or restored, its VM.
 * It implements struct vmm_ctl_ops for the control API and enforces the
 * state machine: configuration only before boot, pause/resume/snapshot only
 * after, snapshot load only into an instance that has not booted.
 */
#ifndef VIREO_VMM_INSTANCE_H
#define VIREO_VMM_INSTANCE_H

#include "vmm/control.h"
#include "vmm/vm.h"

struct vmm_instance;

extern const struct vmm_ctl_ops vmm_instance_ops;

/* base supplies defaults (vCPUs, memory, console, kernel if given). */
int vmm_instance_create(struct vmm_instance **out, const struct vm_config *base, struct verr *err);
void vmm_instance_destroy(struct vmm_instance *inst);

int vmm_instance_start(struct vmm_instance *inst, struct verr *err);
int vmm_instance_restore(struct vmm_instance *inst, const char *state, const char *mem,
			 bool resume, struct verr *err);
/* Readable once the instance has a VM (started or restored). */
int vmm_instance_ready_fd(const struct vmm_instance *inst);
struct vm *vmm_instance_vm(struct vmm_instance *inst);

#endif
