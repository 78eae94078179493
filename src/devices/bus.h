/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bus maps guest port-I/O or MMIO addresses to device handlers. Each VM
 * owns one port bus and one MMIO bus (no global device lists). Lookups take a
 * read lock so regions (PCI BARs) can be moved while vCPUs run.
 *
 * Handlers are called after that lock is dropped, so a handler may register
 * or unregister regions (a BAR moved by a config write) without deadlock.
 * In exchange, the owner stops the vCPUs before it unregisters and frees a
 * device. The name string must outlive the registration.
 */
#ifndef VIREO_DEVICES_BUS_H
#define VIREO_DEVICES_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct bus_dev_ops {
	/* offset is relative to the region base; len is 1, 2, 4 or 8 */
	void (*read)(void *opaque, uint64_t offset, void *data, unsigned len);
	void (*write)(void *opaque, uint64_t offset, const void *data, unsigned len);
};

struct bus_region {
	uint64_t base;
	uint64_t len;
	const char *name;
	const struct bus_dev_ops *ops;
	void *opaque;
};

struct bus {
	const char *name;             /* "pio" or "mmio", for messages */
	struct bus_region *regions;   /* sorted by base, never overlapping */
	size_t count, cap;
	pthread_rwlock_t lock;
};

int bus_init(struct bus *bus, const char *name, struct verr *err);
void bus_destroy(struct bus *bus);

/* Fails with EEXIST (naming both devices) if the range overlaps another. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		 const struct bus_dev_ops *ops, void *opaque, struct verr *err);
/* Removes the region registered with exactly this base and opaque. */
int bus_unregister(struct bus *bus, uint64_t base, void *opaque);

/* Dispatch an access. Returns false when no device claims the address: reads
 * then return all-ones, as on real hardware, and writes are dropped. An
 * access that straddles the end of a region is treated as unclaimed. */
bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned len);
bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned len);

#endif
