/* Streaming CSV reader: libcsv does the quoting, this file does chunked
 * input, decoding, separator detection, positions and the row queue.
 *
 * Data path: read a chunk -> strip BOM / convert Latin-1 -> drop
 * skip_lines -> buffer the first line to detect the separator -> libcsv.
 * libcsv's callbacks copy each field into `buf` (the row arena) and each
 * finished row into `rows`; vg_csv_next hands rows out from that queue and
 * refills it only once it is empty, so a row stays valid until the next
 * call.
 *
 * libcsv reports no positions, so we keep our own. Its callbacks only ever
 * fire on a separator, CR or LF byte, so we feed it segments that end at
 * such bytes (or at csv_fini): when a callback runs we know which byte
 * triggered it, and where the segment began if libcsv rejects a byte. */
#include "vigie/csv.h"

#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libcsv grows its field buffer by this much at a time; its default (128)
 * makes a long field cost many reallocs. */
#define VG__CSV_BLOCK 4096
/* Longest first line we buffer to detect the separator before deciding
 * with what we have. */
#define VG__CSV_LOOK_MAX ((size_t)1 << 20)
/* STRICT and STRICT_FINI: malformed quoting is an error, never a silently
 * merged field (an open quote would swallow the rest of the file); see
 * feed_segment for the one strict error we let through. APPEND_NULL lets
 * on_field copy the terminator with the data; EMPTY_IS_NULL tells `a,,b`
 * from `a,"",b`. */
#define VG__CSV_OPTS                                                         \
	(CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL)

enum vg__csv_phase {
	PHASE_SKIP,   /* dropping skip_lines */
	PHASE_DETECT, /* buffering the first line to choose the separator */
	PHASE_PARSE,  /* feeding libcsv */
};

/* What the next significant byte starts. libcsv skips blank lines and
 * leading blanks before a row, and leading blanks before a field; a field
 * or row starts at the first byte it does not skip. */
enum vg__csv_want {
	WANT_NONE,
	WANT_FIELD,
	WANT_ROW,
};

/* A queued field: an offset, not a pointer, because `buf` may move while
 * the queue fills. */
struct vg__csv_frec {
	size_t off;
	size_t len;
	long line;
	long col;
	bool null;
};

struct vg__csv_rrec {
	size_t first; /* index into frecs */
	size_t n;
	long line;
};

struct vg_csv {
	struct csv_parser p;
	char *name; /* owned */

	/* Input: either a FILE (owned) or the caller's buffer (borrowed). */
	FILE *fp;
	const unsigned char *mem;
	size_t mem_len;
	size_t mem_pos;
	unsigned char *raw; /* read buffer for fp, read_size bytes */
	unsigned char *conv; /* Latin-1 -> UTF-8 output, 3 * read_size */
	size_t read_size;
	bool started; /* sniff() done */
	unsigned char head[3]; /* bytes sniff() read from fp, not yet fed */
	size_t head_len;
	bool eof;     /* input exhausted and libcsv finished */

	/* Options, defaults applied. */
	unsigned char sep;
	bool header;
	size_t skip_lines;
	vg_csv_encoding enc;
	size_t max_field;
	size_t max_fields;

	/* First-line buffer for separator detection. */
	enum vg__csv_phase phase;
	unsigned char *look;
	size_t look_len;
	size_t look_cap;

	/* Position of the next input byte. */
	long line;
	long nchars;  /* characters already seen on this line */
	bool prev_cr; /* an LF right after a CR ends no further line */
	long seg_line, seg_col; /* start of the segment being fed */
	enum vg__csv_want want;
	long row_line;          /* start of the row being parsed */
	long fld_line, fld_col; /* start of the field being parsed */

	/* Row queue: field bytes (each NUL-terminated) in buf, fields in
	 * frecs, rows in rows. The row being parsed is the tail: its fields
	 * start at frecs[part_f] and its bytes at buf[part_b]. */
	char *buf;
	size_t buf_len, buf_cap;
	struct vg__csv_frec *frecs;
	size_t nfrecs, frecs_cap;
	struct vg__csv_rrec *rows;
	size_t nrows, rows_cap;
	size_t next_row;
	size_t part_f, part_b;

	/* The row handed out last. */
	vg_csv_row row;
	vg_csv_field *out;
	size_t out_cap;

	/* Header: names points into names_buf (one allocation). */
	char **names;
	char *names_buf;
	size_t nnames;

