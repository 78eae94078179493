/* SPDX-License-Identifier: Apache-2.0 */
/* The x86 machine of docs/platform.md: RAM, legacy devices, firmware tables
 * and the kernel, put together for one VM. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/mptable.h"
#include "core/log.h"

enum { DEV_COM1 = 1, DEV_RTC = 2, DEV_I8042 = 4, DEV_PCI = 8, DEV_PM = 16, DEV_DEBUG_EXIT = 32 };

static int map_slots(struct vm *vm, struct verr *err)
{
	unsigned flags = vm->cfg.track_dirty_pages ? ACCEL_MEM_DIRTY_LOG : 0;
	const struct x86_mem_layout *l = &vm->layout;
	int rc = accel_map_memory(vm->accel, 0, 0, l->lowmem, vm->mem.regions[0].hva, flags, err);

	if (rc < 0 || !l->highmem)
		return rc;
	return accel_map_memory(vm->accel, 1, X86_4G, l->highmem, vm->mem.regions[1].hva, flags, err);
}

static void *map_slots_thread(void *arg)
{
	struct vm *vm = arg;

	vm->mem_rc = map_slots(vm, &vm->mem_err);
	return NULL;
}

int vm_setup_memory(struct vm *vm, const char *mem_file, struct verr *err)
{
	struct x86_mem_layout *l = &vm->layout;
	int rc;

	*l = x86_mem_layout_for(vm->cfg.mem_size);
	rc = mem_file ? guest_mem_open_file(&vm->mem, mem_file, l->total, err)
		      : guest_mem_create(&vm->mem, l->total, err);
	if (rc < 0)
		return rc;
	if ((rc = guest_mem_add_region(&vm->mem, 0, 0, l->lowmem, err)) < 0)
		return rc;
	if (l->highmem && (rc = guest_mem_add_region(&vm->mem, X86_4G, l->lowmem, l->highmem, err)) < 0)
		return rc;
	if (mem_file && pthread_create(&vm->mem_thread, NULL, map_slots_thread, vm) == 0) {
		vm->mem_pending = true;
		return 0;
	}
	return map_slots(vm, err);
}

int vm_memory_ready(struct vm *vm, struct verr *err)
{
	if (vm->mem_pending) {
		pthread_join(vm->mem_thread, NULL);
		vm->mem_pending = false;
		if (vm->mem_rc < 0) {
			if (err)
				*err = vm->mem_err;
			return vm->mem_rc;
		}
	}
	return 0;
}

static void irq_set(void *ctx, unsigned gsi, int level)
{
	struct vm *vm = ctx;
	if (accel_irq_line(vm->accel, gsi, level) < 0)
		log_warn("irq", "cannot set GSI %u to %d", gsi, level);
}

static void console_out(void *ctx, const uint8_t *buf, size_t len)
{
	struct vm *vm = ctx;

	while (len > 0) {
		ssize_t n = write(vm->cfg.console_out_fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* console gone: the guest keeps running */
		buf += n;
		len -= (size_t)n;
	}
}

static void platform_reset(void *ctx)
{
	vm_request_stop(ctx, VM_STOP_RESET, 0);
}

static void platform_poweroff(void *ctx)
{
	vm_request_stop(ctx, VM_STOP_POWEROFF, 0);
}

static void debug_exit_to_stop(void *ctx, int code)
{
	vm_request_stop(ctx, VM_STOP_DEBUG_EXIT, code);
}

static int setup_buses(struct vm *vm, struct verr *err)
{
	int rc;

	if ((rc = bus_init(&vm->pio, "pio", err)) < 0)
		return rc;
	if ((rc = bus_init(&vm->mmio, "mmio", err)) < 0) {
		bus_destroy(&vm->pio);
		return rc;
	}
	vm->buses_ready = true;
	vm->platform = (struct platform_ops){ platform_reset, platform_poweroff, vm };
	return 0;
}

static int setup_serial_and_rtc(struct vm *vm, struct verr *err)
{
	struct irq_line com1_irq = { irq_set, vm, X86_GSI_COM1 };
	struct irq_line rtc_irq = { irq_set, vm, X86_GSI_RTC };
	int rc;

	if ((rc = uart_init(&vm->com1, "com1", &com1_irq, console_out, vm, err)) < 0)
		return rc;
	vm->devices_ready |= DEV_COM1;
	if ((rc = uart_attach(&vm->com1, &vm->pio, X86_PORT_COM1, err)) < 0)
		return rc;
	if ((rc = rtc_init(&vm->rtc, &rtc_irq, NULL, NULL, err)) < 0)
		return rc;
	vm->devices_ready |= DEV_RTC;
	return rtc_attach(&vm->rtc, &vm->pio, err);
}

