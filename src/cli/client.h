/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client verbs of the control API (src/api): each talks HTTP to a running
 * `vireo run --api-socket PATH` (or any Firecracker-compatible server).
 * Exit status: 0 done; 1 the server refused (its fault_message is printed);
 * 2 bad command line; 3 the socket could not be reached.
 */
#ifndef VIREO_CLI_CLIENT_H
#define VIREO_CLI_CLIENT_H

enum client_exit {
	CLIENT_EXIT_OK = 0,
	CLIENT_EXIT_REFUSED = 1,
	CLIENT_EXIT_USAGE = 2,
	CLIENT_EXIT_UNREACHABLE = 3,
};

int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_restore(int argc, char **argv);

#endif