	/* First error; sticky. cb_rc is set by libcsv callbacks, which
	 * cannot stop libcsv, so later callbacks check it and do nothing. */
	int rc;
	int cb_rc;
	vg_error e;
};

/* Grow the array whose pointer is at `pp` (elements of `size`) to hold at
 * least `need`; doubling keeps appends amortised O(1). The pointer is
 * read and written with memcpy so one helper serves every element type
 * without type-punning through void **. */
static int grow(void *pp, size_t *cap, size_t need, size_t size)
{
	void *p, *q;
	size_t n;

	if (need <= *cap)
		return 0;
	n = *cap ? *cap : 64;
	while (n < need) {
		if (n > SIZE_MAX / 2 / size)
			return VG_ENOMEM;
		n *= 2;
	}
	memcpy(&p, pp, sizeof(p));
	q = realloc(p, n * size);
	if (!q)
		return VG_ENOMEM;
	memcpy(pp, &q, sizeof(q));
	*cap = n;
	return 0;
}

/* Record the first error and return its code. */
static int fail(vg_csv *c, int code, long line, long col, const char *fmt,
		...) __attribute__((format(printf, 5, 6)));

static int fail(vg_csv *c, int code, long line, long col, const char *fmt,
		...)
{
	char msg[sizeof(c->e.msg)];
	va_list ap;

	if (c->rc)
		return c->rc;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->rc = vg_error_at(&c->e, code, c->name, line, col, "%s", msg);
	return c->rc;
}

/* ---- positions ---------------------------------------------------- */

static inline void advance(vg_csv *c, unsigned char b)
{
	if (b == '\n') {
		if (!c->prev_cr)
			c->line++;
		c->nchars = 0;
		c->prev_cr = false;
	} else if (b == '\r') {
		c->line++;
		c->nchars = 0;
		c->prev_cr = true;
	} else {
		c->prev_cr = false;
		if ((b & 0xC0) != 0x80) /* not a UTF-8 continuation byte */
			c->nchars++;
	}
}

static inline bool is_blank(const vg_csv *c, unsigned char b)
{
	/* The test libcsv uses to skip blanks; a tab separator is data. */
	return (b == ' ' || b == '\t') && b != c->sep;
}

/* Called on every byte before libcsv sees it: if a row or field is due,
 * the first byte libcsv will not skip is where it starts. */
static inline void mark_start(vg_csv *c, unsigned char b)
{
	if (c->want == WANT_ROW) {
		if (b == '\r' || b == '\n' || is_blank(c, b))
			return;
		c->row_line = c->line;
	} else if (is_blank(c, b)) {
		return;
	}
	c->fld_line = c->line;
	c->fld_col = c->nchars + 1;
	c->want = WANT_NONE;
}

/* ---- libcsv callbacks -------------------------------------------- */

