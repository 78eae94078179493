/* SPDX-License-Identifier: Apache-2.0 */
/*
 * qcow2 internals shared by the files of this folder. Written from QEMU's
 * docs/interop/qcow2.txt. Every number on disk is big-endian.
 *
 * Crash consistency: metadata lives in write-back caches and reaches the
 * file in dependency order at flush time: refcount blocks, then the refcount
 * table, then L2 tables, then the L1 table, with a sync between stages. A
 * cluster's refcount is therefore durable before anything points at it, and
 * a kill at any moment can only leak clusters. Refcount decrements are
 * deferred until the references they drop are durable, for the same reason.
 */
#ifndef VIREO_BLOCK_QCOW2_H
#define VIREO_BLOCK_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_V2_HEADER 72
#define QCOW2_V3_HEADER 104
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_RT_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_BACKING_NAME 1023

#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO 1ull
#define QCOW2_L1_RESERVED 0x7f000000000001ffull
#define QCOW2_L2_RESERVED 0x3f000000000001feull
#define QCOW2_RT_RESERVED 0x00000000000001ffull

#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1full
#define QCOW2_COMPAT_LAZY (1ull << 0)

#define QCOW2_EXT_END 0
#define QCOW2_EXT_BACKING_FMT 0xe2792acau
#define QCOW2_EXT_FEATURES 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

#define QCOW2_COMP_ZLIB 0
#define QCOW2_COMP_ZSTD 1

#define QCOW2_MAX_DEFERRED 4096

struct qcow2_cache_entry {
	uint64_t offset;     /* host offset of the cluster; 0 = empty slot */
	uint8_t *data;
	bool dirty;
	uint64_t lru;
};

struct qcow2_cache {
	int n;
	struct qcow2_cache_entry *e;
	uint64_t tick;
	bool written;        /* entries written since the last sync */
	bool is_l2;
};

struct qcow2_snapshot {
	uint64_t l1_offset;
	uint32_t l1_size;
	char *id, *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint32_t vm_state_size;
	uint32_t extra_size;
	uint8_t *extra;      /* kept verbatim so we rewrite what we don't know */
	uint64_t disk_size;  /* from the extra data, or the image size */
	uint64_t icount;
};

struct qcow2_range {
	uint64_t offset, length;
};

struct qcow2 {
	struct block_dev *bd;
	const char *name;             /* bd->filename, for messages */
	uint32_t version;
	uint32_t cluster_bits, cluster_size;
	uint64_t incompat, compat, autoclear;
	uint32_t refcount_order, refcount_bits;
	uint32_t header_length;
	uint8_t compression_type;

	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t *l1;                 /* host-endian copy of the active L1 */
	bool l1_dirty;

	uint64_t rt_offset;
	uint32_t rt_clusters;
	uint64_t rt_entries;
	uint64_t *rt;                 /* host-endian refcount table */
	bool rt_dirty;
	uint64_t rb_entries;          /* refcounts per refcount block */

	bool ext_l2;
	uint32_t l2_entry_size;       /* 8, or 16 with extended L2 */
	uint64_t l2_entries;          /* entries per L2 table */
	uint32_t l2_bits;

	uint64_t backing_offset;
	uint32_t backing_size;
	char backing[QCOW2_MAX_BACKING_NAME + 1];
	char backing_fmt[BLOCK_FMT_MAX];
	uint8_t *other_exts;          /* unknown header extensions, verbatim */
	uint32_t other_exts_len;

	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	struct qcow2_snapshot *snaps;
	uint64_t snap_table_len;       /* bytes of the table on disk */

	struct qcow2_cache l2c, rbc;

	uint64_t file_end;            /* bytes: current end of the image file */
	uint64_t free_hint;           /* lowest cluster index that may be free */
	uint64_t comp_cursor;         /* where the next compressed cluster may start */

	struct qcow2_range deferred[QCOW2_MAX_DEFERRED];
	int n_deferred;

	uint64_t zcache_entry;        /* L2 entry of the cluster in zcache */
	uint8_t *zcache;              /* last decompressed cluster */
	uint8_t *zbuf;                /* compressed bytes scratch */
	bool dirty_marked;            /* we set the dirty bit on open */
	bool check_quiet;             /* check reports nothing on stderr */
};

/* header.c */
int qcow2_header_read(struct qcow2 *q, struct verr *err);
int qcow2_header_update(struct qcow2 *q, struct verr *err);
int qcow2_header_rewrite(struct qcow2 *q, struct verr *err);
int qcow2_create(const char *path, const struct block_create_opts *o, struct verr *err);
int qcow2_probe(const uint8_t *buf, size_t len);

/* io helpers (qcow2.c) */
int qcow2_pread(struct qcow2 *q, uint64_t off, void *buf, size_t len, struct verr *err);
int qcow2_pwrite(struct qcow2 *q, uint64_t off, const void *buf, size_t len, struct verr *err);
int qcow2_sync(struct qcow2 *q, struct verr *err);
int qcow2_check_offset(struct qcow2 *q, uint64_t off, uint64_t len, const char *what,
		       struct verr *err);

