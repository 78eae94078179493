/* SPDX-License-Identifier: Apache-2.0 */
/* PCI configuration mechanism #1 (ports 0xcf8/0xcfc), bus 0, from ring 3. */
#ifndef RT_PCI_H
#define RT_PCI_H
#include "rt.h"

#define PCI_CAP_MSIX 0x11
#define PCI_CAP_VENDOR 0x09

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
};

uint32_t pci_read32(const struct pci_dev *d, uint8_t off);
uint16_t pci_read16(const struct pci_dev *d, uint8_t off);
uint8_t pci_read8(const struct pci_dev *d, uint8_t off);
void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v);
void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v);
void pci_write8(const struct pci_dev *d, uint8_t off, uint8_t v);

/* The nth (0-based) function on bus 0 with this vendor/device; 0 or -1. */
int pci_find(uint16_t vendor, uint16_t device, int nth, struct pci_dev *out);
/* Offset of the first capability with this ID at or after `after`'s
 * successor (after = 0: from the list head); 0 when there is none. */
uint8_t pci_cap_next(const struct pci_dev *d, uint8_t id, uint8_t after);
static inline uint8_t pci_cap_find(const struct pci_dev *d, uint8_t id)
{
	return pci_cap_next(d, id, 0);
}
/* Memory BAR `bar`: its address (assigning one in the 32-bit hole when the
 * firmware left it at 0) and size; 0 if the BAR is I/O, absent or bad. */
uint64_t pci_bar(const struct pci_dev *d, int bar, uint64_t *size);
/* Memory decoding and bus mastering (DMA, MSI) on, INTx off. */
void pci_enable(const struct pci_dev *d);
#endif
