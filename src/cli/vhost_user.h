/* SPDX-License-Identifier: Apache-2.0 */
#ifndef VIREO_CLI_VHOST_USER_H
#define VIREO_CLI_VHOST_USER_H

/* `vireo vhost-user blk|net ...`: serve one virtio device to QEMU. */
int cmd_vhost_user(int argc, char **argv);

#endif
