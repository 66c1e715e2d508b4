/* Sources: the bytes a plugin reads, and the container formats it finds
 * them in. No Lua here: core/lua/ wraps these for `ctx:fetch`, `ctx:zip`
 * and `ctx:xlsx`, and any other caller (a fuzz target, a tool) may use
 * them as they are.
 *
 *   - fetch: local files under allowed roots (realpath-checked, so a
 *     symlink pointing out is refused), `file://` URLs, http(s) through
 *     libcurl with an ETag / Last-Modified cache;
 *   - zip: list the members of an archive, read one member;
 *   - xlsx: one worksheet of a workbook as rows of text cells.
 */
#ifndef VIGIE_SOURCE_H
#define VIGIE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "vigie/error.h"

/* Where the bytes of a source are: a local file (read in place) or memory
 * owned by the source. */
typedef struct vg_source {
	char *name;	     /* URL or path, for messages; owned */
	char *path;	     /* local file, or NULL; owned */
	unsigned char *data; /* owned, when path is NULL */
	size_t len;
	char checksum[72]; /* "sha256:..." */
} vg_source;

typedef struct vg_source_opts {
	const char *const *roots; /* local directories that may be read */
	size_t nroots;
	const char *cache_dir;	    /* download cache; NULL: no cache (the body
				       is kept in memory) */
	size_t max;		    /* bytes of one source; required (> 0) */
	double deadline;	    /* CLOCK_MONOTONIC seconds; 0: none */
	const volatile int *cancel; /* non-zero: stop; may be NULL */
} vg_source_opts;

/* Resolve and fetch `what` (http(s) URL, file:// URL, absolute path or a
 * path relative to a root). Local files must lie under one of the roots
 * (after resolving symlinks): else VG_ESANDBOX. A name with a NUL byte,
 * another scheme: VG_ESANDBOX. Larger than max: VG_ETOOBIG. HTTP errors,
 * the deadline and cancel are VG_EIO / VG_ETIMEOUT / VG_ECANCELED. On
 * success *out owns its strings and buffer (vg_source_clear). */
int vg_source_fetch(const char *what, const vg_source_opts *o, vg_source *out,
		    vg_error *err);
void vg_source_clear(vg_source *s); /* safe on a zeroed source */

/* The whole content (for JSON, xlsx, zip): memory sources return their
 * buffer (*owned false), files are read (at most max bytes, VG_ETOOBIG
 * beyond) into a buffer owned by the caller (*owned true), NUL-terminated
 * one byte past *len. */
int vg_source_bytes(const vg_source *s, size_t max, unsigned char **data,
		    size_t *len, bool *owned, vg_error *err);

/* ---- zip ---------------------------------------------------------------- */

/* Names of the members of a zip archive (`name` is for messages): calls
 * cb for each. VG_EPARSE when it is not a zip. */
int vg_zip_list(const unsigned char *data, size_t len, const char *name,
		void (*cb)(void *ud, const char *member), void *ud,
		vg_error *err);
/* One member's bytes (malloc'd, NUL-terminated, caller frees), at most
 * max bytes: VG_ETOOBIG beyond, VG_ENOTFOUND for an unknown member. */
int vg_zip_read(const unsigned char *data, size_t len, const char *name,
		const char *member, size_t max, unsigned char **out,
		size_t *outlen, vg_error *err);

/* ---- xlsx --------------------------------------------------------------- */

/* A parsed worksheet: rows of cells as text (shared strings resolved,
 * numbers as written in the file, booleans "TRUE"/"FALSE"); empty cells
 * are NULL. */
typedef struct vg_xlsx_row {
	long line; /* the sheet's 1-based row number */
	size_t ncells;
	char **cells;
} vg_xlsx_row;
typedef struct vg_xlsx_sheet {
	size_t nrows;
	vg_xlsx_row *rows;
} vg_xlsx_sheet;

/* Read sheet `sheet` (its name, or "#3" for the third) of a workbook.
 * `max` bounds each inflated XML part: VG_ETOOBIG beyond. VG_ENOTFOUND
 * names the sheets that exist. On error *out is empty. */
int vg_xlsx_read(const unsigned char *data, size_t len, const char *name,
		 const char *sheet, size_t max, vg_xlsx_sheet *out,
		 vg_error *err);
void vg_xlsx_free(vg_xlsx_sheet *s);

#endif
