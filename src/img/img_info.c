/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo img info`: human output like qemu-img's, or JSON with its field names. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "img/img_priv.h"

static void human_size(uint64_t v, char *buf, size_t len)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	int i = 0;

	while (d >= 1024 && i < 6) {
		d /= 1024;
		i++;
	}
	snprintf(buf, len, "%0.3g %s", d, u[i]);
}

static void fmt_date(uint32_t sec, char *buf, size_t len)
{
	time_t t = (time_t)sec;
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void fmt_clock(uint64_t ns, char *buf, size_t len)
{
	uint64_t ms = ns / 1000000;
	snprintf(buf, len, "%02llu:%02llu:%02llu.%03llu", (unsigned long long)(ms / 3600000),
		 (unsigned long long)(ms / 60000 % 60), (unsigned long long)(ms / 1000 % 60),
		 (unsigned long long)(ms % 1000));
}

void img_print_snapshots(const struct block_snapshot_info *s, int n);
void img_print_snapshots(const struct block_snapshot_info *s, int n)
{
	char size[32], date[32], clock[32], ic[32];

	printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK",
	       "ICOUNT");
	for (int i = 0; i < n; i++) {
		human_size(s[i].vm_state_size, size, sizeof(size));
		fmt_date(s[i].date_sec, date, sizeof(date));
		fmt_clock(s[i].vm_clock_nsec, clock, sizeof(clock));
		if (s[i].icount == UINT64_MAX)
			ic[0] = 0;
		else
			snprintf(ic, sizeof(ic), "%llu", (unsigned long long)s[i].icount);
		printf("%-10s%-17s%8s%20s%13s%11s\n", s[i].id, s[i].name, size, date, clock, ic);
	}
}

static json_object *snap_json(const struct block_snapshot_info *s, int n)
{
	json_object *a = json_object_new_array();

	for (int i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		if (s[i].icount != UINT64_MAX)
			json_object_object_add(o, "icount", json_object_new_int64((int64_t)s[i].icount));
		json_object_object_add(o, "vm-clock-nsec",
				       json_object_new_int64((int64_t)(s[i].vm_clock_nsec % 1000000000)));
		json_object_object_add(o, "name", json_object_new_string(s[i].name));
		json_object_object_add(o, "date-sec", json_object_new_int64(s[i].date_sec));
		json_object_object_add(o, "date-nsec", json_object_new_int64(s[i].date_nsec));
		json_object_object_add(o, "vm-clock-sec",
				       json_object_new_int64((int64_t)(s[i].vm_clock_nsec / 1000000000)));
		json_object_object_add(o, "id", json_object_new_string(s[i].id));
		json_object_object_add(o, "vm-state-size",
				       json_object_new_int64((int64_t)s[i].vm_state_size));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *specific_json(const struct block_info *in)
{
	json_object *o = json_object_new_object(), *d = json_object_new_object();

	json_object_object_add(o, "type", json_object_new_string(in->format));
	if (!strcmp(in->format, "qcow2")) {
		json_object_object_add(d, "compat",
				       json_object_new_string(in->qcow2_version == 2 ? "0.10" : "1.1"));
		json_object_object_add(d, "compression-type",
				       json_object_new_string(in->compression_type));
		if (in->qcow2_version == 3)
			json_object_object_add(d, "lazy-refcounts",
					       json_object_new_boolean(in->lazy_refcounts));
		json_object_object_add(d, "refcount-bits", json_object_new_int(in->refcount_bits));
		if (in->qcow2_version == 3) {
			json_object_object_add(d, "corrupt", json_object_new_boolean(in->corrupt));
			json_object_object_add(d, "extended-l2",
					       json_object_new_boolean(in->extended_l2));
		}
	} else {
		json_object_object_add(d, "cid", json_object_new_int64(in->vmdk_cid));
		json_object_object_add(d, "parent-cid", json_object_new_int64(in->vmdk_parent_cid));
		json_object_object_add(d, "create-type",
				       json_object_new_string(in->vmdk_create_type));
	}
	json_object_object_add(o, "data", d);
	return o;
}

static json_object *info_json(const char *path, struct block_dev *bd, const struct block_info *in,
			      const struct block_snapshot_info *s, int ns)
{
	json_object *o = json_object_new_object();
	char full[BLOCK_PATH_MAX];

	if (in->backing_file[0] && in->backing_format[0])
		json_object_object_add(o, "backing-filename-format",
				       json_object_new_string(in->backing_format));
	if (ns)
		json_object_object_add(o, "snapshots", snap_json(s, ns));
	json_object_object_add(o, "virtual-size", json_object_new_int64((int64_t)in->virtual_size));
	json_object_object_add(o, "filename", json_object_new_string(path));
	if (in->cluster_size)
		json_object_object_add(o, "cluster-size", json_object_new_int64(in->cluster_size));
	json_object_object_add(o, "format", json_object_new_string(in->format));
	json_object_object_add(o, "actual-size",
			       json_object_new_int64((int64_t)img_actual_size(path)));
	if (strcmp(in->format, "raw"))
		json_object_object_add(o, "format-specific", specific_json(in));
	if (in->backing_file[0]) {
		block_backing_path(path, in->backing_file, full, sizeof(full));
		json_object_object_add(o, "full-backing-filename", json_object_new_string(full));
		json_object_object_add(o, "backing-filename",
				       json_object_new_string(in->backing_file));
	}
	json_object_object_add(o, "dirty-flag", json_object_new_boolean(in->dirty));
	(void)bd;
	return o;
}

static void info_human(const char *path, const struct block_info *in,
		       const struct block_snapshot_info *s, int ns)
{
	char a[32], b[32], full[BLOCK_PATH_MAX];

	human_size(in->virtual_size, a, sizeof(a));
	human_size(img_actual_size(path), b, sizeof(b));
	printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\ndisk size: %s\n", path,
	       in->format, a, (unsigned long long)in->virtual_size, b);
	if (in->cluster_size)
		printf("cluster_size: %u\n", in->cluster_size);
	if (in->backing_file[0]) {
		block_backing_path(path, in->backing_file, full, sizeof(full));
		if (strcmp(full, in->backing_file))
			printf("backing file: %s (actual path: %s)\n", in->backing_file, full);
		else
			printf("backing file: %s\n", in->backing_file);
		if (in->backing_format[0])
			printf("backing file format: %s\n", in->backing_format);
	}
	if (ns) {
		printf("Snapshot list:\n");
		img_print_snapshots(s, ns);
	}
	if (!strcmp(in->format, "qcow2")) {
		printf("Format specific information:\n    compat: %s\n    compression type: %s\n",
		       in->qcow2_version == 2 ? "0.10" : "1.1", in->compression_type);
		if (in->qcow2_version == 3)
			printf("    lazy refcounts: %s\n", in->lazy_refcounts ? "true" : "false");
		printf("    refcount bits: %d\n", in->refcount_bits);
		if (in->qcow2_version == 3)
			printf("    corrupt: %s\n    extended l2: %s\n",
			       in->corrupt ? "true" : "false", in->extended_l2 ? "true" : "false");
	} else if (!strcmp(in->format, "vmdk")) {
		printf("Format specific information:\n    cid: %u\n    parent cid: %u\n"
		       "    create type: %s\n", in->vmdk_cid, in->vmdk_parent_cid,
		       in->vmdk_create_type);
	}
	if (in->dirty)
		printf("dirty flag: true\n");
}

/* One image of the chain: fills *next with its backing file's path. */
static int info_one(const char *path, const char *fmt, bool json, json_object *arr,
		    char *next, char *next_fmt, struct verr *err)
{
	struct block_dev *bd;
	struct block_info in;
	struct block_snapshot_info *s = NULL;
	int ns = 0, r = img_open(path, fmt, false, NULL, true, &bd, err);

	if (r)
		return r;
	r = block_get_info(bd, &in, err);
	if (!r && bd->drv->snapshot_list)
		r = bd->drv->snapshot_list(bd, &s, &ns, err);
	if (!r) {
		if (json)
			json_object_array_add(arr, info_json(path, bd, &in, s, ns));
		else
			info_human(path, &in, s, ns);
		next[0] = 0;
		if (in.backing_file[0])
			block_backing_path(path, in.backing_file, next, BLOCK_PATH_MAX);
		snprintf(next_fmt, BLOCK_FMT_MAX, "%s", in.backing_format);
	}
	free(s);
	block_close(bd);
	return r;
}

int img_info(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'O' },
		{ "backing-chain", no_argument, NULL, 'B' },
		{ "format", required_argument, NULL, 'f' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0, 0, 0, 0 },
	};
	const char *fmt = NULL;
	bool json = false, chain = false;
	char path[BLOCK_PATH_MAX], next[BLOCK_PATH_MAX], nfmt[BLOCK_FMT_MAX] = "";
	struct verr err = {0};
	json_object *arr;
	int c, r = 0;

	if (img_want_help(argc, argv, "info"))
		return 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:U", lo, NULL)) != -1) {
		if (c == 'f')
			fmt = optarg;
		else if (c == 'O')
			json = !strcmp(optarg, "json");
		else if (c == 'B')
			chain = true;
		else if (c != 'U')
			return img_usage_error("info", "bad option");
	}
	if (optind != argc - 1)
		return img_usage_error("info", "expected one image file");
	arr = json_object_new_array();
	snprintf(path, sizeof(path), "%s", argv[optind]);
	for (int depth = 0; depth <= BLOCK_MAX_BACKING_DEPTH && !r; depth++) {
		if (depth && !json)
			printf("\n");
		r = info_one(path, depth ? (nfmt[0] ? nfmt : NULL) : fmt, json, arr, next, nfmt,
			     &err);
		if (r || !chain || !next[0])
			break;
		snprintf(path, sizeof(path), "%s", next);
	}
	if (!r && json) {
		json_object *out = chain ? arr : json_object_array_get_idx(arr, 0);
		printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_SPACED));
	}
	json_object_put(arr);
	return r ? img_fail(&err) : 0;
}
