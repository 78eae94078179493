/* SPDX-License-Identifier: Apache-2.0 */
#ifndef VIREO_CLI_CLI_H
#define VIREO_CLI_CLI_H

/*
 * Exit codes of `vireo run` (documented in docs/vireo.1). vireo's own codes
 * are even; odd codes belong to the guest: with --debug-exit a write of V to
 * port 0x501 ends vireo with (V << 1) | 1, as QEMU's isa-debug-exit does.
 */
enum vireo_exit {
	VIREO_EXIT_OK = 0,           /* guest powered off, or reset under --no-reboot */
	VIREO_EXIT_CONFIG = 2,       /* bad command line or configuration */
	VIREO_EXIT_TRIPLE_FAULT = 4, /* guest triple fault / KVM_EXIT_SHUTDOWN */
	VIREO_EXIT_KVM_ERROR = 6,    /* KVM internal or emulation error, failed entry */
	VIREO_EXIT_HOST_ERROR = 8,   /* host-side failure (I/O, out of memory, ...) */
	VIREO_EXIT_USER_QUIT = 10,   /* the user quit with the escape sequence */
};

int cmd_run(int argc, char **argv);

#endif
