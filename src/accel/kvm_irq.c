/* SPDX-License-Identifier: Apache-2.0 */
/* GSI routing, irqfd and ioeventfd for the KVM backend. */
#include "accel/accel.h"
#include "accel/kvm_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define LEGACY_GSIS 24
#define MAX_ROUTES 1024

static int fail(struct verr *err, const char *what)
{
	int e = errno;
	return verr_set(err, e, "KVM %s failed: %s", what, strerror(e));
}

static unsigned add_irqchip(struct kvm_irq_routing_entry *e, unsigned gsi, unsigned chip,
			    unsigned pin)
{
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
	return 1;
}

/* What KVM_CREATE_IRQCHIP sets up by itself: every legacy GSI to the IOAPIC
 * pin of the same number, and GSIs 0-15 also to the PICs. Setting routes
 * replaces the whole table, so these are always written again. */
static unsigned legacy_routes(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;

	for (unsigned gsi = 0; gsi < LEGACY_GSIS; gsi++) {
		if (gsi < 8)
			n += add_irqchip(&e[n], gsi, KVM_IRQCHIP_PIC_MASTER, gsi);
		else if (gsi < 16)
			n += add_irqchip(&e[n], gsi, KVM_IRQCHIP_PIC_SLAVE, gsi - 8);
		n += add_irqchip(&e[n], gsi, KVM_IRQCHIP_IOAPIC, gsi);
	}
	return n;
}

int accel_set_msi_routes(struct accel_vm *vm, const struct accel_msi_route *r, unsigned n,
			 struct verr *err)
{
	struct kvm_irq_routing *rt;
	unsigned k;
	int rc = 0;

	if (n > MAX_ROUTES - 2 * LEGACY_GSIS)
		return verr_set(err, ENOSPC, "too many MSI routes (%u)", n);
	rt = calloc(1, sizeof(*rt) + (2 * LEGACY_GSIS + n) * sizeof(struct kvm_irq_routing_entry));
	if (!rt)
		return verr_set(err, ENOMEM, "out of memory");
	k = legacy_routes(rt->entries);
	for (unsigned i = 0; i < n; i++, k++) {
		struct kvm_irq_routing_entry *e = &rt->entries[k];
		if (r[i].gsi < ACCEL_FIRST_MSI_GSI) {
			free(rt);
			return verr_set(err, EINVAL, "MSI route on legacy GSI %u", r[i].gsi);
		}
		e->gsi = r[i].gsi;
		e->type = KVM_IRQ_ROUTING_MSI;
		e->u.msi.address_lo = (uint32_t)r[i].addr;
		e->u.msi.address_hi = (uint32_t)(r[i].addr >> 32);
		e->u.msi.data = r[i].data;
	}
	rt->nr = k;
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, rt) < 0)
		rc = fail(err, "KVM_SET_GSI_ROUTING");
	free(rt);
	return rc;
}

int accel_irqfd(struct accel_vm *vm, int fd, unsigned gsi, bool assign, struct verr *err)
{
	struct kvm_irqfd f = { .fd = (uint32_t)fd, .gsi = gsi,
			       .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	if (ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0)
		return fail(err, "KVM_IRQFD");
	return 0;
}

int accel_ioeventfd(struct accel_vm *vm, uint64_t addr, unsigned len, int fd, bool assign,
		    struct verr *err)
{
	struct kvm_ioeventfd e = { .addr = addr, .len = len, .fd = fd,
				   .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN };

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &e) < 0)
		return fail(err, "KVM_IOEVENTFD");
	return 0;
}
