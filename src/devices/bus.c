/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Address dispatch for port I/O and MMIO. Regions live in one array sorted by
 * base, so a lookup is a binary search under the read lock.
 *
 * Device callbacks run after the lock is dropped (on a copy of the region):
 * a device may then move its own regions (a PCI BAR written through a config
 * access on the same bus) without deadlocking. The price is that the owner
 * must stop the vCPUs before it unregisters and frees a device.
 */
#include "devices/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BUS_MIN_CAP 16

int bus_init(struct bus *bus, const char *name, struct verr *err)
{
	int rc;

	memset(bus, 0, sizeof(*bus));
	bus->name = name ? name : "bus";
	rc = pthread_rwlock_init(&bus->lock, NULL);
	if (rc)
		return verr_set(err, rc, "%s: cannot create lock", bus->name);
	return 0;
}

void bus_destroy(struct bus *bus)
{
	if (!bus)
		return;
	free(bus->regions);
	bus->regions = NULL;
	bus->count = bus->cap = 0;
	pthread_rwlock_destroy(&bus->lock);
}

/* Index of the first region whose base is greater than addr. */
static size_t bus_upper_bound(const struct bus *bus, uint64_t addr)
{
	size_t lo = 0, hi = bus->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (bus->regions[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Last byte of a region; regions are never empty and never wrap. */
static uint64_t region_last(const struct bus_region *r)
{
	return r->base + (r->len - 1);
}

static int bus_grow(struct bus *bus, struct verr *err)
{
	size_t cap = bus->cap ? bus->cap * 2 : BUS_MIN_CAP;
	struct bus_region *n;

	if (bus->count < bus->cap)
		return 0;
	n = realloc(bus->regions, cap * sizeof(*n));
	if (!n)
		return verr_set(err, ENOMEM, "%s: out of memory for regions", bus->name);
	bus->regions = n;
	bus->cap = cap;
	return 0;
}

static int bus_check_overlap(const struct bus *bus, size_t pos, uint64_t base,
			     uint64_t last, const char *name, struct verr *err)
{
	const struct bus_region *clash = NULL;

	if (pos > 0 && region_last(&bus->regions[pos - 1]) >= base)
		clash = &bus->regions[pos - 1];
	else if (pos < bus->count && bus->regions[pos].base <= last)
		clash = &bus->regions[pos];
	if (!clash)
		return 0;
	return verr_set(err, EEXIST,
			"%s: %s at 0x%llx-0x%llx overlaps %s at 0x%llx-0x%llx",
			bus->name, name, (unsigned long long)base,
			(unsigned long long)last, clash->name,
			(unsigned long long)clash->base,
			(unsigned long long)region_last(clash));
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const char *name,
		 const struct bus_dev_ops *ops, void *opaque, struct verr *err)
{
	uint64_t last;
	size_t pos;
	int rc;

	if (!name)
		name = "device";
	if (len == 0 || base + (len - 1) < base)
		return verr_set(err, EINVAL, "%s: %s: bad range base 0x%llx len 0x%llx",
				bus->name, name, (unsigned long long)base,
				(unsigned long long)len);
	if (!ops)
		return verr_set(err, EINVAL, "%s: %s: no handlers", bus->name, name);
	last = base + (len - 1);

	pthread_rwlock_wrlock(&bus->lock);
	pos = bus_upper_bound(bus, base);
	rc = bus_check_overlap(bus, pos, base, last, name, err);
	if (rc == 0)
		rc = bus_grow(bus, err);
	if (rc == 0) {
		memmove(&bus->regions[pos + 1], &bus->regions[pos],
			(bus->count - pos) * sizeof(bus->regions[0]));
		bus->regions[pos] = (struct bus_region){ base, len, name, ops, opaque };
		bus->count++;
	}
	pthread_rwlock_unlock(&bus->lock);
	return rc;
}

int bus_unregister(struct bus *bus, uint64_t base, void *opaque)
{
	size_t pos;
	int rc = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	pos = bus_upper_bound(bus, base);
	if (pos > 0 && bus->regions[pos - 1].base == base &&
	    bus->regions[pos - 1].opaque == opaque) {
		pos--;
		memmove(&bus->regions[pos], &bus->regions[pos + 1],
			(bus->count - pos - 1) * sizeof(bus->regions[0]));
		bus->count--;
		rc = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return rc;
}

static bool bus_len_ok(unsigned len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

/* Copy out the region wholly containing [addr, addr + len). */
static bool bus_find(struct bus *bus, uint64_t addr, unsigned len, struct bus_region *out)
{
	bool found = false;
	size_t pos;

	if (!bus_len_ok(len) || addr + (len - 1) < addr)
		return false;
	pthread_rwlock_rdlock(&bus->lock);
	pos = bus_upper_bound(bus, addr);
	if (pos > 0) {
		const struct bus_region *r = &bus->regions[pos - 1];
		if (addr + (len - 1) <= region_last(r)) {
			*out = *r;
			found = true;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return found;
}

bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned len)
{
	struct bus_region r;

	if (len > 0)
		memset(data, 0xff, len);
	if (!bus_find(bus, addr, len, &r))
		return false;
	/* A write-only device is still claimed; it reads as all-ones. */
	if (r.ops->read)
		r.ops->read(r.opaque, addr - r.base, data, len);
	return true;
}

bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned len)
{
	struct bus_region r;

	if (!bus_find(bus, addr, len, &r))
		return false;
	if (r.ops->write)
		r.ops->write(r.opaque, addr - r.base, data, len);
	return true;
}
