/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers of the `vireo img` verbs. Each verb returns an exit code. */
#ifndef VIREO_IMG_PRIV_H
#define VIREO_IMG_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"

int img_create(int argc, char **argv);
int img_info(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_check(int argc, char **argv);
int img_snapshot(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_map(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_measure(int argc, char **argv);
int img_bench(int argc, char **argv);
int img_amend(int argc, char **argv);

/* Print "vireo img: <msg>" to stderr and return 1. */
int img_fail(const struct verr *err);
int img_usage_error(const char *verb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool img_want_help(int argc, char **argv, const char *verb);
int img_open(const char *path, const char *fmt, bool rw, const char *cache, bool no_backing,
	     struct block_dev **out, struct verr *err);
int img_parse_cache(const char *s, enum block_cache *c, struct verr *err);
/* Parse "-o k=v,k=v" into o; `keys` collects "key," for each key seen. */
int img_parse_opts(char *s, struct block_create_opts *o, char *keys, size_t keylen,
		   struct verr *err);
uint64_t img_actual_size(const char *path);

#endif
