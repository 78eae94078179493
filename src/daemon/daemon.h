/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vireod: keeps VM definitions in a store and supervises one `vireo run`
 * process per running VM, talking to each only through its API socket.
 */
#ifndef VIREO_DAEMON_DAEMON_H
#define VIREO_DAEMON_DAEMON_H

#include <limits.h>
#include <signal.h>

#include "core/err.h"

struct daemon_opts {
	char state_dir[PATH_MAX - 64];
	char run_dir[PATH_MAX - 64];
	unsigned long console_max;  /* bytes of console.log before rotation */
};

/*
 * Run the daemon until SIGINT or SIGTERM (which the caller has blocked in
 * every thread, with SIGCHLD). VMs keep running when it returns. -EBUSY
 * with a message when another daemon holds the state directory.
 */
int daemon_run(const struct daemon_opts *opts, struct verr *err);

#endif
