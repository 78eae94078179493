/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl, loaded when a client verb (vireo pause, ...) first needs it
 * instead of at start-up: with TLS, Kerberos and LDAP it is thirty-odd
 * libraries that `vireo run` would otherwise map on every boot. These
 * definitions stand in for the libcurl functions vireo calls. The loaded
 * table is process-wide state, filled once under pthread_once.
 */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#define CURL_SONAME "libcurl.so.4"

static struct {
	CURLcode (*global_init)(long);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	int ok;
} cu;
static pthread_once_t cu_once = PTHREAD_ONCE_INIT;

static void cu_load(void)
{
	void *h = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		fprintf(stderr, "vireo: cannot load %s: %s\n", CURL_SONAME, dlerror());
		return;
	}
	*(void **)&cu.global_init = dlsym(h, "curl_global_init");
	*(void **)&cu.global_cleanup = dlsym(h, "curl_global_cleanup");
	*(void **)&cu.easy_init = dlsym(h, "curl_easy_init");
	*(void **)&cu.easy_cleanup = dlsym(h, "curl_easy_cleanup");
	*(void **)&cu.easy_perform = dlsym(h, "curl_easy_perform");
	*(void **)&cu.easy_setopt = dlsym(h, "curl_easy_setopt");
	*(void **)&cu.easy_getinfo = dlsym(h, "curl_easy_getinfo");
	*(void **)&cu.easy_strerror = dlsym(h, "curl_easy_strerror");
	*(void **)&cu.slist_append = dlsym(h, "curl_slist_append");
	*(void **)&cu.slist_free_all = dlsym(h, "curl_slist_free_all");
	cu.ok = cu.global_init && cu.global_cleanup && cu.easy_init && cu.easy_cleanup &&
		cu.easy_perform && cu.easy_setopt && cu.easy_getinfo && cu.easy_strerror &&
		cu.slist_append && cu.slist_free_all;
}

static int loaded(void)
{
	pthread_once(&cu_once, cu_load);
	return cu.ok;
}

CURLcode curl_global_init(long flags)
{
	return loaded() ? cu.global_init(flags) : CURLE_FAILED_INIT;
}

void curl_global_cleanup(void)
{
	if (loaded())
		cu.global_cleanup();
}

CURL *curl_easy_init(void)
{
	return loaded() ? cu.easy_init() : NULL;
}

void curl_easy_cleanup(CURL *c)
{
	if (loaded())
		cu.easy_cleanup(c);
}

CURLcode curl_easy_perform(CURL *c)
{
	return loaded() ? cu.easy_perform(c) : CURLE_FAILED_INIT;
}

/* The argument's type follows from the option number's range (curl.h's
 * CURLOPTTYPE_*), so it is read and passed on with that type. */
CURLcode curl_easy_setopt(CURL *c, CURLoption opt, ...)
{
	CURLcode rc;
	va_list ap;

	if (!loaded())
		return CURLE_FAILED_INIT;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = cu.easy_setopt(c, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		rc = cu.easy_setopt(c, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		rc = cu.easy_setopt(c, opt, va_arg(ap, void (*)(void)));
	else if (opt < CURLOPTTYPE_BLOB)
		rc = cu.easy_setopt(c, opt, va_arg(ap, curl_off_t));
	else
		rc = cu.easy_setopt(c, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

/* Every CURLINFO_* takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	CURLcode rc;
	va_list ap;

	if (!loaded())
		return CURLE_FAILED_INIT;
	va_start(ap, info);
	rc = cu.easy_getinfo(c, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

const char *curl_easy_strerror(CURLcode code)
{
	return loaded() ? cu.easy_strerror(code) : "libcurl is not available";
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s)
{
	return loaded() ? cu.slist_append(l, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *l)
{
	if (loaded())
		cu.slist_free_all(l);
}