/* Offset of the first byte that is not valid UTF-8, or n. Rejects
 * overlong forms, surrogates and code points past U+10FFFF. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char b = s[i];
		size_t k;
		uint32_t cp;

		if (b < 0x80) {
			i++;
			continue;
		} else if (b >= 0xC2 && b <= 0xDF) {
			k = 1;
			cp = b & 0x1F;
		} else if (b >= 0xE0 && b <= 0xEF) {
			k = 2;
			cp = b & 0x0F;
		} else if (b >= 0xF0 && b <= 0xF4) {
			k = 3;
			cp = b & 0x07;
		} else {
			return i;
		}
		if (n - i <= k)
			return i;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
		    || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
			return i;
		i += k + 1;
	}
	return n;
}

static void on_field(void *data, size_t len, void *ctx)
{
	vg_csv *c = ctx;
	const unsigned char *s = data;

	if (c->cb_rc)
		return;
	/* A field ending at end of input ("a,b," EOF) was never marked. */
	if (c->want != WANT_NONE) {
		if (c->want == WANT_ROW)
			c->row_line = c->line;
		c->fld_line = c->line;
		c->fld_col = c->nchars + 1;
	}
	c->want = WANT_FIELD;

	size_t idx = c->nfrecs - c->part_f;
	if (idx >= c->max_fields) {
		c->cb_rc = fail(c, VG_ETOOBIG, c->fld_line, c->fld_col,
				"row has more than %zu fields", c->max_fields);
		return;
	}
	if (len > c->max_field) {
		c->cb_rc = fail(c, VG_ETOOBIG, c->fld_line, c->fld_col,
				"field %zu longer than %zu bytes", idx + 1,
				c->max_field);
		return;
	}
	if (s && memchr(s, 0, len)) {
		/* Nearly always a UTF-16 file: say so rather than truncate. */
		c->cb_rc = fail(c, VG_EPARSE, c->fld_line, c->fld_col,
				"NUL byte in field %zu (UTF-16 input? convert "
				"it to UTF-8)", idx + 1);
		return;
	}
	if (s && c->enc == VG_CSV_UTF8) {
		size_t bad = utf8_check(s, len);
		if (bad < len) {
			c->cb_rc = fail(c, VG_EPARSE, c->fld_line, c->fld_col,
					"invalid UTF-8 (byte 0x%02X) in field "
					"%zu; if the file is Latin-1, say so "
					"in the encoding option", s[bad],
					idx + 1);
			return;
		}
	}

	if (grow(&c->buf, &c->buf_cap, c->buf_len + len + 1, 1)
	    || grow(&c->frecs, &c->frecs_cap, c->nfrecs + 1,
		    sizeof(*c->frecs))) {
		c->cb_rc = fail(c, VG_ENOMEM, 0, 0, "out of memory");
		return;
	}
	if (s) /* CSV_APPEND_NULL: copy libcsv's terminator with the data */
		memcpy(c->buf + c->buf_len, s, len + 1);
	else /* CSV_EMPTY_IS_NULL gave no buffer for an unquoted empty field */
		c->buf[c->buf_len] = '\0';
	c->frecs[c->nfrecs++] = (struct vg__csv_frec){
		.off = c->buf_len,
		.len = len,
		.line = c->fld_line,
		.col = c->fld_col,
		.null = s == NULL,
	};
	c->buf_len += len + 1;
}

static void on_row(int term, void *ctx)
{
	vg_csv *c = ctx;

	if (c->cb_rc)
		return;
	if (grow(&c->rows, &c->rows_cap, c->nrows + 1,
		 sizeof(*c->rows))) {
		c->cb_rc = fail(c, VG_ENOMEM, 0, 0, "out of memory");
		return;
	}
	c->rows[c->nrows++] = (struct vg__csv_rrec){
		.first = c->part_f,
		.n = c->nfrecs - c->part_f,
		.line = c->row_line,
	};
	c->part_f = c->nfrecs;
	c->part_b = c->buf_len;
	c->want = WANT_ROW;
}

/* ---- feeding libcsv ---------------------------------------------- */

/* Count characters (UTF-8 lead bytes) in s[0..n). */
static long count_chars(const unsigned char *s, size_t n)
{
	long k = 0;

	for (size_t i = 0; i < n; i++)
		k += (s[i] & 0xC0) != 0x80;
	return k;
}

/* Hand one segment to libcsv; s[0] is at (seg_line, seg_col). */
static int feed_segment(vg_csv *c, const unsigned char *s, size_t n)
{
	while (n) {
		size_t used = csv_parse(&c->p, s, n, on_field, on_row, c);

		if (c->cb_rc)
			return c->cb_rc;
		if (used == n)
			break;

		int perr = csv_error(&c->p);
		if (perr == CSV_ENOMEM)
			return fail(c, VG_ENOMEM, 0, 0, "out of memory");
		if (perr == CSV_ETOOBIG)
			return fail(c, VG_ETOOBIG, c->fld_line, c->fld_col,
				    "field too large");
		/* CSV_EPARSE: s[used] is the offending byte. A segment holds
		 * no line break before its last byte, and libcsv never
		 * rejects a CR, LF or separator, so it is on seg_line. */
		long col = c->seg_col + count_chars(s, used);
		if (c->p.quoted)
			return fail(c, VG_EPARSE, c->seg_line, col,
				    "text after the closing quote of the "
				    "field starting at column %ld (a quote "
				    "inside a quoted field must be doubled)",
				    c->fld_col);
		/* The other strict error is a quote inside an unquoted field.
		 * Real data has them (12" screens, 37°36'37.8"N, and so does
		 * csv-spectrum) and they are unambiguous, so take it as data,
		 * as libcsv's lax mode would, and stay strict for the rest:
		 * lax mode would also let text after a closing quote reopen
		 * the field and swallow the following rows. */
		csv_set_opts(&c->p, VG__CSV_OPTS & ~CSV_STRICT);
		size_t one = csv_parse(&c->p, s + used, 1, on_field, on_row, c);
		csv_set_opts(&c->p, VG__CSV_OPTS);
		if (one != 1)
			return fail(c, VG_ENOMEM, 0, 0, "out of memory");
		c->seg_col += count_chars(s, used + 1);
		s += used + 1;
		n -= used + 1;
	}
	/* A quoted field grows across segments without any callback: stop
	 * it here rather than let libcsv buffer without bound. */
	if (csv_get_buffer_size(&c->p) > c->max_field + 2 * VG__CSV_BLOCK)
		return fail(c, VG_ETOOBIG, c->fld_line, c->fld_col,
			    "field longer than %zu bytes", c->max_field);
	return 0;
}

