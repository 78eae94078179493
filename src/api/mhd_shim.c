/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libmicrohttpd, loaded when the API is first used instead of at start-up:
 * it brings GnuTLS and a dozen more libraries, which would otherwise cost
 * every `vireo run` milliseconds and megabytes even without --api-socket.
 * These definitions stand in for the few MHD functions vireo calls and
 * forward to the library's own. The loaded table is process-wide state,
 * filled once under pthread_once and read-only after.
 */
#include <dlfcn.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>

#include "core/log.h"

#define MHD_SONAME "libmicrohttpd.so.12"

static struct {
	struct MHD_Daemon *(*start_va)(unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *,
				       MHD_AccessHandlerCallback, void *, va_list);
	void (*stop)(struct MHD_Daemon *);
	struct MHD_Response *(*from_buffer)(size_t, void *, enum MHD_ResponseMemoryMode);
	enum MHD_Result (*add_header)(struct MHD_Response *, const char *, const char *);
	void (*destroy)(struct MHD_Response *);
	const char *(*lookup)(struct MHD_Connection *, enum MHD_ValueKind, const char *);
	enum MHD_Result (*queue)(struct MHD_Connection *, unsigned int, struct MHD_Response *);
	int ok;
} mhd;
static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;

static void mhd_load(void)
{
	void *h = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		log_error("api", "cannot load %s: %s", MHD_SONAME, dlerror());
		return;
	}
	*(void **)&mhd.start_va = dlsym(h, "MHD_start_daemon_va");
	*(void **)&mhd.stop = dlsym(h, "MHD_stop_daemon");
	*(void **)&mhd.from_buffer = dlsym(h, "MHD_create_response_from_buffer");
	*(void **)&mhd.add_header = dlsym(h, "MHD_add_response_header");
	*(void **)&mhd.destroy = dlsym(h, "MHD_destroy_response");
	*(void **)&mhd.lookup = dlsym(h, "MHD_lookup_connection_value");
	*(void **)&mhd.queue = dlsym(h, "MHD_queue_response");
	mhd.ok = mhd.start_va && mhd.stop && mhd.from_buffer && mhd.add_header && mhd.destroy &&
		 mhd.lookup && mhd.queue;
	if (!mhd.ok)
		log_error("api", "%s lacks a function vireo needs", MHD_SONAME);
}

static int loaded(void)
{
	pthread_once(&mhd_once, mhd_load);
	return mhd.ok;
}

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
				    void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	struct MHD_Daemon *d;
	va_list ap;

	if (!loaded())
		return NULL;
	va_start(ap, dh_cls);
	d = mhd.start_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

/* The rest are only reachable once a daemon started, so the table is set. */
void MHD_stop_daemon(struct MHD_Daemon *d)
{
	if (loaded())
		mhd.stop(d);
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buf,
						     enum MHD_ResponseMemoryMode mode)
{
	return loaded() ? mhd.from_buffer(size, buf, mode) : NULL;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *r, const char *h, const char *v)
{
	return loaded() ? mhd.add_header(r, h, v) : MHD_NO;
}

void MHD_destroy_response(struct MHD_Response *r)
{
	if (loaded())
		mhd.destroy(r);
}

const char *MHD_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind k,
					const char *key)
{
	return loaded() ? mhd.lookup(c, k, key) : NULL;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int status,
				   struct MHD_Response *r)
{
	return loaded() ? mhd.queue(c, status, r) : MHD_NO;
}
