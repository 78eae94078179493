/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the routes and the HTTP server, not part of the API. */
#ifndef VIREO_API_INTERNAL_H
#define VIREO_API_INTERNAL_H

/* The methods a known path accepts, "GET, PUT" style, for the Allow header
 * of a 405; NULL for an unknown path. */
const char *api_allowed_methods(const char *path);

/* GET /vm/config reports at most this many drives. */
#define API_MAX_DRIVES 64

#endif