static int parse_bytes(vg_csv *c, const unsigned char *s, size_t n)
{
	const unsigned char sep = c->sep;
	size_t seg = 0;
	int rc;

	for (size_t i = 0; i < n; i++) {
		unsigned char b = s[i];

		if (i == seg) {
			c->seg_line = c->line;
			c->seg_col = c->nchars + 1;
		}
		if (c->want != WANT_NONE)
			mark_start(c, b);
		if (b == sep || b == '\n' || b == '\r') {
			rc = feed_segment(c, s + seg, i + 1 - seg);
			if (rc)
				return rc;
			seg = i + 1;
		}
		advance(c, b);
	}
	if (seg < n)
		return feed_segment(c, s + seg, n - seg);
	return 0;
}

/* ---- separator detection ----------------------------------------- */

static const unsigned char sep_candidates[] = {';', ',', '\t', '|'};

/* Choose the separator from the first non-blank line of look[]: the
 * candidate seen most often outside quotes. Returns false when that line
 * is not complete yet and more input may come. */
static bool detect_sep(vg_csv *c, bool final)
{
	size_t cnt[sizeof(sep_candidates)] = {0};
	bool inq = false, content = false, done = false;

	for (size_t i = 0; i < c->look_len && !done; i++) {
		unsigned char b = c->look[i];

		if (b == '"') {
			/* "" toggles twice: right for escaped quotes too. */
			inq = !inq;
			content = true;
		} else if (inq) {
			continue;
		} else if (b == '\r' || b == '\n') {
			if (content)
				done = true;
			else
				memset(cnt, 0, sizeof(cnt));
		} else {
			if (b != ' ' && b != '\t')
				content = true;
			for (size_t k = 0; k < sizeof(sep_candidates); k++)
				cnt[k] += b == sep_candidates[k];
		}
	}
	if (!done && !final && c->look_len < VG__CSV_LOOK_MAX)
		return false;

	size_t best = 0;
	for (size_t k = 1; k < sizeof(sep_candidates); k++)
		if (cnt[k] > cnt[best])
			best = k;
	c->sep = cnt[best] ? sep_candidates[best] : ',';
	csv_set_delim(&c->p, c->sep);
	return true;
}

static int start_parse(vg_csv *c)
{
	int rc = 0;

	c->phase = PHASE_PARSE;
	if (c->look_len)
		rc = parse_bytes(c, c->look, c->look_len);
	free(c->look);
	c->look = NULL;
	c->look_len = c->look_cap = 0;
	return rc;
}

/* Decoded input goes through the phases in order. */
static int feed(vg_csv *c, const unsigned char *s, size_t n)
{
	if (c->phase == PHASE_SKIP) {
		size_t i = 0;

		while (i < n && (size_t)c->line <= c->skip_lines)
			advance(c, s[i++]);
		/* When a CRLF ends the last skipped line, its LF goes on to
		 * the detector (a blank line to it) and libcsv (which skips
		 * it); prev_cr keeps it from counting as another line. */
		s += i;
		n -= i;
		if ((size_t)c->line <= c->skip_lines)
			return 0;
		c->phase = c->sep ? PHASE_PARSE : PHASE_DETECT;
	}
	if (c->phase == PHASE_DETECT) {
		if (grow(&c->look, &c->look_cap, c->look_len + n, 1))
			return fail(c, VG_ENOMEM, 0, 0, "out of memory");
		if (n)
			memcpy(c->look + c->look_len, s, n);
		c->look_len += n;
		if (!detect_sep(c, false))
			return 0;
		return start_parse(c);
	}
	return parse_bytes(c, s, n);
}

/* ---- input --------------------------------------------------------- */