/* cache.c */
int qcow2_cache_init(struct qcow2_cache *c, int n, uint32_t size, bool is_l2);
void qcow2_cache_destroy(struct qcow2_cache *c);
/* Returns the cached table at host offset off, loading it unless fresh
 * (fresh: a newly allocated cluster, zero-filled and dirty). */
int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, bool fresh,
		    uint8_t **data, struct verr *err);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, const uint8_t *data);
void qcow2_cache_forget(struct qcow2_cache *c, uint64_t off);
int qcow2_cache_write_dirty(struct qcow2 *q, struct qcow2_cache *c, struct verr *err);
/* The whole ordered metadata flush; see the comment at the top. */
int qcow2_flush_metadata(struct qcow2 *q, struct verr *err);
int qcow2_flush_refcounts(struct qcow2 *q, struct verr *err);

/* refcount.c */
int qcow2_get_refcount(struct qcow2 *q, uint64_t cluster, uint64_t *rc, struct verr *err);
int qcow2_update_refcount(struct qcow2 *q, uint64_t cluster, int64_t delta, struct verr *err);
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *offset, struct verr *err);
/* Allocate len bytes (sector granular) for compressed data. */
int qcow2_alloc_bytes(struct qcow2 *q, uint64_t len, uint64_t *offset, struct verr *err);
/* Drop one reference to each cluster overlapping [off, off+len), once the
 * metadata that referenced them is durable. */
int qcow2_defer_free(struct qcow2 *q, uint64_t off, uint64_t len, struct verr *err);
int qcow2_apply_deferred(struct qcow2 *q, struct verr *err);
int qcow2_free_now(struct qcow2 *q, uint64_t off, uint64_t len, struct verr *err);
uint64_t qcow2_rc_get_raw(const struct qcow2 *q, const uint8_t *block, uint64_t i);
void qcow2_rc_set_raw(const struct qcow2 *q, uint8_t *block, uint64_t i, uint64_t v);

/* cluster.c */
enum qcow2_ctype { QC_UNALLOC, QC_ZERO, QC_NORMAL, QC_COMPRESSED };
struct qcow2_map {
	enum qcow2_ctype type;
	uint64_t host;                /* cluster (or compressed data) host offset */
	uint64_t entry;               /* raw L2 entry */
	uint64_t bitmap;              /* extended L2 bitmap */
};
int qcow2_lookup(struct qcow2 *q, uint64_t guest, struct qcow2_map *m, struct verr *err);
int qcow2_get_l2(struct qcow2 *q, uint64_t guest, bool alloc, uint8_t **l2, struct verr *err);
uint64_t qcow2_l2_get(const struct qcow2 *q, const uint8_t *l2, uint64_t i);
void qcow2_l2_set(const struct qcow2 *q, uint8_t *l2, uint64_t i, uint64_t v);
int qcow2_read_cluster(struct qcow2 *q, uint64_t guest, uint8_t *buf, uint64_t in, size_t n,
		       struct verr *err);
int qcow2_write_cluster(struct qcow2 *q, uint64_t guest, const uint8_t *buf, uint64_t in,
			size_t n, struct verr *err);
int qcow2_zero_cluster(struct qcow2 *q, uint64_t guest, bool discard, struct verr *err);
int qcow2_compressed_range(const struct qcow2 *q, uint64_t entry, uint64_t *off, uint64_t *len);
int qcow2_grow_l1(struct qcow2 *q, uint64_t min_size, struct verr *err);
uint64_t qcow2_l1_needed(const struct qcow2 *q, uint64_t size);
int qcow2_preallocate(struct qcow2 *q, const char *mode, struct verr *err);

/* compress.c */
int qcow2_decompress(struct qcow2 *q, const uint8_t *src, size_t slen, uint8_t *dst,
		     struct verr *err);
/* Returns compressed length, or 0 if it would not save space. */
size_t qcow2_compress(int type, const uint8_t *src, size_t len, uint8_t *dst, size_t dlen);

/* snapshot.c */
int qcow2_snapshots_read(struct qcow2 *q, struct verr *err);
void qcow2_snapshots_free(struct qcow2 *q);
extern const struct block_driver block_qcow2_driver;
int qcow2_snapshot_list(struct block_dev *bd, struct block_snapshot_info **list, int *n,
			struct verr *err);
int qcow2_snapshot_create(struct block_dev *bd, const char *name, struct verr *err);
int qcow2_snapshot_apply(struct block_dev *bd, const char *name, struct verr *err);
int qcow2_snapshot_delete(struct block_dev *bd, const char *name, struct verr *err);
int qcow2_fix_copied(struct qcow2 *q, struct verr *err);
int qcow2_tree_refs(struct qcow2 *q, const uint64_t *l1, uint32_t l1_size, int delta,
		    struct verr *err);

/* check.c */
int qcow2_check(struct block_dev *bd, enum block_fix fix, struct block_check *res,
		struct verr *err);

#endif