static int setup_platform_devices(struct vm *vm, struct verr *err)
{
	struct irq_line kbd_irq = { irq_set, vm, X86_GSI_I8042_KBD };
	struct irq_line aux_irq = { irq_set, vm, 12 };
	struct irq_line sci = { irq_set, vm, X86_GSI_SCI };
	int rc;

	if ((rc = i8042_init(&vm->i8042, &kbd_irq, &aux_irq, &vm->platform, err)) < 0)
		return rc;
	vm->devices_ready |= DEV_I8042;
	if ((rc = i8042_attach(&vm->i8042, &vm->pio, err)) < 0)
		return rc;
	if ((rc = pci_host_init(&vm->pci, &vm->platform, err)) < 0)
		return rc;
	vm->devices_ready |= DEV_PCI;
	if ((rc = pci_host_attach(&vm->pci, &vm->pio, err)) < 0)
		return rc;
	if ((rc = pci_host_attach_ecam(&vm->pci, &vm->mmio, X86_PCI_ECAM_BASE,
				       X86_PCI_ECAM_BUSES, err)) < 0)
		return rc;
	if ((rc = acpi_pm_init(&vm->pm, &sci, &vm->platform, err)) < 0)
		return rc;
	vm->devices_ready |= DEV_PM;
	if ((rc = acpi_pm_attach(&vm->pm, &vm->pio, err)) < 0)
		return rc;
	if (!vm->cfg.debug_exit)
		return 0;
	if ((rc = debug_exit_init(&vm->debug_exit, debug_exit_to_stop, vm, err)) < 0)
		return rc;
	vm->devices_ready |= DEV_DEBUG_EXIT;
	return debug_exit_attach(&vm->debug_exit, &vm->pio, err);
}

int vm_setup_devices(struct vm *vm, struct verr *err)
{
	int rc = setup_buses(vm, err);

	if (rc == 0)
		rc = setup_serial_and_rtc(vm, err);
	if (rc == 0)
		rc = setup_platform_devices(vm, err);
	return rc;
}

static int setup_firmware_tables(struct vm *vm, uint64_t *rsdp, struct verr *err)
{
	struct acpi_config acfg = {
		.ncpus = vm->nvcpus,
		.lapic_addr = X86_LAPIC_ADDR,
		.ioapic_addr = X86_IOAPIC_ADDR,
		.ioapic_id = 0,
		.pm1a_evt_port = X86_PORT_PM1A_EVT,
		.pm1a_cnt_port = X86_PORT_PM1A_CNT,
		.pm_tmr_port = X86_PORT_PM_TMR,
		.sci_irq = X86_GSI_SCI,
		.reset_port = X86_PORT_PCI_CONF + 1,
		.reset_value = 0x06,
		.s5_slp_typ = X86_S5_SLP_TYP,
		.pci_ecam_base = X86_PCI_ECAM_BASE,
		.pci_ecam_end_bus = (uint8_t)(X86_PCI_ECAM_BUSES - 1),
		.pci_mmio32_base = (uint32_t)X86_LOWMEM_MAX,
		.pci_mmio32_size = (uint32_t)(X86_PCI_ECAM_BASE - X86_LOWMEM_MAX),
	};
	struct mptable_config mcfg = {
		.ncpus = vm->nvcpus,
		.lapic_addr = X86_LAPIC_ADDR,
		.ioapic_addr = X86_IOAPIC_ADDR,
		.ioapic_id = 0,
	};
	void *acpi = guest_mem_ptr(&vm->mem, X86_ACPI_BASE, X86_ACPI_SIZE);
	void *mp = guest_mem_ptr(&vm->mem, X86_MPTABLE_BASE, X86_MPTABLE_SIZE);
	int rc;

	if (!acpi || !mp)
		return verr_set(err, ENOMEM, "guest RAM too small for firmware tables");
	rc = acpi_build(acpi, X86_ACPI_BASE, X86_ACPI_SIZE, &acfg, rsdp, err);
	if (rc < 0)
		return rc;
	return mptable_build(mp, X86_MPTABLE_BASE, X86_MPTABLE_SIZE, &mcfg, err);
}

struct file_reader {
	int fd;
};

static int file_read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct file_reader *f = ctx;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(f->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (int)done;
}

