/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_fake_server SOCKET: the real API server over the fake VMM, for the
 * process-level tests (tests/integration/test_api*.py) until `vireo run
 * --api-socket` serves the real one. Prints "ready" once the socket
 * accepts connections; SIGTERM or SIGINT stops it and removes the socket.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "fake_vmm.h"

int main(int argc, char **argv)
{
	struct fake_vmm *f = malloc(sizeof(*f));
	struct api_server *s = NULL;
	struct verr err = { 0 };
	sigset_t set;
	int sig;

	if (argc != 2 || !f) {
		fprintf(stderr, "usage: api_fake_server SOCKET\n");
		return 2;
	}
	fake_vmm_init(f);
	/* Block the stop signals before the server thread starts, so they
	 * reach sigwait below and not a random thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (api_server_start(&s, argv[1], &fake_vmm_ops, f, &err) < 0) {
		fprintf(stderr, "api_fake_server: %s\n", err.msg);
		free(f);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);
	api_server_stop(s);
	free(f);
	return 0;
}