/* Next raw chunk: 1 with data, 0 at end of input, or an error. */
static int read_chunk(vg_csv *c, const unsigned char **s, size_t *n)
{
	if (c->mem) {
		size_t left = c->mem_len - c->mem_pos;

		*n = left < c->read_size ? left : c->read_size;
		*s = c->mem + c->mem_pos;
		c->mem_pos += *n;
		return *n > 0;
	}
	if (c->head_len) {
		*s = c->head;
		*n = c->head_len;
		c->head_len = 0;
		return 1;
	}
	*n = fread(c->raw, 1, c->read_size, c->fp);
	*s = c->raw;
	if (*n == 0 && ferror(c->fp))
		return fail(c, VG_EIO, 0, 0, "read failed: %s",
			    strerror(errno));
	return *n > 0;
}

/* Look at the first bytes of the input, whatever the chunk size: strip a
 * UTF-8 BOM, refuse UTF-16 and a BOM under Latin-1. For a file, the bytes
 * read here that are not a BOM go out as the first chunk. */
static int sniff(vg_csv *c)
{
	unsigned char h[3];
	size_t n, skip = 0;

	if (c->mem) {
		n = c->mem_len < 3 ? c->mem_len : 3;
		memcpy(h, c->mem, n);
	} else {
		n = fread(h, 1, 3, c->fp);
		if (n < 3 && ferror(c->fp))
			return fail(c, VG_EIO, 0, 0, "read failed: %s",
				    strerror(errno));
	}
	bool bom = n == 3 && !memcmp(h, "\xEF\xBB\xBF", 3);
	if (c->enc == VG_CSV_UTF8) {
		if (bom)
			skip = 3;
		else if (n >= 2 && (!memcmp(h, "\xFF\xFE", 2)
				    || !memcmp(h, "\xFE\xFF", 2)))
			return fail(c, VG_EPARSE, 1, 1,
				    "UTF-16 input is not supported: convert "
				    "it to UTF-8");
	} else if (bom) {
		/* Decoding UTF-8 as Latin-1 would garble every accent
		 * silently. */
		return fail(c, VG_EPARSE, 1, 1,
			    "input starts with a UTF-8 byte order mark but "
			    "the encoding option says Latin-1");
	}
	if (c->mem) {
		c->mem_pos = skip;
	} else {
		memcpy(c->head, h + skip, n - skip);
		c->head_len = n - skip;
	}
	return 0;
}

