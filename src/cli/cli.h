/* SPDX-License-Identifier: Apache-2.0 */
#ifndef VIREO_CLI_CLI_H
#define VIREO_CLI_CLI_H

/* Exit codes of `vireo run` (documented in docs/vireo.1). */
enum vireo_exit {
	VIREO_EXIT_OK = 0,           /* guest powered off, or reset under --no-reboot */
	VIREO_EXIT_CONFIG = 2,       /* bad command line or configuration */
	VIREO_EXIT_TRIPLE_FAULT = 3, /* guest triple fault / KVM_EXIT_SHUTDOWN */
	VIREO_EXIT_KVM_ERROR = 4,    /* KVM internal or emulation error, fail entry */
	VIREO_EXIT_HOST_ERROR = 5,   /* host-side failure (I/O, out of memory, ...) */
	VIREO_EXIT_USER_QUIT = 6,    /* the user quit with the escape sequence */
};

int cmd_run(int argc, char **argv);

#endif
