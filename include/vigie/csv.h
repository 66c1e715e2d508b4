/* Streaming CSV reader on top of libcsv.
 *
 * Used by the command-line importer and by the Lua `ctx:csv` binding. The
 * input is read in chunks (64 KiB by default) and handed out one row at a
 * time, so a file of any size is read in bounded memory: about one chunk
 * plus the rows that chunk completes, and never more than a field of
 * `max_field` bytes.
 *
 * Accepted input: RFC 4180 quoting (separators, `""` and line breaks inside
 * quotes), LF, CRLF or CR line ends, an optional UTF-8 BOM, blank lines
 * (skipped). Following libcsv, spaces and tabs around an unquoted field are
 * trimmed; inside quotes they are kept. A quote inside an unquoted field is
 * data (`12" screen`). Text after a closing quote (`"ab"x`) and a quoted
 * field still open at end of input are errors, located as
 * "name:line:col: ...".
 *
 * Positions: lines are the 1-based physical lines of the input (skipped
 * lines, blank lines and line breaks inside quoted fields all count);
 * columns are 1-based and count characters (UTF-8 code points), not bytes,
 * on that physical line.
 *
 * Ownership: a vg_csv is allocated by vg_csv_open_* and freed by
 * vg_csv_close, which frees every row, field and header name it handed out.
 * Rows point into reader-owned memory that stays valid until the next call
 * to vg_csv_next or vg_csv_close on the same reader. */
#ifndef VIGIE_CSV_H
#define VIGIE_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "vigie/error.h"

typedef struct vg_csv vg_csv;

typedef enum vg_csv_encoding {
	VG_CSV_UTF8 = 0,   /* checked: invalid UTF-8 is an error */
	VG_CSV_LATIN1 = 1, /* converted to UTF-8; bytes 0x80-0x9F are read as
	                    * Windows-1252 (€, ’, œ...), as browsers do for
	                    * "latin1", since C1 controls never occur in
	                    * real files and French exports are often cp1252 */
} vg_csv_encoding;

/* Defaults used when the matching option is 0. */
#define VG_CSV_MAX_FIELD_DEFAULT ((size_t)1 << 20) /* 1 MiB */
#define VG_CSV_MAX_FIELDS_DEFAULT 16384            /* Excel's column limit */
#define VG_CSV_READ_SIZE_DEFAULT ((size_t)64 << 10)

/* All-zero (or a NULL pointer) means: auto-detect the separator, no
 * header, skip nothing, UTF-8, default limits. */
typedef struct vg_csv_opts {
	/* Field separator; 0 auto-detects among ';' ',' TAB '|' by counting
	 * them outside quotes on the first non-blank line after skip_lines
	 * (ties go to that order; none found means ','). A quote, CR, LF or
	 * a byte >= 0x80 is refused with VG_EINVAL. */
	char sep;
	/* The first row (after skip_lines) holds column names: it is read at
	 * open, exposed by vg_csv_header and not returned by vg_csv_next. */
	bool header;
	/* Physical lines dropped before any parsing (INSEE title blocks);
	 * quotes in them are ignored. */
	size_t skip_lines;
	vg_csv_encoding encoding;
	/* Longest field in bytes after decoding; longer is VG_ETOOBIG. */
	size_t max_field;
	/* Most fields in one row; more is VG_ETOOBIG. */
	size_t max_fields;
	/* Bytes read per chunk. Only tests need to change it (tiny chunks
	 * put every construct across a chunk boundary). */
	size_t read_size;
} vg_csv_opts;

typedef struct vg_csv_field {
	const char *ptr; /* NUL-terminated, never NULL ("" when empty); holds
	                  * no other NUL (NUL bytes in the input are refused) */
	size_t len;      /* bytes, without the terminating NUL */
	long line;       /* physical line where the field starts */
	long col;        /* column of its first character (the opening quote
	                  * if quoted) */
	bool null;       /* empty and unquoted (`a,,b`), as opposed to `""`:
	                  * some producers use the difference */
} vg_csv_field;

typedef struct vg_csv_row {
	size_t nfields;              /* may differ from the header's count:
	                              * checking is the caller's job */
	const vg_csv_field *fields;  /* nfields entries */
	long line;                   /* physical line where the row starts */
} vg_csv_row;

/* Open `path` for reading. `path` is copied and used as the `where` of
 * errors. On success *out is a reader to pass to vg_csv_close; on failure
 * *out is NULL and the code is VG_ENOTFOUND (no such file), VG_EIO,
 * VG_EINVAL (bad option), VG_ENOMEM, or any error of vg_csv_next met while
 * reading the header or detecting the separator. */
int vg_csv_open_file(vg_csv **out, const char *path, const vg_csv_opts *opts,
		     vg_error *err);

/* Same on `len` bytes at `data`, which are not copied: the caller keeps
 * them alive and unchanged until vg_csv_close. `name` (copied; NULL means
 * "<memory>") is the `where` of errors, e.g. the URL the data came from. */
int vg_csv_open_mem(vg_csv **out, const void *data, size_t len,
		    const char *name, const vg_csv_opts *opts, vg_error *err);

/* Pull the next data row. Returns 1 and sets *row_out, 0 at end of input
 * (*row_out = NULL), or a negative code (*row_out = NULL): VG_EPARSE for
 * malformed quoting, invalid UTF-8 or a NUL byte; VG_ETOOBIG past
 * max_field/max_fields; VG_EIO; VG_ENOMEM. Rows completed before an error
 * are returned first; once an error is returned, every later call returns
 * it again. The row stays valid until the next call on `c`. */
int vg_csv_next(vg_csv *c, vg_csv_row **row_out, vg_error *err);

/* Column names read at open (trimmed like any field), or NULL with *n = 0
 * without a header or on empty input. Owned by the reader. `n` may be
 * NULL. */
const char *const *vg_csv_header(const vg_csv *c, size_t *n);

/* Index of the first header column named exactly `name`, or VG_ENOTFOUND
 * (also without a header). */
int vg_csv_field_index(const vg_csv *c, const char *name);

/* 1-based column and physical line of field i of a row, for located
 * errors: vg_error_at(err, code, vg_csv_name(c), vg_csv_field_line(row, i),
 * vg_csv_field_col(row, i), ...). 0 when i is out of range. */
long vg_csv_field_col(const vg_csv_row *row, size_t i);
long vg_csv_field_line(const vg_csv_row *row, size_t i);

/* The separator in use (given or detected). */
char vg_csv_separator(const vg_csv *c);

/* The path or name errors are reported against. Owned by the reader. */
const char *vg_csv_name(const vg_csv *c);

/* Free the reader and everything it handed out. Safe on NULL. */
void vg_csv_close(vg_csv *c);

#endif