static int open_reader(const char *path, const char *what, struct file_reader *f,
		       struct boot_reader *r, struct verr *err)
{
	struct stat st;

	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return verr_set(err, errno, "cannot open %s %s: %s", what, path, strerror(errno));
	if (fstat(f->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(f->fd);
		f->fd = -1;
		return verr_set(err, EINVAL, "%s %s is not a regular file", what, path);
	}
	*r = (struct boot_reader){ file_read_at, f, (uint64_t)st.st_size, path };
	return 0;
}

static int load_kernel(struct vm *vm, uint64_t rsdp, struct boot_result *boot, struct verr *err)
{
	struct file_reader kf = { -1 }, inf = { -1 };
	struct boot_reader kr, ir;
	struct boot_params_in in = { &vm->layout, vm->cfg.cmdline, NULL, rsdp };
	int rc;

	if ((rc = open_reader(vm->cfg.kernel, "kernel", &kf, &kr, err)) < 0)
		return rc;
	if (vm->cfg.initrd) {
		if ((rc = open_reader(vm->cfg.initrd, "initrd", &inf, &ir, err)) < 0) {
			close(kf.fd);
			return rc;
		}
		in.initrd = &ir;
	}
	rc = x86_boot_load(&vm->mem, &kr, &in, boot, err);
	close(kf.fd);
	if (inf.fd >= 0)
		close(inf.fd);
	return rc;
}

static int setup_vcpus(struct vm *vm, const struct boot_result *boot, struct verr *err)
{
	struct x86_cpuid_entry *sup = NULL;
	unsigned nsup = 0;
	int rc = accel_supported_cpuid(vm->accel, &sup, &nsup, err);

	for (unsigned i = 0; rc == 0 && i < vm->nvcpus; i++)
		rc = vcpu_setup(&vm->vcpus[i], sup, nsup, i == 0 ? boot : NULL, err);
	free(sup);
	return rc;
}

int vm_check_boot_files(const struct vm_config *cfg, struct verr *err)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct boot_result boot;
	int rc;

	if (!vm)
		return verr_set(err, ENOMEM, "out of memory");
	vm->cfg = *cfg;
	vm->mem.fd = -1;
	vm->layout = x86_mem_layout_for(cfg->mem_size);
	rc = guest_mem_create(&vm->mem, vm->layout.total, err);
	if (rc == 0)
		rc = guest_mem_add_region(&vm->mem, 0, 0, vm->layout.lowmem, err);
	if (rc == 0 && vm->layout.highmem)
		rc = guest_mem_add_region(&vm->mem, X86_4G, vm->layout.lowmem, vm->layout.highmem, err);
	if (rc == 0)
		rc = load_kernel(vm, 0, &boot, err);
	guest_mem_destroy(&vm->mem);
	free(vm);
	return rc;
}

int vm_machine_setup(struct vm *vm, struct verr *err)
{
	struct boot_result boot;
	uint64_t rsdp = 0;
	int rc;

	if ((rc = vm_setup_memory(vm, NULL, err)) < 0)
		return rc;
	if ((rc = vm_setup_devices(vm, err)) < 0)
		return rc;
	if ((rc = vm_setup_virtio(vm, err)) < 0)
		return rc;
	if ((rc = setup_firmware_tables(vm, &rsdp, err)) < 0)
		return rc;
	if ((rc = load_kernel(vm, rsdp, &boot, err)) < 0)
		return rc;
	log_info("vm", "loaded %s (%s), entry 0x%llx", vm->cfg.kernel,
		 boot.kind == BOOT_PVH ? "PVH ELF" : "bzImage, 64-bit boot protocol",
		 (unsigned long long)boot.entry);
	return setup_vcpus(vm, &boot, err);
}

void vm_machine_teardown(struct vm *vm)
{
	vm_teardown_virtio(vm);
	if (vm->devices_ready & DEV_DEBUG_EXIT)
		debug_exit_destroy(&vm->debug_exit);
	if (vm->devices_ready & DEV_PM)
		acpi_pm_destroy(&vm->pm);
	if (vm->devices_ready & DEV_PCI)
		pci_host_destroy(&vm->pci);
	if (vm->devices_ready & DEV_I8042)
		i8042_destroy(&vm->i8042);
	if (vm->devices_ready & DEV_RTC)
		rtc_destroy(&vm->rtc);
	if (vm->devices_ready & DEV_COM1)
		uart_destroy(&vm->com1);
	vm->devices_ready = 0;
	if (vm->buses_ready) {
		bus_destroy(&vm->pio);
		bus_destroy(&vm->mmio);
		vm->buses_ready = false;
	}
}
