/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intel MultiProcessor Specification 1.4 tables, for guests (and older
 * kernels) that find CPUs and interrupt routing without ACPI.
 */
#ifndef VIREO_ARCH_X86_MPTABLE_H
#define VIREO_ARCH_X86_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct mptable_config { unsigned ncpus; uint32_t lapic_addr; uint32_t ioapic_addr; uint8_t ioapic_id; };

/* The most vCPUs 8-bit APIC IDs can name (0xff is broadcast). */
#define MPTABLE_MAX_CPUS 255

/* Floating pointer + configuration table in buf = guest memory [gpa, gpa+len) (vireo passes 0xF0000, 64 KiB).
 * The floating pointer sits at gpa (which must be 16-byte aligned), the
 * configuration table right after it. -ENOSPC with a message if len is too
 * small, -EINVAL for a bad config (0 CPUs, too many). */
int mptable_build(void *buf, uint64_t gpa, size_t len, const struct mptable_config *cfg, struct verr *err);

#endif
