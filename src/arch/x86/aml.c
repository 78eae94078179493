/* SPDX-License-Identifier: Apache-2.0 */
/* AML emitter; encodings from ACPI 6.x chapter 20 (AML grammar) and
 * section 6.4 (resource descriptors). */
#include "arch/x86/aml.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

enum {
	AML_ZERO = 0x00, AML_ONE = 0x01, AML_NAME = 0x08, AML_BYTE_PFX = 0x0a,
	AML_WORD_PFX = 0x0b, AML_DWORD_PFX = 0x0c, AML_STRING_PFX = 0x0d,
	AML_QWORD_PFX = 0x0e, AML_SCOPE = 0x10, AML_BUFFER = 0x11,
	AML_PACKAGE = 0x12, AML_METHOD = 0x14, AML_DUAL_NAME = 0x2e,
	AML_MULTI_NAME = 0x2f, AML_EXT_PFX = 0x5b, AML_ROOT = 0x5c,
	AML_PARENT = 0x5e, AML_RETURN = 0xa4, AML_EXT_DEVICE = 0x82,
};

/* Resource descriptor tags (small: type << 3 | length; large: 0x80 | type). */
enum {
	RES_IRQ_NOFLAGS = 0x22, RES_IRQ = 0x23, RES_IO = 0x47, RES_END = 0x79,
	RES_DWORD_ADDR = 0x87, RES_WORD_ADDR = 0x88, RES_EXT_IRQ = 0x89,
	RES_QWORD_ADDR = 0x8a,
};

enum { ADDR_MEM = 0, ADDR_IO = 1, ADDR_BUS = 2 };
enum { ADDR_CONSUMER = 1u << 0, ADDR_MIN_FIXED = 1u << 2, ADDR_MAX_FIXED = 1u << 3 };

static void fail(struct aml *a, int code, const char *why)
{
	if (!a->err) {
		a->err = -code;
		a->why = why;
	}
}

void aml_init(struct aml *a, void *buf, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->cap = buf ? cap : 0;
}

int aml_finish(struct aml *a)
{
	if (!a->err && a->depth)
		fail(a, EINVAL, "AML object left open");
	return a->err;
}

/* Insert n bytes at offset at, shifting what follows; the one place that
 * writes to a->buf, so the bound lives here only. */