/* Latin-1 (with Windows-1252 in 0x80-0x9F) to UTF-8. */
static const uint16_t cp1252_c1[32] = {
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

static size_t latin1_to_utf8(unsigned char *dst, const unsigned char *s,
			     size_t n)
{
	unsigned char *d = dst;

	for (size_t i = 0; i < n; i++) {
		uint32_t cp = s[i];

		if (cp < 0x80) {
			*d++ = (unsigned char)cp;
			continue;
		}
		if (cp < 0xA0)
			cp = cp1252_c1[cp - 0x80];
		if (cp < 0x800) {
			*d++ = (unsigned char)(0xC0 | (cp >> 6));
		} else {
			*d++ = (unsigned char)(0xE0 | (cp >> 12));
			*d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		}
		*d++ = (unsigned char)(0x80 | (cp & 0x3F));
	}
	return (size_t)(d - dst);
}

static int finish(vg_csv *c)
{
	int rc;

	if (c->phase == PHASE_DETECT) {
		detect_sep(c, true);
		rc = start_parse(c);
		if (rc)
			return rc;
	}
	/* With CSV_STRICT_FINI, libcsv refuses only one thing here: a quoted
	 * field still open. Point at its opening quote, not at the end of
	 * the file, which may be far away. */
	if (csv_fini(&c->p, on_field, on_row, c) != 0)
		return fail(c, VG_EPARSE, c->fld_line, c->fld_col,
			    "unterminated quoted field");
	if (c->cb_rc)
		return c->cb_rc;
	c->eof = true;
	return 0;
}

/* Read and parse one chunk (or finish at end of input). */
static int step(vg_csv *c)
{
	const unsigned char *s;
	size_t n;
	int rc;

	if (!c->started) {
		c->started = true;
		rc = sniff(c);
		if (rc)
			return rc;
	}
	rc = read_chunk(c, &s, &n);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return finish(c);
	if (c->enc == VG_CSV_LATIN1) {
		n = latin1_to_utf8(c->conv, s, n);
		s = c->conv;
	}
	return feed(c, s, n);
}

/* Drop the rows already handed out; move the row being parsed to the
 * front. Only called when every queued row has been handed out, since
 * handed-out rows point into buf. */
static void compact(vg_csv *c)
{
	size_t nb = c->buf_len - c->part_b;
	size_t nf = c->nfrecs - c->part_f;

	if (c->part_b)
		memmove(c->buf, c->buf + c->part_b, nb);
	if (c->part_f)
		memmove(c->frecs, c->frecs + c->part_f, nf * sizeof(*c->frecs));
	for (size_t i = 0; i < nf; i++)
		c->frecs[i].off -= c->part_b;
	c->buf_len = nb;
	c->nfrecs = nf;
	c->part_b = c->part_f = 0;
	c->nrows = c->next_row = 0;
}

/* Make at least one row available unless input ended or failed. */
static void refill(vg_csv *c)
{
	if (c->next_row < c->nrows)
		return;
	compact(c);
	while (c->nrows == 0 && !c->eof && !c->rc)
		step(c);
}

/* ---- header ---------------------------------------------------------- */

static int take_header(vg_csv *c)
{
	const struct vg__csv_rrec *r = &c->rows[c->next_row++];
	size_t bytes = 0;

	for (size_t i = 0; i < r->n; i++)
		bytes += c->frecs[r->first + i].len + 1;
	c->names = calloc(r->n ? r->n : 1, sizeof(*c->names));
	c->names_buf = malloc(bytes ? bytes : 1);
	if (!c->names || !c->names_buf)
		return fail(c, VG_ENOMEM, 0, 0, "out of memory");
	char *d = c->names_buf;
	for (size_t i = 0; i < r->n; i++) {
		const struct vg__csv_frec *f = &c->frecs[r->first + i];

		memcpy(d, c->buf + f->off, f->len + 1);
		c->names[i] = d;
		d += f->len + 1;
	}
	c->nnames = r->n;
	return 0;
}

/* ---- public API -------------------------------------------------- */

static int open_common(vg_csv **out, vg_csv *c, const vg_csv_opts *opts,
		       vg_error *err)
{
	static const vg_csv_opts zero;
	unsigned char sep;

	if (!opts)
		opts = &zero;
	sep = (unsigned char)opts->sep;
	if (sep == '"' || sep == '\r' || sep == '\n' || sep >= 0x80
	    || (opts->encoding != VG_CSV_UTF8
		&& opts->encoding != VG_CSV_LATIN1)) {
		fail(c, VG_EINVAL, 0, 0,
		     "invalid CSV options (separator 0x%02X, encoding %d)",
		     sep, (int)opts->encoding);
		goto error;
	}
	c->sep = sep;
	c->header = opts->header;
	c->skip_lines = opts->skip_lines;
	c->enc = opts->encoding;
	c->max_field = opts->max_field ? opts->max_field
				       : VG_CSV_MAX_FIELD_DEFAULT;
	c->max_fields = opts->max_fields ? opts->max_fields
					 : VG_CSV_MAX_FIELDS_DEFAULT;
	c->read_size = opts->read_size ? opts->read_size
				       : VG_CSV_READ_SIZE_DEFAULT;
	c->line = 1;
	c->want = WANT_ROW;
	c->phase = c->skip_lines ? PHASE_SKIP : c->sep ? PHASE_PARSE
						       : PHASE_DETECT;

	if (csv_init(&c->p, VG__CSV_OPTS) != 0) {
		fail(c, VG_ENOMEM, 0, 0, "out of memory");
		goto error;
	}
	csv_set_blk_size(&c->p, VG__CSV_BLOCK);
	if (c->sep)
		csv_set_delim(&c->p, c->sep);

	if (c->fp && !(c->raw = malloc(c->read_size))) {
		fail(c, VG_ENOMEM, 0, 0, "out of memory");
		goto error;
	}
	if (c->enc == VG_CSV_LATIN1) {
		if (c->read_size > SIZE_MAX / 3
		    || !(c->conv = malloc(c->read_size * 3))) {
			fail(c, VG_ENOMEM, 0, 0, "out of memory");
			goto error;
		}
	}

	/* Read up to the header (or the first row, to know the separator)
	 * so that vg_csv_header and vg_csv_separator work right after open.
	 * An error after a complete header waits for vg_csv_next. */
	refill(c);
	if (c->header && c->next_row < c->nrows) {
		if (take_header(c))
			goto error;
	} else if (c->rc && !(c->next_row < c->nrows)) {
		goto error;
	}
	*out = c;
	return 0;

error:
	if (err)
		*err = c->e;
	{
		int rc = c->rc ? c->rc : VG_ENOMEM;

		vg_csv_close(c);
		return rc;
	}
}

int vg_csv_open_file(vg_csv **out, const char *path, const vg_csv_opts *opts,
		     vg_error *err)
{
	vg_csv *c;

	if (!out || !path)
		return vg_error_set(err, VG_EINVAL, "vg_csv_open_file: NULL "
				    "argument");
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->name = strdup(path))) {
		free(c);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	c->fp = fopen(path, "rb");
	if (!c->fp) {
		int e = errno;

		fail(c, e == ENOENT ? VG_ENOTFOUND : VG_EIO, 0, 0, "%s",
		     strerror(e));
		if (err)
			*err = c->e;
		int rc = c->rc;
		vg_csv_close(c);
		return rc;
	}
	return open_common(out, c, opts, err);
}

