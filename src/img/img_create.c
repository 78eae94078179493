/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo img create | resize | amend | snapshot | measure`. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/size.h"
#include "img/img_priv.h"

void img_print_snapshots(const struct block_snapshot_info *s, int n);

static int backing_size(const char *img, struct block_create_opts *o, struct verr *err)
{
	char path[BLOCK_PATH_MAX];
	struct block_dev *bd;
	int r;

	block_backing_path(img, o->backing_file, path, sizeof(path));
	r = img_open(path, o->backing_format, false, NULL, false, &bd, err);
	if (r)
		return r;
	if (!o->size)
		o->size = bd->size;
	if (!o->backing_format)
		o->backing_format = bd->drv->name;
	block_close(bd);
	return 0;
}

int img_create(int argc, char **argv)
{
	struct block_create_opts o = {0};
	const char *fmt = "raw";
	bool unsafe = false;
	struct verr err = {0};
	int c;

	if (img_want_help(argc, argv, "create"))
		return 0;
	optind = 1;
	while ((c = getopt(argc, argv, "f:o:b:F:uq")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'o':
			if (img_parse_opts(optarg, &o, NULL, 0, &err))
				return img_fail(&err);
			break;
		case 'b': o.backing_file = optarg; break;
		case 'F': o.backing_format = optarg; break;
		case 'u': unsafe = true; break;
		case 'q': break;
		default: return img_usage_error("create", "bad option");
		}
	}
	if (optind >= argc || argc - optind > 2)
		return img_usage_error("create", "expected a file name and a size");
	if (argc - optind == 2 && size_parse(argv[optind + 1], 0, &o.size, &err) < 0)
		return img_fail(&err);
	if (argc - optind == 1 && !o.backing_file)
		return img_usage_error("create", "an image size is required");
	if (o.backing_file && !unsafe && backing_size(argv[optind], &o, &err))
		return img_fail(&err);
	if (block_create(fmt, argv[optind], &o, &err))
		return img_fail(&err);
	return 0;
}

int img_resize(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "shrink", no_argument, NULL, 'S' },
		{ "preallocation", required_argument, NULL, 'P' },
		{ 0, 0, 0, 0 },
	};
	const char *fmt = NULL, *arg;
	bool shrink = false;
	struct verr err = {0};
	struct block_dev *bd;
	uint64_t n, size;
	int c, r;

	if (img_want_help(argc, argv, "resize"))
		return 0;
	optind = 1;
	/* "-1G" is a size, not an option: stop option parsing at the file. */
	while ((c = getopt_long(argc, argv, "+f:q", lo, NULL)) != -1) {
		if (c == 'f')
			fmt = optarg;
		else if (c == 'S')
			shrink = true;
		else if (c != 'q' && c != 'P')
			return img_usage_error("resize", "bad option");
	}
	if (argc - optind != 2)
		return img_usage_error("resize", "expected a file and a size");
	arg = argv[optind + 1];
	if (size_parse(arg + (*arg == '+' || *arg == '-'), 0, &n, &err) < 0)
		return img_fail(&err);
	/* with its backing file: growing an overlay zeroes what the backing
	 * file holds past the old end (qcow2_resize) */
	if (img_open(argv[optind], fmt, true, NULL, false, &bd, &err))
		return img_fail(&err);
	size = *arg == '+' ? bd->size + n : *arg == '-' ? (n > bd->size ? 0 : bd->size - n) : n;
	r = block_resize(bd, size, shrink, &err);
	if (!r)
		r = block_flush(bd, &err);
	block_close(bd);
	if (r)
		return img_fail(&err);
	printf("Image resized.\n");
	return 0;
}

int img_amend(int argc, char **argv)
{
	struct block_create_opts o = {0};
	const char *fmt = NULL;
	char keys[256] = "";
	struct verr err = {0};
	struct block_dev *bd;
	bool have = false;
	int c, r;

	if (img_want_help(argc, argv, "amend"))
		return 0;
	optind = 1;
	while ((c = getopt(argc, argv, "f:o:q")) != -1) {
		if (c == 'f') {
			fmt = optarg;
		} else if (c == 'o') {
			if (img_parse_opts(optarg, &o, keys, sizeof(keys), &err))
				return img_fail(&err);
			have = true;
		} else if (c != 'q') {
			return img_usage_error("amend", "bad option");
		}
	}
	if (!have || argc - optind != 1)
		return img_usage_error("amend", "expected -o options and one file");
	if (img_open(argv[optind], fmt, true, NULL, true, &bd, &err))
		return img_fail(&err);
	if (!bd->drv->amend)
		r = verr_set(&err, ENOTSUP, "%s: format %s cannot be amended", argv[optind],
			     bd->drv->name);
	else
		r = bd->drv->amend(bd, &o, keys, &err);
	block_close(bd);
	return r ? img_fail(&err) : 0;
}

int img_snapshot(int argc, char **argv)
{
	char op = 0;
	const char *name = NULL, *fmt = NULL;
	struct verr err = {0};
	struct block_dev *bd;
	int c, r = 0;

	if (img_want_help(argc, argv, "snapshot"))
		return 0;
	optind = 1;
	while ((c = getopt(argc, argv, "lc:a:d:f:qU")) != -1) {
		if (c == 'f') {
			fmt = optarg;
		} else if (strchr("lcad", c)) {
			if (op)
				return img_usage_error("snapshot", "only one of -l, -c, -a, -d");
			op = (char)c;
			name = optarg;
		} else if (c != 'q' && c != 'U') {
			return img_usage_error("snapshot", "bad option");
		}
	}
	if (!op || argc - optind != 1)
		return img_usage_error("snapshot", "expected one of -l -c -a -d and one file");
	if (img_open(argv[optind], fmt, op != 'l', NULL, true, &bd, &err))
		return img_fail(&err);
	if (!bd->drv->snapshot_list) {
		r = verr_set(&err, ENOTSUP, "%s: format %s has no internal snapshots", argv[optind],
			     bd->drv->name);
	} else if (op == 'l') {
		struct block_snapshot_info *s = NULL;
		int n = 0;
		r = bd->drv->snapshot_list(bd, &s, &n, &err);
		if (!r && n) {
			printf("Snapshot list:\n");
			img_print_snapshots(s, n);
		}
		free(s);
	} else if (op == 'c') {
		r = bd->drv->snapshot_create(bd, name, &err);
	} else if (op == 'a') {
		r = bd->drv->snapshot_apply(bd, name, &err);
	} else {
		r = bd->drv->snapshot_delete(bd, name, &err);
	}
	if (!r)
		r = block_flush(bd, &err);
	block_close(bd);
	return r ? img_fail(&err) : 0;
}

/* Bytes a qcow2 image needs for `size` bytes of which `data` are allocated. */
static uint64_t qcow2_need(uint64_t size, uint64_t data, uint32_t cs, int rbits)
{
	uint64_t clusters = (data + cs - 1) / cs, l2s = (size / cs + cs / 8 - 1) / (cs / 8);
	uint64_t l1 = (l2s * 8 + cs - 1) / cs, meta = 1 + l1 + l2s, total = meta + clusters;
	uint64_t per_rb = (uint64_t)cs * 8 / (uint64_t)rbits, rbs = 0, rt = 0, prev;

	if (!data)
		l2s = 0;
	meta = 1 + l1 + (data ? (size / cs + cs / 8 - 1) / (cs / 8) : 0);
	total = meta + clusters;
	do {
		prev = rbs + rt;
		rbs = (total + rbs + rt + per_rb - 1) / per_rb;
		rt = (rbs * 8 + cs - 1) / cs;
	} while (rbs + rt != prev);
	return (total + rbs + rt) * cs;
}

int img_measure(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "size", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'J' },
		{ 0, 0, 0, 0 },
	};
	struct block_create_opts o = {0};
	const char *ofmt = "raw", *fmt = NULL;
	uint64_t size = 0, data = 0;
	bool json = false, have_size = false;
	struct verr err = {0};
	int c;

	if (img_want_help(argc, argv, "measure"))
		return 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "O:o:f:", lo, NULL)) != -1) {
		if (c == 'O') ofmt = optarg;
		else if (c == 'f') fmt = optarg;
		else if (c == 'o' && img_parse_opts(optarg, &o, NULL, 0, &err)) return img_fail(&err);
		else if (c == 'J') json = !strcmp(optarg, "json");
		else if (c == 's') {
			if (size_parse(optarg, 0, &size, &err))
				return img_fail(&err);
			have_size = true;
		} else if (c != 'o') return img_usage_error("measure", "bad option");
	}
	if (have_size == (optind < argc))
		return img_usage_error("measure", "give either --size or one image file");
	if (!have_size) {
		struct block_dev *bd;
		if (img_open(argv[optind], fmt, false, NULL, false, &bd, &err))
			return img_fail(&err);
		size = bd->size;
		for (uint64_t off = 0; off < size;) {
			struct block_status st;
			if (block_status_chain(bd, off, size - off, &st, &err)) {
				block_close(bd);
				return img_fail(&err);
			}
			if (!(st.flags & BLOCK_STATUS_ZERO))
				data += st.length;
			off += st.length;
		}
		block_close(bd);
	}
	uint64_t req, full;
	uint32_t cs = o.cluster_size ? o.cluster_size : 65536;
	int rb = o.refcount_bits ? o.refcount_bits : 16;
	if (!strcmp(ofmt, "qcow2")) {
		req = qcow2_need(size, data, cs, rb);
		full = qcow2_need(size, size, cs, rb);
	} else {
		req = have_size ? size : data;
		full = size;
		req = size;
	}
	if (json) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "required", json_object_new_int64((int64_t)req));
		json_object_object_add(j, "fully-allocated", json_object_new_int64((int64_t)full));
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
		json_object_put(j);
	} else {
		printf("required size: %llu\nfully allocated size: %llu\n",
		       (unsigned long long)req, (unsigned long long)full);
	}
	return 0;
}
