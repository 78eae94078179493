/* SPDX-License-Identifier: Apache-2.0 */
/* Turning a definition into a `vireo run` process and its console logger. */
#ifndef VIREO_DAEMON_LAUNCH_H
#define VIREO_DAEMON_LAUNCH_H

#include <limits.h>
#include <sys/types.h>

#include "core/err.h"
#include "daemon/defn.h"

#define LAUNCH_MAX_ARGS (16 + 2 * (DEFN_MAX_DISKS + DEFN_MAX_NETS))

struct daemon;

/* Everything the forked children need, built before fork: between fork and
 * exec a child of a threaded process may only make async-signal-safe calls. */
struct launch {
	char *argv[LAUNCH_MAX_ARGS + 1];
	size_t argc;
	char api_sock[108];
	char log[PATH_MAX];
	char log_old[PATH_MAX];
	unsigned long log_max;
};

int launch_prepare(struct launch *l, const struct daemon *d, const struct defn *def,
		   struct verr *err);
/* Forks the logger and the VM (each in a session of its own); *pid is the VM's. */
int launch_spawn(struct launch *l, pid_t *pid, struct verr *err);
void launch_free(struct launch *l);

#endif
