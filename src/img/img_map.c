/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo img map | compare | commit | rebase`: walks over allocation. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/file.h"
#include "img/img_priv.h"

#define CHUNK (1u << 20)

struct map_ent {
	uint64_t start, length, offset;
	int depth;
	bool present, zero, data, has_offset;
	const char *file;
};

static bool mergeable(const struct map_ent *a, const struct map_ent *b)
{
	return a->depth == b->depth && a->present == b->present && a->zero == b->zero &&
	       a->data == b->data && a->has_offset == b->has_offset &&
	       (!a->has_offset || a->offset + a->length == b->offset);
}

static void print_ent(const struct map_ent *e, bool json, bool first)
{
	if (json) {
		printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, "
		       "\"zero\": %s, \"data\": %s", first ? "[" : ",\n",
		       (unsigned long long)e->start, (unsigned long long)e->length, e->depth,
		       e->present ? "true" : "false", e->zero ? "true" : "false",
		       e->data ? "true" : "false");
		if (e->has_offset)
			printf(", \"offset\": %llu", (unsigned long long)e->offset);
		printf("}");
	} else if (e->data && e->has_offset) {
		printf("%#-16llx%#-16llx%#-16llx%s\n", (unsigned long long)e->start,
		       (unsigned long long)e->length, (unsigned long long)e->offset, e->file);
	}
}

static const char *layer_name(struct block_dev *bd, int depth)
{
	while (depth-- > 0 && bd->backing)
		bd = bd->backing;
	return bd->filename;
}

int img_map(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'J' },
		{ 0, 0, 0, 0 },
	};
	const char *fmt = NULL;
	bool json = false, first = true, have = false;
	struct map_ent cur = {0};
	struct verr err = {0};
	struct block_dev *bd;
	int c, r = 0;

	if (img_want_help(argc, argv, "map"))
		return 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:U", lo, NULL)) != -1) {
		if (c == 'f')
			fmt = optarg;
		else if (c == 'J')
			json = !strcmp(optarg, "json");
		else if (c != 'U')
			return img_usage_error("map", "bad option");
	}
	if (argc - optind != 1)
		return img_usage_error("map", "expected one image file");
	if (img_open(argv[optind], fmt, false, NULL, false, &bd, &err))
		return img_fail(&err);
	if (!json)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	for (uint64_t off = 0; off < bd->size && !r;) {
		struct block_status st;
		struct map_ent e;
		r = block_status_chain(bd, off, bd->size - off, &st, &err);
		if (r)
			break;
		e = (struct map_ent){ .start = off, .length = st.length, .depth = st.depth,
				      .present = st.flags & BLOCK_STATUS_ALLOCATED,
				      .zero = st.flags & BLOCK_STATUS_ZERO,
				      .data = st.flags & BLOCK_STATUS_DATA,
				      .has_offset = st.flags & BLOCK_STATUS_OFFSET,
				      .offset = st.offset, .file = layer_name(bd, st.depth) };
		if (have && mergeable(&cur, &e)) {
			cur.length += e.length;
		} else {
			if (have)
				print_ent(&cur, json, first), first = false;
			cur = e;
			have = true;
		}
		off += st.length;
	}
	if (have && !r)
		print_ent(&cur, json, first), first = false;
	if (json && !r)
		printf(first ? "[]\n" : "]\n");
	block_close(bd);
	return r ? img_fail(&err) : 0;
}

int img_compare(int argc, char **argv)
{
	const char *f1 = NULL, *f2 = NULL;
	bool strict = false;
	struct block_dev *a = NULL, *b = NULL;
	struct verr err = {0};
	uint8_t *x, *y;
	uint64_t common;
	int c, r = 0, res = 0;

	if (img_want_help(argc, argv, "compare"))
		return 0;
	optind = 1;
	while ((c = getopt(argc, argv, "f:F:sqpU")) != -1) {
		if (c == 'f') f1 = optarg;
		else if (c == 'F') f2 = optarg;
		else if (c == 's') strict = true;
		else if (!strchr("qpU", c)) return 2;
	}
	if (argc - optind != 2) {
		img_usage_error("compare", "expected two image files");
		return 2;
	}
	if (img_open(argv[optind], f1, false, NULL, false, &a, &err) ||
	    img_open(argv[optind + 1], f2 ? f2 : f1, false, NULL, false, &b, &err)) {
		block_close(a);
		img_fail(&err);
		return 2;
	}
	x = file_alloc(CHUNK);
	y = file_alloc(CHUNK);
	common = a->size < b->size ? a->size : b->size;
	if (strict && a->size != b->size) {
		printf("Strict mode: Image size mismatch!\n");
		res = 1;
	}
	for (uint64_t off = 0; off < common && !r && !res; off += CHUNK) {
		size_t n = common - off < CHUNK ? (size_t)(common - off) : CHUNK;
		r = block_read(a, off, x, n, &err);
		if (!r)
			r = block_read(b, off, y, n, &err);
		for (size_t i = 0; !r && i < n; i++)
			if (x[i] != y[i]) {
				printf("Content mismatch at offset %llu!\n",
				       (unsigned long long)(off + i));
				res = 1;
				break;
			}
	}
	/* The longer image must read as zeros past the shorter one. */
	struct block_dev *l = a->size > b->size ? a : b;
	for (uint64_t off = common; off < l->size && !r && !res; off += CHUNK) {
		size_t n = l->size - off < CHUNK ? (size_t)(l->size - off) : CHUNK;
		r = block_read(l, off, x, n, &err);
		for (size_t i = 0; !r && i < n; i++)
			if (x[i]) {
				printf("Content mismatch at offset %llu!\n",
				       (unsigned long long)(off + i));
				res = 1;
				break;
			}
	}
	free(x);
	free(y);
	block_close(a);
	block_close(b);
	if (r) {
		img_fail(&err);
		return 2;
	}
	if (!res)
		printf("Images are identical.\n");
	return res;
}

/* Copy what the top image defines into its backing file. */
static int commit_data(struct block_dev *top, struct block_dev *base, struct verr *err)
{
	uint8_t *buf = file_alloc(CHUNK);
	int r = 0;

	if (!buf)
		return verr_set(err, ENOMEM, "out of memory");
	for (uint64_t off = 0; off < top->size && !r;) {
		struct block_status st;
		r = block_status(top, off, top->size - off, &st, err);
		if (r)
			break;
		uint64_t len = st.length < CHUNK ? st.length : CHUNK;
		if (off + len > base->size)
			len = off < base->size ? base->size - off : 0;
		if (!len)
			break;
		if (!(st.flags & BLOCK_STATUS_ALLOCATED))
			;
		else if (st.flags & BLOCK_STATUS_ZERO)
			r = block_write_zeroes(base, off, len, err);
		else if (!(r = block_read(top, off, buf, len, err)))
			r = block_write(base, off, buf, len, err);
		off += len;
	}
	free(buf);
	return r ? r : block_flush(base, err);
}

int img_commit(int argc, char **argv)
{
	const char *fmt = NULL, *cache = NULL;
	bool keep = false;
	struct block_dev *top = NULL, *base = NULL;
	struct block_info in;
	char path[BLOCK_PATH_MAX];
	struct verr err = {0};
	int c, r;

	if (img_want_help(argc, argv, "commit"))
		return 0;
	optind = 1;
	while ((c = getopt(argc, argv, "f:t:dpqb:r:")) != -1) {
		if (c == 'f') fmt = optarg;
		else if (c == 't') cache = optarg;
		else if (c == 'd') keep = true;
		else if (!strchr("pqbr", c)) return img_usage_error("commit", "bad option");
	}
	if (argc - optind != 1)
		return img_usage_error("commit", "expected one image file");
	r = img_open(argv[optind], fmt, !keep, cache, true, &top, &err);
	if (!r)
		r = block_get_info(top, &in, &err);
	if (!r && !in.backing_file[0])
		r = verr_set(&err, EINVAL, "%s: image has no backing file to commit to",
			     argv[optind]);
	if (!r) {
		block_backing_path(argv[optind], in.backing_file, path, sizeof(path));
		r = img_open(path, in.backing_format[0] ? in.backing_format : NULL, true, cache,
			     false, &base, &err);
	}
	if (!r)
		r = commit_data(top, base, &err);
	/* Emptying the top image: its clusters now read through to the base. */
	if (!r && !keep)
		r = block_discard(top, 0, top->size, &err);
	if (!r && !keep)
		r = block_flush(top, &err);
	block_close(base);
	block_close(top);
	if (r)
		return img_fail(&err);
	printf("Image committed.\n");
	return 0;
}

/* Safe rebase: copy into the image every unallocated range whose content
 * differs between the old and the new backing chain. */
static int rebase_copy(struct block_dev *img, struct block_dev *nb, struct verr *err)
{
	uint8_t *a = file_alloc(CHUNK), *b = file_alloc(CHUNK);
	int r = 0;

	if (!a || !b) {
		free(a);
		free(b);
		return verr_set(err, ENOMEM, "out of memory");
	}
	for (uint64_t off = 0; off < img->size && !r;) {
		struct block_status st;
		r = block_status(img, off, img->size - off, &st, err);
		if (r)
			break;
		uint64_t len = st.length < CHUNK ? st.length : CHUNK;
		if (!(st.flags & BLOCK_STATUS_ALLOCATED)) {
			r = block_read(img, off, a, len, err);
			memset(b, 0, len);
			if (!r && nb && off < nb->size)
				r = block_read(nb, off, b, off + len > nb->size ? nb->size - off : len,
					       err);
			if (!r && memcmp(a, b, len))
				r = block_write(img, off, a, len, err);
		}
		off += len;
	}
	free(a);
	free(b);
	return r;
}

int img_rebase(int argc, char **argv)
{
	const char *fmt = NULL, *bfile = NULL, *bfmt = NULL, *cache = NULL;
	bool unsafe = false;
	struct block_dev *img = NULL, *nb = NULL;
	struct verr err = {0};
	int c, r;

	if (img_want_help(argc, argv, "rebase"))
		return 0;
	optind = 1;
	while ((c = getopt(argc, argv, "f:b:F:ut:T:pqU")) != -1) {
		if (c == 'f') fmt = optarg;
		else if (c == 'b') bfile = optarg;
		else if (c == 'F') bfmt = optarg;
		else if (c == 'u') unsafe = true;
		else if (c == 't') cache = optarg;
		else if (!strchr("TpqU", c)) return img_usage_error("rebase", "bad option");
	}
	if (argc - optind != 1 || !bfile)
		return img_usage_error("rebase", "expected -b backing and one image file");
	r = img_open(argv[optind], fmt, true, cache, unsafe, &img, &err);
	if (!r && !img->drv->set_backing)
		r = verr_set(&err, ENOTSUP, "%s: format %s has no backing files", argv[optind],
			     img->drv->name);
	if (!r && *bfile && !unsafe) {
		char p[BLOCK_PATH_MAX];
		block_backing_path(argv[optind], bfile, p, sizeof(p));
		r = img_open(p, bfmt, false, NULL, false, &nb, &err);
		if (!r && !bfmt)
			bfmt = nb->drv->name;
	}
	if (!r && !unsafe)
		r = rebase_copy(img, nb, &err);
	if (!r)
		r = block_flush(img, &err);
	if (!r)
		r = img->drv->set_backing(img, *bfile ? bfile : NULL, bfmt, &err);
	block_close(nb);
	block_close(img);
	return r ? img_fail(&err) : 0;
}