static void insert(struct aml *a, size_t at, const void *p, size_t n)
{
	if (a->err)
		return;
	if (n > SIZE_MAX - a->len) {
		fail(a, ENOSPC, "AML size overflows");
		return;
	}
	if (a->buf) {
		if (a->len + n > a->cap) {
			fail(a, ENOSPC, "AML does not fit its buffer");
			return;
		}
		memmove(a->buf + at + n, a->buf + at, a->len - at);
		memcpy(a->buf + at, p, n);
	}
	a->len += n;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	insert(a, a->len, p, n);
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void put_le(uint8_t *p, unsigned width, uint64_t v)
{
	for (unsigned i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* PkgLength counts its own bytes too; the lead byte holds 6 bits when alone,
 * else 4 bits plus 1-3 following bytes of 8 bits each. Returns 0 when the
 * length does not fit 28 bits. */
static size_t pkglen_encode(size_t body, uint8_t out[4])
{
	for (size_t n = 1; n <= 4; n++) {
		size_t limit = n == 1 ? 0x3f : ((size_t)1 << (4 + 8 * (n - 1))) - 1;
		if (body > limit - n)
			continue;
		size_t total = body + n;
		if (n == 1) {
			out[0] = (uint8_t)total;
			return 1;
		}
		out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (size_t i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return n;
	}
	return 0;
}

static size_t integer_encode(uint64_t v, uint8_t out[9])
{
	if (v <= 1) {
		out[0] = v ? AML_ONE : AML_ZERO;
		return 1;
	}
	unsigned width = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
	out[0] = width == 1 ? AML_BYTE_PFX : width == 2 ? AML_WORD_PFX :
		 width == 4 ? AML_DWORD_PFX : AML_QWORD_PFX;
	put_le(out + 1, width, v);
	return 1 + width;
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t enc[9];
	aml_bytes(a, enc, integer_encode(v, enc));
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *c = s; *c; c++) {
		/* AsciiCharList is 0x01-0x7f. */
		if ((unsigned char)*c > 0x7f) {
			fail(a, EINVAL, "AML string has a non-ASCII character");
			return;
		}
	}
	aml_byte(a, AML_STRING_PFX);
	aml_bytes(a, s, strlen(s) + 1);
}

static int is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static int is_hexdigit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static unsigned hexval(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
}

int64_t aml_eisaid_value(const char *id)
{
	if (strlen(id) != 7)
		return -1;
	for (int i = 0; i < 3; i++)
		if (!is_upper(id[i]))
			return -1;
	for (int i = 3; i < 7; i++)
		if (!is_hexdigit(id[i]))
			return -1;
	/* Three letters of 5 bits ('A' = 1) then four hex digits, stored
	 * big-endian within the DWord's bytes. */
	unsigned c1 = (unsigned)(id[0] - 0x40), c2 = (unsigned)(id[1] - 0x40);
	unsigned c3 = (unsigned)(id[2] - 0x40);
	uint32_t b0 = (c1 << 2) | (c2 >> 3);
	uint32_t b1 = ((c2 & 7) << 5) | c3;
	uint32_t b2 = (hexval(id[3]) << 4) | hexval(id[4]);
	uint32_t b3 = (hexval(id[5]) << 4) | hexval(id[6]);
	return (int64_t)(b0 | b1 << 8 | b2 << 16 | b3 << 24);
}

void aml_eisaid(struct aml *a, const char *id)
{
	int64_t v = aml_eisaid_value(id);
	uint8_t enc[5] = { AML_DWORD_PFX };

	if (v < 0) {
		fail(a, EINVAL, "malformed EisaId");
		return;
	}
	/* Always a DWord, as EisaId() compiles to, even if it would fit less. */
	put_le(enc + 1, 4, (uint64_t)v);
	aml_bytes(a, enc, sizeof(enc));
}

static int seg_char_ok(char c, int lead)
{
	return is_upper(c) || c == '_' || (!lead && c >= '0' && c <= '9');
}

/* Validates the segment at s (ending at '.' or NUL), returns its length or 0. */
static size_t seg_len(const char *s)
{
	size_t n = 0;
	while (s[n] && s[n] != '.') {
		if (n == 4 || !seg_char_ok(s[n], n == 0))
			return 0;
		n++;
	}
	return n;
}

static void emit_seg(struct aml *a, const char *s, size_t n)
{
	uint8_t seg[4] = { '_', '_', '_', '_' };
	memcpy(seg, s, n);
	aml_bytes(a, seg, 4);
}

void aml_namestring(struct aml *a, const char *path)
{
	const char *p = path;
	size_t nsegs = 0;

	if (*p == '\\')
		p++;
	else
		while (*p == '^')
			p++;
	for (const char *s = p; *s; nsegs++) {
		size_t n = seg_len(s);
		if (!n || nsegs == 255) {
			fail(a, EINVAL, "malformed AML name");
			return;
		}
		s += n;
		if (*s == '.' && !*++s) {
			fail(a, EINVAL, "malformed AML name");
			return;
		}
	}
	aml_bytes(a, path, (size_t)(p - path));   /* '\' or '^' prefix as is */
	if (nsegs == 0)
		aml_byte(a, 0x00);                     /* NullName */
	else if (nsegs == 2)
		aml_byte(a, AML_DUAL_NAME);
	else if (nsegs > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)nsegs);
	}
	while (*p) {
		size_t n = seg_len(p);
		emit_seg(a, p, n);
		p += n + (p[n] == '.');
	}
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME);
	aml_namestring(a, path);
}

void aml_name_integer(struct aml *a, const char *path, uint64_t v)
{
	aml_name(a, path);
	aml_integer(a, v);
}

void aml_name_eisaid(struct aml *a, const char *path, const char *id)
{
	aml_name(a, path);
	aml_eisaid(a, id);
}

