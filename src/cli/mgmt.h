/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The management verbs: `vireo daemon` and `vireo vm VERB`, which talks to
 * it over RUN_DIR/vireod.sock (--connect PATH or VIREO_CONNECT). Client exit
 * status: 0 done; 1 the daemon refused (its message is printed); 2 bad
 * command line; 3 the daemon could not be reached.
 */
#ifndef VIREO_CLI_MGMT_H
#define VIREO_CLI_MGMT_H

int cmd_daemon(int argc, char **argv);
int cmd_vm(int argc, char **argv);

#endif
