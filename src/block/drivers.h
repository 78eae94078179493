/* SPDX-License-Identifier: Apache-2.0 */
/* The format drivers the generic layer knows; only block.c looks here. */
#ifndef VIREO_BLOCK_DRIVERS_H
#define VIREO_BLOCK_DRIVERS_H

#include "block/block.h"

extern const struct block_driver block_raw_driver;
extern const struct block_driver block_qcow2_driver;
extern const struct block_driver block_vmdk_driver;

#endif
