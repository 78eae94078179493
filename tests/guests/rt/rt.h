/* SPDX-License-Identifier: Apache-2.0 */
/* The test-guest runtime: everything a guest's ring-3 main can call. */
#ifndef RT_H
#define RT_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "seg.h"

#define NORETURN __attribute__((noreturn))
#define PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Port and MMIO access: both work from ring 3 (TSS I/O bitmap, U/S pages). */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
/* Ring 3 always runs with interrupts on and must not use CLI/STI: the nested
 * KVM of our hosts enters ring 3 with IOPL 0 (see entry.S).  Mask sources at
 * the device (LAPIC LVT) instead. */

/* Library */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
uint64_t parse_u64(const char *s, const char **end);
uint32_t fnv1a32(const void *p, uint64_t n);

/* COM1, polled */
void serial_putc(char c);
void serial_puts(const char *s);
int serial_getc(uint64_t timeout_us);	/* -1 on timeout */
void vprintf(const char *fmt, va_list ap);
void printf(const char *fmt, ...) PRINTF(1, 2);

/* Boot information, whatever protocol delivered it */
#define MEM_MAX 128
struct memrange {
	uint64_t addr, size;
	uint32_t type;
};
struct bootinfo {
	int kind;			/* BOOT_LINUX64, BOOT_LINUX32, BOOT_PVH */
	const char *proto;		/* "linux64", "linux32", "pvh" */
	uint64_t raw;			/* boot_params or hvm_start_info */
	const char *cmdline;		/* never NULL */
	uint32_t cmdline_size;		/* loader's limit (Linux header), 0 if none */
	struct memrange mem[MEM_MAX];
	int nmem;
	uint64_t initrd_addr, initrd_size;
	uint64_t rsdp;
};
extern struct bootinfo bootinfo;
void bootinfo_init(int kind, uint64_t raw);
uint64_t bootinfo_ram(void);
/* Value of key=value on the command line, copied into buf; NULL if absent. */
const char *cmdline_get(const char *key, char *buf, size_t n);
uint64_t cmdline_u64(const char *key, uint64_t dflt);
bool cmdline_has(const char *key);

/* ACPI */
struct gas {
	uint8_t space, width, offset, access;
	uint64_t addr;
};
struct acpi {
	bool ok;
	uint64_t rsdp, fadt, madt, dsdt;
	int bad_checksums;
	uint32_t pm1a_cnt, pm_tmr;
	bool hw_reduced;
	struct gas sleep_ctl;
	int s5_typ;			/* -1 when the DSDT has no _S5 */
	bool reset_sup;
	struct gas reset_reg;
	uint8_t reset_val;
	uint32_t lapic_addr;
	int ncpus;
	uint8_t apic_ids[256];
	int ioapics, overrides;
	uint8_t ioapic_id;		/* the first IOAPIC's */
	uint32_t ioapic_addr, ioapic_gsi_base;
	uint8_t isa0_overridden;	/* an override for ISA IRQ 0 exists */
	uint32_t isa0_gsi;
	uint16_t sci_int;
	uint32_t pm1a_evt;
	uint64_t mcfg;			/* MCFG table, 0 if none */
	int ecam_entries;		/* its allocation entries */
	uint64_t ecam_base;		/* the first entry for segment 0 */
	uint8_t ecam_bus_start, ecam_bus_end;
};
extern struct acpi acpi;
int acpi_init(void);			/* 0, or -1 with acpi.ok false */
void acpi_poweroff(void);		/* returns if it did not work */
void gas_write(const struct gas *g, uint64_t v);
struct mptable {
	bool ok;
	int bad_checksums;
	bool count_mismatch;		/* header entry count vs. entries */
	int ncpus;
	int bsp_apic_id;
	uint8_t apic_ids[256];
	int ioapics, isa_buses, irq_entries;
	uint32_t ioapic_addr;
};
int mp_scan(struct mptable *mp);	/* 0, or -1 if no floating pointer */

/* Local APIC (xAPIC MMIO) */
#define LAPIC_BASE 0xfee00000ull
static inline uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_BASE + reg); }
static inline void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }
static inline uint32_t lapic_id(void) { return lapic_read(0x20) >> 24; }
void lapic_eoi(void);

/* CMOS RTC */
struct rtc_time {
	int year, mon, day, hour, min, sec;
	bool bcd, h24;
};
uint8_t cmos_read(uint8_t reg);
void rtc_read(struct rtc_time *t);
int64_t rtc_epoch(const struct rtc_time *t);

/* Time: the TSC, calibrated against the ACPI PM timer when there is one. */
uint64_t tsc_hz(void);
void udelay(uint64_t us);
uint64_t tsc_deadline(uint64_t us);

/* Rings and interrupts */
uint64_t ring0(uint64_t (*fn)(uint64_t), uint64_t arg);
void idt_set(int vec, void (*handler)(void));
void idt_set_dpl(int vec, void (*handler)(void), unsigned dpl);
extern void ring0_entry(void);
extern volatile uint64_t rt_ticks;
extern volatile uint8_t ap_seen[256];
extern const char ap_tramp_start[], ap_tramp_end[];
extern void timer_isr(void), spurious_isr(void);
NORETURN void halt_forever(void);
NORETURN void triple_fault(void);

/* Reporting */
extern const char guest_name[];
void guest_main(void);
NORETURN void guest_pass(void);
NORETURN void guest_fail(const char *fmt, ...) PRINTF(1, 2);
#define CHECK(cond, ...) do { if (!(cond)) guest_fail(__VA_ARGS__); } while (0)

#endif
