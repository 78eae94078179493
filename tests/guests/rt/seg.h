/* SPDX-License-Identifier: Apache-2.0 */
/* GDT selectors shared by the assembly entries and the C runtime.  Kernel
 * code/data then user data/code: the SYSCALL/SYSRET layout, kept in case a
 * host runs them properly (ours do not, see entry.S). */
#ifndef RT_SEG_H
#define RT_SEG_H
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x18
#define SEL_UCODE 0x20
#define SEL_TSS 0x28
#define SEL_CODE32 0x38
#define AP_TRAMPOLINE 0x8000
#define TIMER_VECTOR 0x40
#define BOOT_LINUX64 0
#define BOOT_LINUX32 1
#define BOOT_PVH 2
#endif
