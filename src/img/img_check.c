/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo img check`: exit 0 clean, 1 check failed, 2 corruptions, 3 leaks. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "img/img_priv.h"

static void human(const char *path, const struct block_check *c, enum block_fix fix)
{
	if (c->leaks_fixed || c->corruptions_fixed) {
		printf("The following inconsistencies were found and repaired:\n\n"
		       "    %lld leaked clusters\n    %lld corruptions\n\n"
		       "Double checking the fixed image now...\n",
		       (long long)c->leaks_fixed, (long long)c->corruptions_fixed);
	}
	if (!c->corruptions && !c->leaks && !c->check_errors)
		printf("No errors were found on the image.\n");
	if (c->corruptions)
		printf("\n%lld errors were found on the image.\nData may be corrupted, or further "
		       "writes to the image may corrupt it.\n", (long long)c->corruptions);
	if (c->leaks)
		printf("\n%lld leaked clusters were found on the image.\nThis means waste of disk "
		       "space, but no harm to data.\n", (long long)c->leaks);
	if (c->total_clusters)
		printf("%llu/%llu = %.2f%% allocated, %.2f%% fragmented, %.2f%% compressed "
		       "clusters\n", (unsigned long long)c->allocated_clusters,
		       (unsigned long long)c->total_clusters,
		       100.0 * (double)c->allocated_clusters / (double)c->total_clusters,
		       c->allocated_clusters ? 100.0 * (double)c->fragmented_clusters /
					       (double)c->allocated_clusters : 0.0,
		       c->allocated_clusters ? 100.0 * (double)c->compressed_clusters /
					       (double)c->allocated_clusters : 0.0);
	if (c->image_end_offset)
		printf("Image end offset: %llu\n", (unsigned long long)c->image_end_offset);
	(void)path;
	(void)fix;
}

static void json_out(const char *path, const char *fmt, const struct block_check *c)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "image-end-offset",
			       json_object_new_int64((int64_t)c->image_end_offset));
	json_object_object_add(o, "total-clusters", json_object_new_int64((int64_t)c->total_clusters));
	json_object_object_add(o, "check-errors", json_object_new_int64(c->check_errors));
	if (c->leaks)
		json_object_object_add(o, "leaks", json_object_new_int64(c->leaks));
	if (c->corruptions)
		json_object_object_add(o, "corruptions", json_object_new_int64(c->corruptions));
	if (c->leaks_fixed)
		json_object_object_add(o, "leaks-fixed", json_object_new_int64(c->leaks_fixed));
	if (c->corruptions_fixed)
		json_object_object_add(o, "corruptions-fixed",
				       json_object_new_int64(c->corruptions_fixed));
	json_object_object_add(o, "allocated-clusters",
			       json_object_new_int64((int64_t)c->allocated_clusters));
	json_object_object_add(o, "filename", json_object_new_string(path));
	json_object_object_add(o, "format", json_object_new_string(fmt));
	/* Like qemu-img, statistics that are zero are left out. */
	if (c->fragmented_clusters)
		json_object_object_add(o, "fragmented-clusters",
				       json_object_new_int64((int64_t)c->fragmented_clusters));
	if (c->compressed_clusters)
		json_object_object_add(o, "compressed-clusters",
				       json_object_new_int64((int64_t)c->compressed_clusters));
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_SPACED));
	json_object_put(o);
}

int img_check(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "output", required_argument, NULL, 'J' },
		{ 0, 0, 0, 0 },
	};
	const char *fmt = NULL;
	enum block_fix fix = BLOCK_FIX_NONE;
	bool json = false;
	struct block_check res;
	struct verr err = {0};
	struct block_dev *bd;
	int c, r;

	if (img_want_help(argc, argv, "check"))
		return 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:r:qU", lo, NULL)) != -1) {
		if (c == 'f') {
			fmt = optarg;
		} else if (c == 'J') {
			json = !strcmp(optarg, "json");
		} else if (c == 'r') {
			if (!strcmp(optarg, "leaks"))
				fix = BLOCK_FIX_LEAKS;
			else if (!strcmp(optarg, "all"))
				fix = BLOCK_FIX_LEAKS | BLOCK_FIX_ERRORS;
			else
				return img_usage_error("check", "-r takes leaks or all");
		} else if (c != 'q' && c != 'U') {
			return img_usage_error("check", "bad option");
		}
	}
	if (argc - optind != 1)
		return img_usage_error("check", "expected one image file");
	if (img_open(argv[optind], fmt, fix != BLOCK_FIX_NONE, NULL, true, &bd, &err))
		return img_fail(&err);
	r = block_check(bd, fix, &res, &err);
	if (r) {
		block_close(bd);
		img_fail(&err);
		return 1;
	}
	if (json)
		json_out(argv[optind], bd->drv->name, &res);
	else
		human(argv[optind], &res, fix);
	block_close(bd);
	if (res.check_errors)
		return 1;
	if (res.corruptions)
		return 2;
	if (res.leaks)
		return 3;
	return 0;
}