void aml_name_string(struct aml *a, const char *path, const char *s)
{
	aml_name(a, path);
	aml_string(a, s);
}

static void open_body(struct aml *a, enum aml_open_kind kind)
{
	if (a->err)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		fail(a, E2BIG, "AML nested too deeply");
		return;
	}
	a->open[a->depth] = a->len;
	a->kind[a->depth] = kind;
	a->depth++;
}

void aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE);
	open_body(a, AML_OPEN_PKG);
	aml_namestring(a, path);
}

void aml_device_begin(struct aml *a, const char *path)
{
	const uint8_t op[2] = { AML_EXT_PFX, AML_EXT_DEVICE };
	aml_bytes(a, op, sizeof(op));
	open_body(a, AML_OPEN_PKG);
	aml_namestring(a, path);
}

void aml_method_begin(struct aml *a, const char *path, unsigned nargs, bool serialized)
{
	if (nargs > 7) {
		fail(a, EINVAL, "AML method with more than 7 arguments");
		return;
	}
	aml_byte(a, AML_METHOD);
	open_body(a, AML_OPEN_PKG);
	aml_namestring(a, path);
	aml_byte(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));   /* SyncLevel 0 */
}

void aml_package_begin(struct aml *a, uint8_t nelems)
{
	aml_byte(a, AML_PACKAGE);
	open_body(a, AML_OPEN_PKG);
	aml_byte(a, nelems);
}

void aml_buffer_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER);
	open_body(a, AML_OPEN_BUFFER);
}

void aml_end(struct aml *a)
{
	uint8_t prefix[4 + 9];
	size_t n = 0;

	if (a->err)
		return;
	if (!a->depth) {
		fail(a, EINVAL, "aml_end without an open object");
		return;
	}
	a->depth--;
	size_t at = a->open[a->depth];
	size_t body = a->len - at;
	uint8_t size_enc[9];
	size_t size_n = 0;

	/* A Buffer's BufferSize sits inside its PkgLength, before the bytes. */
	if (a->kind[a->depth] != AML_OPEN_PKG)
		size_n = integer_encode(body, size_enc);
	n = pkglen_encode(body + size_n, prefix);
	if (!n) {
		fail(a, E2BIG, "AML object longer than a PkgLength can say");
		return;
	}
	memcpy(prefix + n, size_enc, size_n);
	insert(a, at, prefix, n + size_n);
}

void aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN);
}

void aml_return_integer(struct aml *a, uint64_t v)
{
	aml_return(a);
	aml_integer(a, v);
}

void aml_restemplate_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER);
	open_body(a, AML_OPEN_RESTEMPLATE);
}

void aml_restemplate_end(struct aml *a)
{
	/* Checksum 0 means "treat as valid" (ACPI 6.x 6.4.2.9); it is what ASL
	 * compilers emit and what ACPICA writes back when it re-encodes a
	 * template, so a template round-trips through an OS unchanged. */
	static const uint8_t end[2] = { RES_END, 0 };

	if (a->err)
		return;
	if (!a->depth || a->kind[a->depth - 1] != AML_OPEN_RESTEMPLATE) {
		fail(a, EINVAL, "aml_restemplate_end without a template open");
		return;
	}
	aml_bytes(a, end, sizeof(end));
	aml_end(a);
}

/* Descriptors only make sense inside a template; catching misuse here keeps
 * a wrong call from producing AML that merely looks plausible. */
static int in_template(struct aml *a)
{
	if (a->err)
		return 0;
	if (!a->depth || a->kind[a->depth - 1] != AML_OPEN_RESTEMPLATE) {
		fail(a, EINVAL, "resource descriptor outside a ResourceTemplate");
		return 0;
	}
	return 1;
}

void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	uint8_t d[8] = { RES_IO, 0x01 /* 16-bit decode */ };

	if (!in_template(a))
		return;
	put_le(d + 2, 2, min);
	put_le(d + 4, 2, max);
	d[6] = align;
	d[7] = len;
	aml_bytes(a, d, sizeof(d));
}

