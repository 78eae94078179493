/* SPDX-License-Identifier: Apache-2.0 */
#include "img/img.h"

#include <stdio.h>

/* Placeholder until the block layer lands: says so plainly and fails. */
int cmd_img(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "vireo img: not implemented yet\n");
	return 1;
}
