/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM definition: the JSON a user hands to `vireo vm define`, checked
 * field by field (definitions are hostile input) into a struct, and written
 * back as canonical JSON (what `dumpconfig` prints and the store keeps).
 */
#ifndef VIREO_DAEMON_DEFN_H
#define VIREO_DAEMON_DEFN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define DEFN_NAME_MAX 64
#define DEFN_PATH_MAX 1024
#define DEFN_CMDLINE_MAX 2048
#define DEFN_MAX_DISKS 16
#define DEFN_MAX_NETS 8
#define DEFN_MAX_VCPUS 64
#define DEFN_MAX_MEMORY_MIB (1024u * 1024u)
#define DEFN_MAX_TEXT (64u * 1024u)

struct defn_disk {
	char path[DEFN_PATH_MAX];
	char format[8];          /* raw, qcow2, vmdk */
	bool readonly;
};

struct defn_net {
	char tap[16];            /* IFNAMSIZ */
	char mac[18];            /* empty: vireo run chooses */
};

struct defn {
	char name[DEFN_NAME_MAX + 1];
	char uuid[37];
	uint32_t memory_mib;
	uint32_t vcpus;
	char kernel[DEFN_PATH_MAX];
	char initrd[DEFN_PATH_MAX];
	char cmdline[DEFN_CMDLINE_MAX];
	char console[8];         /* serial, virtio */
	struct defn_disk disks[DEFN_MAX_DISKS];
	size_t n_disks;
	struct defn_net nets[DEFN_MAX_NETS];
	size_t n_nets;
};

/*
 * Parse and check a definition (len bytes, need not be NUL-terminated).
 * A missing uuid is generated. Errors name the field ("disks[1].format:
 * ..."); -EINVAL for any bad input, -ENOMEM.
 */
int defn_parse(const char *text, size_t len, struct defn *d, struct verr *err);
/* The canonical JSON of d, malloc'd; NULL when out of memory. */
char *defn_to_json(const struct defn *d);
/* A VM name: 1-64 of [A-Za-z0-9_.-], not starting with '.' or '-'. */
bool defn_name_ok(const char *name);

#endif