void aml_res_irq_noflags(struct aml *a, unsigned irq)
{
	uint8_t d[3] = { RES_IRQ_NOFLAGS };

	if (!in_template(a))
		return;
	if (irq > 15) {
		fail(a, EINVAL, "IRQ descriptor for an IRQ above 15");
		return;
	}
	put_le(d + 1, 2, 1u << irq);
	aml_bytes(a, d, sizeof(d));
}

void aml_res_irq(struct aml *a, unsigned irq, bool level, bool active_low, bool shared)
{
	uint8_t d[4] = { RES_IRQ };

	if (!in_template(a))
		return;
	if (irq > 15) {
		fail(a, EINVAL, "IRQ descriptor for an IRQ above 15");
		return;
	}
	put_le(d + 1, 2, 1u << irq);
	d[3] = (uint8_t)((level ? 0 : 0x01) | (active_low ? 0x08 : 0) | (shared ? 0x10 : 0));
	aml_bytes(a, d, sizeof(d));
}

void aml_res_ext_irq(struct aml *a, unsigned flags, uint32_t gsi)
{
	uint8_t d[9] = { RES_EXT_IRQ, 6, 0 };

	if (!in_template(a))
		return;
	d[3] = (uint8_t)(flags & 0x0f);
	d[4] = 1;                              /* one interrupt in the table */
	put_le(d + 5, 4, gsi);
	aml_bytes(a, d, sizeof(d));
}

/* Word, DWord and QWord address space descriptors share one layout: tag,
 * length, type, flags, then granularity/min/max/translation/length. */
static void res_addr(struct aml *a, unsigned width, uint8_t type, uint8_t gflags,
		     uint8_t tflags, uint64_t min, uint64_t max)
{
	uint8_t d[6 + 5 * 8];
	uint64_t wmax = width == 8 ? UINT64_MAX : (1ull << (8 * width)) - 1;
	uint16_t dlen = (uint16_t)(3 + 5 * width);

	if (!in_template(a))
		return;
	/* The range length must fit the descriptor's width too. */
	if (min > max || max > wmax || max - min == wmax) {
		fail(a, EINVAL, "address descriptor with an empty or oversized range");
		return;
	}
	d[0] = width == 2 ? RES_WORD_ADDR : width == 4 ? RES_DWORD_ADDR : RES_QWORD_ADDR;
	put_le(d + 1, 2, dlen);
	d[3] = type;
	d[4] = (uint8_t)(gflags | ADDR_MIN_FIXED | ADDR_MAX_FIXED);
	d[5] = tflags;
	put_le(d + 6, width, 0);                   /* granularity */
	put_le(d + 6 + width, width, min);
	put_le(d + 6 + 2 * width, width, max);
	put_le(d + 6 + 3 * width, width, 0);       /* translation offset */
	put_le(d + 6 + 4 * width, width, max - min + 1);
	aml_bytes(a, d, 6 + 5 * (size_t)width);
}

void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
	res_addr(a, 2, ADDR_BUS, 0, 0, min, max);
}

void aml_res_dword_io(struct aml *a, uint32_t min, uint32_t max)
{
	/* Type-specific flags 3: EntireRange (ISA and non-ISA addresses). */
	res_addr(a, 4, ADDR_IO, 0, 0x03, min, max);
}

static uint8_t mem_tflags(bool cacheable)
{
	return (uint8_t)(0x01 /* read-write */ | (cacheable ? 0x02 : 0));
}

void aml_res_dword_mem(struct aml *a, bool producer, bool cacheable, uint32_t min, uint32_t max)
{
	res_addr(a, 4, ADDR_MEM, producer ? 0 : ADDR_CONSUMER, mem_tflags(cacheable), min, max);
}

void aml_res_qword_mem(struct aml *a, bool producer, bool cacheable, uint64_t min, uint64_t max)
{
	res_addr(a, 8, ADDR_MEM, producer ? 0 : ADDR_CONSUMER, mem_tflags(cacheable), min, max);
}
