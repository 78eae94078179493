/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo img`: verb dispatch, help, and helpers the verbs share. */
#include "img/img.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/size.h"
#include "img/img_priv.h"

struct verb {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
};

static const struct verb verbs[] = {
	{ "create", img_create, "create [-f fmt] [-o options] [-b backing [-F fmt]] file [size]" },
	{ "info", img_info, "info [-f fmt] [--output=human|json] [--backing-chain] file" },
	{ "convert", img_convert, "convert [-f fmt] [-O fmt] [-c] [-o options] [-p] [-n] "
	  "[-B backing] [-W] [-t cache] [-T src_cache] input output" },
	{ "check", img_check, "check [-f fmt] [-r leaks|all] [--output=human|json] file" },
	{ "snapshot", img_snapshot, "snapshot [-l | -c name | -a name | -d name] file" },
	{ "resize", img_resize, "resize [-f fmt] [--shrink] file [+|-]size" },
	{ "commit", img_commit, "commit [-f fmt] [-t cache] [-d] file" },
	{ "rebase", img_rebase, "rebase [-f fmt] [-u] -b backing [-F backing_fmt] file" },
	{ "map", img_map, "map [-f fmt] [--output=human|json] file" },
	{ "compare", img_compare, "compare [-f fmt] [-F fmt] [-s] file1 file2" },
	{ "measure", img_measure, "measure [-O fmt] [-o options] (--size N | [-f fmt] file)" },
	{ "bench", img_bench, "bench [-c count] [-d depth] [-f fmt] [-w] [-s size] [-S step] "
	  "[-t cache] [-o offset] [--pattern=N] [--flush-interval=N] file" },
	{ "amend", img_amend, "amend [-f fmt] -o options file" },
};
#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: vireo img <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < N_VERBS; i++)
		fprintf(out, "  %s\n", verbs[i].usage);
	fprintf(out, "\nformats: raw, qcow2, vmdk. Sizes take K, M, G, T suffixes.\n"
		     "create options (-o): cluster_size, backing_file, backing_fmt, "
		     "compression_type, preallocation, lazy_refcounts, compat, refcount_bits, "
		     "subformat\n'vireo img <command> --help' shows one command.\n");
}

int cmd_img(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < N_VERBS; i++)
		if (!strcmp(verbs[i].name, argv[1]))
			return verbs[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "vireo img: unknown command '%s' (see 'vireo img --help')\n", argv[1]);
	return 1;
}

bool img_want_help(int argc, char **argv, const char *verb)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			for (size_t k = 0; k < N_VERBS; k++)
				if (!strcmp(verbs[k].name, verb))
					printf("usage: vireo img %s\n", verbs[k].usage);
			return true;
		}
	}
	return false;
}

int img_fail(const struct verr *err)
{
	fprintf(stderr, "vireo img: %s\n", err->msg[0] ? err->msg : "failed");
	return 1;
}

int img_usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vireo img %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'vireo img %s --help')\n", verb);
	return 1;
}

int img_parse_cache(const char *s, enum block_cache *c, struct verr *err)
{
	if (!s || !strcmp(s, "writeback"))
		*c = BLOCK_CACHE_WRITEBACK;
	else if (!strcmp(s, "none") || !strcmp(s, "directsync"))
		*c = BLOCK_CACHE_NONE;
	else if (!strcmp(s, "unsafe"))
		*c = BLOCK_CACHE_UNSAFE;
	else
		return verr_set(err, EINVAL, "unknown cache mode '%s' (none, writeback, unsafe)", s);
	return 0;
}

int img_open(const char *path, const char *fmt, bool rw, const char *cache, bool no_backing,
	     struct block_dev **out, struct verr *err)
{
	struct block_open_opts o = { .format = fmt, .read_write = rw, .no_backing = no_backing };
	int r = img_parse_cache(cache, &o.cache, err);

	return r ? r : block_open(path, &o, out, err);
}

static int parse_bool(const char *k, const char *v, bool *out, struct verr *err)
{
	if (!strcmp(v, "on") || !strcmp(v, "true"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false"))
		*out = false;
	else
		return verr_set(err, EINVAL, "option %s: expected on or off, not '%s'", k, v);
	return 0;
}

static int set_opt(char *k, char *v, struct block_create_opts *o, struct verr *err)
{
	uint64_t n;

	if (!strcmp(k, "cluster_size")) {
		if (size_parse(v, 0, &n, err) < 0)
			return -EINVAL;
		o->cluster_size = (uint32_t)n;
	} else if (!strcmp(k, "backing_file")) {
		o->backing_file = v;
	} else if (!strcmp(k, "backing_fmt")) {
		o->backing_format = v;
	} else if (!strcmp(k, "compression_type")) {
		o->compression_type = v;
	} else if (!strcmp(k, "preallocation")) {
		o->preallocation = v;
	} else if (!strcmp(k, "lazy_refcounts")) {
		return parse_bool(k, v, &o->lazy_refcounts, err);
	} else if (!strcmp(k, "extended_l2")) {
		return parse_bool(k, v, &o->extended_l2, err);
	} else if (!strcmp(k, "compat")) {
		if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
			o->compat = 2;
		else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
			o->compat = 3;
		else
			return verr_set(err, EINVAL, "option compat: expected 0.10 or 1.1, not '%s'", v);
	} else if (!strcmp(k, "refcount_bits")) {
		o->refcount_bits = atoi(v);
	} else if (!strcmp(k, "subformat")) {
		o->subformat = v;
	} else if (!strcmp(k, "size")) {
		if (size_parse(v, 0, &o->size, err) < 0)
			return -EINVAL;
	} else {
		return verr_set(err, EINVAL, "unknown option '%s'", k);
	}
	return 0;
}

int img_parse_opts(char *s, struct block_create_opts *o, char *keys, size_t keylen,
		   struct verr *err)
{
	/* Tokenised in place: values point into the caller's argv string. */
	char *copy = s, *save = NULL;

	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int r;
		if (!eq)
			return verr_set(err, EINVAL, "option '%s' needs a value (key=value)", tok);
		*eq = 0;
		r = set_opt(tok, eq + 1, o, err);
		if (r)
			return r;
		if (keys && strlen(keys) + strlen(tok) + 2 < keylen) {
			strcat(keys, tok);
			strcat(keys, ",");
		}
	}
	return 0;
}

uint64_t img_actual_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}
