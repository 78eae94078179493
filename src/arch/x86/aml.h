/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small emitter of ACPI Machine Language (ACPI 6.x, chapter 20) for the
 * DSDT vireo hands its guests. It writes into a caller's bounded buffer, or
 * only measures when the buffer is NULL, so a table's size is known before
 * any guest memory is touched. Errors are sticky: the first one is kept in
 * aml->err and every later call does nothing, so a caller checks once at the
 * end.
 *
 * Nested objects (Scope, Device, Method, Package, Buffer) are opened with a
 * *_begin call and closed with aml_end(); their PkgLength is inserted on
 * close, in the shortest of its 1-4 byte encodings.
 */
#ifndef VIREO_ARCH_X86_AML_H
#define VIREO_ARCH_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

enum aml_open_kind { AML_OPEN_PKG, AML_OPEN_BUFFER, AML_OPEN_RESTEMPLATE };

struct aml {
	uint8_t *buf;              /* NULL: measure only */
	size_t cap;                /* bytes available at buf */
	size_t len;                /* bytes emitted (or that would be) */
	int err;                   /* 0 or the first negative errno */
	const char *why;           /* static text for err, NULL if none */
	unsigned depth;
	size_t open[AML_MAX_DEPTH];        /* offset where each open body starts */
	enum aml_open_kind kind[AML_MAX_DEPTH];
};

void aml_init(struct aml *a, void *buf, size_t cap);
/* 0, or the first error with a->why set: -ENOSPC (buffer full), -EINVAL
 * (bad name, value or call order; also an object still open), -E2BIG
 * (nesting deeper than AML_MAX_DEPTH, or an object past the 28 bits a
 * PkgLength can hold). */
int aml_finish(struct aml *a);

/* Raw bytes; the building block for everything else. */
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);

/* A NameString: optional '\' or '^'... prefix, then NameSegs separated by
 * '.'; each segment has 1-4 characters and is padded with '_'. */
void aml_namestring(struct aml *a, const char *path);

/* Data objects. aml_integer picks Zero/One or the shortest prefix. */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* A 7-character PNP/EISA id ("PNP0A08") compressed into a DWord. */
void aml_eisaid(struct aml *a, const char *id);
/* The 32-bit value of an EisaId, or -1 if id is malformed. */
int64_t aml_eisaid_value(const char *id);

/* Name(path, <object emitted next by the caller>). */
void aml_name(struct aml *a, const char *path);
/* Name(path, integer) and Name(path, EisaId(id)). */
void aml_name_integer(struct aml *a, const char *path, uint64_t v);
void aml_name_eisaid(struct aml *a, const char *path, const char *id);
void aml_name_string(struct aml *a, const char *path, const char *s);

/* Nested objects, closed by aml_end(). */
void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *path);
void aml_method_begin(struct aml *a, const char *path, unsigned nargs, bool serialized);
void aml_package_begin(struct aml *a, uint8_t nelems);
void aml_buffer_begin(struct aml *a);
void aml_end(struct aml *a);

/* Return(<object emitted next>) and Return(integer). */
void aml_return(struct aml *a);
void aml_return_integer(struct aml *a, uint64_t v);

/* ResourceTemplate(): a Buffer whose bytes are resource descriptors
 * (ACPI 6.x section 6.4), closed by aml_restemplate_end() which appends the
 * End Tag (checksum byte 0: "valid", as ASL compilers emit it). */
void aml_restemplate_begin(struct aml *a);
void aml_restemplate_end(struct aml *a);

/* IO(Decode16, min, max, align, len) */
void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* IRQNoFlags(){irq}: edge, active high, exclusive; irq 0..15. */
void aml_res_irq_noflags(struct aml *a, unsigned irq);
/* IRQ(level/edge, polarity, shared){irq} with the explicit flags byte. */
void aml_res_irq(struct aml *a, unsigned irq, bool level, bool active_low, bool shared);

enum aml_irq_flags {
	AML_IRQ_CONSUMER   = 1u << 0,
	AML_IRQ_EDGE       = 1u << 1,
	AML_IRQ_ACTIVE_LOW = 1u << 2,
	AML_IRQ_SHARED     = 1u << 3,
};
/* Interrupt(...){gsi}: the Extended Interrupt descriptor, one interrupt. */
void aml_res_ext_irq(struct aml *a, unsigned flags, uint32_t gsi);

/* Address space descriptors, always with MinFixed/MaxFixed and positive
 * decode, granularity 0 and no translation: len = max - min + 1. */
void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_res_dword_io(struct aml *a, uint32_t min, uint32_t max);
/* producer: the window a bridge passes down (vs a device's own range). */
void aml_res_dword_mem(struct aml *a, bool producer, bool cacheable, uint32_t min, uint32_t max);
void aml_res_qword_mem(struct aml *a, bool producer, bool cacheable, uint64_t min, uint64_t max);

#endif
