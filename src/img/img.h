/* SPDX-License-Identifier: Apache-2.0 */
#ifndef VIREO_IMG_IMG_H
#define VIREO_IMG_IMG_H

/* `vireo img ...`: argv[0] is "img". Returns the process exit code. */
int cmd_img(int argc, char **argv);

#endif
