/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How a device raises a legacy interrupt line without knowing about KVM: the
 * VM hands each device an irq_line bound to a GSI; set() ends in
 * KVM_IRQ_LINE (or a test double in unit tests).
 */
#ifndef VIREO_DEVICES_IRQ_H
#define VIREO_DEVICES_IRQ_H

struct irq_line {
	void (*set)(void *ctx, unsigned gsi, int level);
	void *ctx;
	unsigned gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
	if (l && l->set)
		l->set(l->ctx, l->gsi, level);
}

/* Platform requests a device can make of the VM (i8042 reset line, ACPI
 * sleep, reset register). They only record the request and kick the vCPUs;
 * the VM's run loop acts on them. */
struct platform_ops {
	void (*request_reset)(void *ctx);
	void (*request_poweroff)(void *ctx);
	void *ctx;
};

#endif