int vg_csv_open_mem(vg_csv **out, const void *data, size_t len,
		    const char *name, const vg_csv_opts *opts, vg_error *err)
{
	vg_csv *c;

	if (!out || (!data && len))
		return vg_error_set(err, VG_EINVAL, "vg_csv_open_mem: NULL "
				    "argument");
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->name = strdup(name ? name : "<memory>"))) {
		free(c);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	c->mem = data;
	c->mem_len = len;
	if (!data) /* len == 0: read_chunk sees neither mem nor fp */
		c->mem = (const unsigned char *)"";
	return open_common(out, c, opts, err);
}

int vg_csv_next(vg_csv *c, vg_csv_row **row_out, vg_error *err)
{
	if (!row_out)
		return vg_error_set(err, VG_EINVAL, "vg_csv_next: NULL "
				    "argument");
	*row_out = NULL;
	if (!c)
		return vg_error_set(err, VG_EINVAL, "vg_csv_next: NULL "
				    "argument");
	refill(c);
	if (c->next_row >= c->nrows) {
		if (c->rc && err)
			*err = c->e;
		return c->rc;
	}

	const struct vg__csv_rrec *r = &c->rows[c->next_row++];
	if (grow(&c->out, &c->out_cap, r->n ? r->n : 1,
		 sizeof(*c->out))) {
		/* Not sticky: the queue is intact, a retry may succeed. */
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct vg__csv_frec *f = &c->frecs[r->first + i];

		c->out[i] = (vg_csv_field){
			.ptr = c->buf + f->off,
			.len = f->len,
			.line = f->line,
			.col = f->col,
			.null = f->null,
		};
	}
	c->row = (vg_csv_row){.nfields = r->n, .fields = c->out,
			      .line = r->line};
	*row_out = &c->row;
	return 1;
}

const char *const *vg_csv_header(const vg_csv *c, size_t *n)
{
	if (n)
		*n = c && c->names ? c->nnames : 0;
	return c && c->nnames ? (const char *const *)c->names : NULL;
}

int vg_csv_field_index(const vg_csv *c, const char *name)
{
	if (!c || !name)
		return VG_ENOTFOUND;
	for (size_t i = 0; i < c->nnames; i++)
		if (!strcmp(c->names[i], name))
			return (int)i;
	return VG_ENOTFOUND;
}

long vg_csv_field_col(const vg_csv_row *row, size_t i)
{
	return row && i < row->nfields ? row->fields[i].col : 0;
}

long vg_csv_field_line(const vg_csv_row *row, size_t i)
{
	return row && i < row->nfields ? row->fields[i].line : 0;
}

char vg_csv_separator(const vg_csv *c)
{
	return c ? (char)c->sep : 0;
}

const char *vg_csv_name(const vg_csv *c)
{
	return c ? c->name : NULL;
}

void vg_csv_close(vg_csv *c)
{
	if (!c)
		return;
	csv_free(&c->p);
	if (c->fp)
		fclose(c->fp);
	free(c->name);
	free(c->raw);
	free(c->conv);
	free(c->look);
	free(c->buf);
	free(c->frecs);
	free(c->rows);
	free(c->out);
	free(c->names);
	free(c->names_buf);
	free(c);
}
