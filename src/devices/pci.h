/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PCI host: configuration mechanism #1 at ports 0xcf8-0xcff, the reset
 * control register at 0xcf9, the PCI Express enhanced configuration access
 * window (ECAM, memory-mapped: 4 KiB per function at
 * base + (bus << 20 | device << 15 | function << 12)), and a table of the
 * 32 slots of bus 0 (function 0 only). Slot 0 is the host bridge. Both
 * mechanisms reach the same config space.
 *
 * Device pattern (shared by src/devices): pci_host_init() fills a struct the
 * VM owns, pci_host_attach() registers it on the port bus,
 * pci_host_destroy() frees. A PCI device is a struct pci_dev its owner
 * embeds: pci_dev_init() gives it an identity and write masks,
 * pci_dev_set_bar() declares BARs, pci_host_add() plugs it into a slot.
 *
 * Config writes go through per-byte masks: bits outside wmask are read-only
 * (BAR sizing falls out of this: writing all-ones reads back the size mask),
 * bits in w1cmask are write-one-to-clear (status register errors).
 */
#ifndef VIREO_DEVICES_PCI_H
#define VIREO_DEVICES_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "devices/bus.h"
#include "devices/irq.h"

#define PCI_CONF1_BASE 0xcf8
#define PCI_CONF1_PORTS 8
#define PCI_SLOTS 32
#define PCI_SLOT_ANY (-1)
#define PCI_CFG_SIZE 256
#define PCI_CFG_EXP_SIZE 4096
#define PCI_NUM_BARS 6
#define PCI_ECAM_BUS_SHIFT 20
#define PCI_ECAM_MAX_BUSES 256

/* Config-space offsets used by device code. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_CLASS_REVISION 0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_STATUS_CAP_LIST 0x0010

/* BAR flags, equal to the BAR's low bits. */
#define PCI_BAR_IO 0x1
#define PCI_BAR_MEM64 0x4
#define PCI_BAR_PREFETCH 0x8

struct pci_dev;
/* Hooks run with the host lock held and must not call back into the host.
 * cfg_read may replace *val (registers computed on read); cfg_write runs
 * after the masked write landed in config[] (e.g. to move a BAR). */
typedef void (*pci_cfg_read_fn)(struct pci_dev *d, unsigned off, unsigned len, uint32_t *val);
typedef void (*pci_cfg_write_fn)(struct pci_dev *d, unsigned off, unsigned len, uint32_t val);

struct pci_dev {
	const char *name;
	unsigned cfg_size;            /* PCI_CFG_SIZE or PCI_CFG_EXP_SIZE */
	uint8_t config[PCI_CFG_EXP_SIZE];
	uint8_t wmask[PCI_CFG_EXP_SIZE];
	uint8_t w1cmask[PCI_CFG_EXP_SIZE];
	uint64_t bar_size[PCI_NUM_BARS];
	pci_cfg_read_fn cfg_read;
	pci_cfg_write_fn cfg_write;
	void *opaque;                 /* for the hooks */
	int slot;                     /* -1 until plugged */
};

/* Host state for snapshots; plugged devices save their own config. */
struct pci_host_state {
	uint32_t addr;
	uint8_t rcr;
	uint8_t bridge_config[PCI_CFG_SIZE];
};

struct pci_host {
	pthread_mutex_t lock;
	struct platform_ops plat;
	uint32_t addr;                /* CONFIG_ADDRESS at 0xcf8 */
	uint8_t rcr;                  /* reset control register at 0xcf9 */
	struct pci_dev bridge;
	struct pci_dev *slots[PCI_SLOTS];
	uint64_t ecam_size;           /* bytes of the ECAM window; 0 = none */
};

/* class_code is 24 bits: base class, subclass, programming interface. */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor,
		  uint16_t device, uint32_t class_code, bool extended);
/* size is a power of two (>= 4 for I/O, >= 16 for memory); a 64-bit BAR
 * also takes bar + 1. */
int pci_dev_set_bar(struct pci_dev *d, unsigned bar, uint64_t size,
		    unsigned flags, struct verr *err);
/* The address the guest programmed (flag bits masked off); 0 if unset. */
uint64_t pci_dev_bar_addr(const struct pci_dev *d, unsigned bar);
/* pin: 1 = INTA# .. 4 = INTD#, 0 = none. */
void pci_dev_set_irq_pin(struct pci_dev *d, uint8_t pin);

/* Snapshot support: restore only lands in guest-writable bits (wmask), so
 * a damaged snapshot cannot change a device's identity or BAR sizes. len
 * is clamped to the device's config size. Call before the vCPUs run. */
void pci_dev_restore_config(struct pci_dev *d, const uint8_t *cfg, size_t len);

int pci_host_init(struct pci_host *h, const struct platform_ops *plat, struct verr *err);
void pci_host_destroy(struct pci_host *h);
int pci_host_attach(struct pci_host *h, struct bus *pio, struct verr *err);
/* Maps the ECAM window for buses 0..nbuses-1 (1..256, 1 MiB each) at base
 * (1 MiB aligned) on the MMIO bus. Through ECAM, registers 0x100-0xfff of
 * a function with 256 bytes of config space read as 0 (the PCIe "no
 * extended capabilities" header) and ignore writes; absent functions and
 * accesses that cross a dword (or are 8 bytes wide) read as all-ones and
 * are dropped on write. */
int pci_host_attach_ecam(struct pci_host *h, struct bus *mmio, uint64_t base,
			 unsigned nbuses, struct verr *err);
/* Plugs d into slot (1-31, or PCI_SLOT_ANY); returns the slot number. */
int pci_host_add(struct pci_host *h, struct pci_dev *d, int slot, struct verr *err);
void pci_host_remove(struct pci_host *h, struct pci_dev *d);

/* Config access by bus/devfn, as mechanism #1 sees it.
 * Absent functions and out-of-range offsets read as all-ones. */
uint32_t pci_host_cfg_read(struct pci_host *h, uint8_t bus, uint8_t devfn,
			   unsigned off, unsigned len);
void pci_host_cfg_write(struct pci_host *h, uint8_t bus, uint8_t devfn,
			unsigned off, unsigned len, uint32_t val);

void pci_host_save(struct pci_host *h, struct pci_host_state *st);
void pci_host_restore(struct pci_host *h, const struct pci_host_state *st);

extern const struct bus_dev_ops pci_conf1_ops;
extern const struct bus_dev_ops pci_ecam_ops;

/* Little-endian accessors for a device's own config[] / wmask[] arrays. */
static inline void pci_put16(uint8_t *p, unsigned off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static inline void pci_put32(uint8_t *p, unsigned off, uint32_t v)
{
	pci_put16(p, off, (uint16_t)v);
	pci_put16(p, off + 2, (uint16_t)(v >> 16));
}

static inline uint32_t pci_get32(const uint8_t *p, unsigned off)
{
	return p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
	       (uint32_t)p[off + 3] << 24;
}

#endif
