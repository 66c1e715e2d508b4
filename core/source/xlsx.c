/* Zip members (libzip) and xlsx worksheets (libzip + expat), for the
 * INSEE and DREES files published as .xlsx or zipped CSV.
 *
 * An xlsx is a zip of XML parts: xl/workbook.xml lists the sheets (name
 * -> relationship id), xl/_rels/workbook.xml.rels maps ids to part paths,
 * xl/sharedStrings.xml holds the text cells, and each sheet part has
 * <row r="N"><c r="B3" t="s"><v>12</v></c>...</row>. Cells come out as
 * text: shared and inline strings resolved, numbers exactly as stored
 * (the shortest round-trip text Excel wrote), booleans TRUE/FALSE. The
 * XML is parsed with expat, prefixes ignored (x:row and row alike). */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "vigie/source.h"

/* ---- zip ---------------------------------------------------------------- */

static int zopen(const unsigned char *data, size_t len, const char *name,
		 zip_t **out, vg_error *err)
{
	zip_error_t ze;
	zip_error_init(&ze);
	zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
	if (!src) {
		zip_error_fini(&ze);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	zip_t *za = zip_open_from_source(src, ZIP_RDONLY, &ze);
	if (!za) {
		int rc = vg_error_at(err, VG_EPARSE, name, 0, 0,
				     "not a readable zip archive: %s",
				     zip_error_strerror(&ze));
		zip_source_free(src);
		zip_error_fini(&ze);
		return rc;
	}
	zip_error_fini(&ze);
	*out = za;
	return 0;
}

int vg_zip_list(const unsigned char *data, size_t len, const char *name,
		 void (*cb)(void *ud, const char *member), void *ud,
		 vg_error *err)
{
	zip_t *za;
	int rc = zopen(data, len, name, &za, err);
	if (rc)
		return rc;
	zip_int64_t n = zip_get_num_entries(za, 0);
	for (zip_int64_t i = 0; i < n; i++) {
		const char *m = zip_get_name(za, (zip_uint64_t)i, 0);
		if (m)
			cb(ud, m);
	}
	zip_discard(za);
	return 0;
}

static int zread(zip_t *za, const char *name, const char *member, size_t max,
		 unsigned char **out, size_t *outlen, vg_error *err)
{
	zip_stat_t st;
	if (zip_stat(za, member, 0, &st) || !(st.valid & ZIP_STAT_SIZE))
		return vg_error_at(err, VG_ENOTFOUND, name, 0, 0,
				   "no member '%s' in the archive", member);
	if (st.size > max)
		return vg_error_at(err, VG_ETOOBIG, name, 0, 0,
				   "member '%s' is %llu bytes, more than the "
				   "limit of %zu", member,
				   (unsigned long long)st.size, max);
	unsigned char *b = malloc((size_t)st.size + 1);
	if (!b)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	zip_file_t *f = zip_fopen(za, member, 0);
	zip_int64_t got = f ? zip_fread(f, b, st.size) : -1;
	if (f)
		zip_fclose(f);
	if (got < 0 || (zip_uint64_t)got != st.size) {
		free(b);
		return vg_error_at(err, VG_EIO, name, 0, 0,
				   "cannot inflate member '%s' (corrupt "
				   "archive?)", member);
	}
	b[st.size] = '\0';
	*out = b;
	*outlen = (size_t)st.size;
	return 0;
}

int vg_zip_read(const unsigned char *data, size_t len, const char *name,
		 const char *member, size_t max, unsigned char **out,
		 size_t *outlen, vg_error *err)
{
	zip_t *za;
	int rc = zopen(data, len, name, &za, err);
	if (rc)
		return rc;
	rc = zread(za, name, member, max, out, outlen, err);
	zip_discard(za);
	return rc;
}

/* ---- XML helpers --------------------------------------------------------- */

static const char *local(const char *n)
{
	const char *c = strrchr(n, ':');
	return c ? c + 1 : n;
}

static const char *attr(const char **a, const char *key)
{
	for (; a && a[0]; a += 2)
		if (!strcmp(a[0], key) || !strcmp(local(a[0]), key))
			return a[1];
	return NULL;
}

typedef struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static int xml_parse(const unsigned char *d, size_t n, void *ud,
		     XML_StartElementHandler st, XML_EndElementHandler en,
		     XML_CharacterDataHandler ch, const char *where,
		     vg_error *err)
{
	XML_Parser x = XML_ParserCreate("UTF-8");
	if (!x)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	XML_SetUserData(x, ud);
	XML_SetElementHandler(x, st, en);
	if (ch)
		XML_SetCharacterDataHandler(x, ch);
	int rc = 0;
	if (XML_Parse(x, (const char *)d, (int)n, 1) == XML_STATUS_ERROR)
		rc = vg_error_at(err, VG_EPARSE, where,
				 (long)XML_GetCurrentLineNumber(x),
				 (long)XML_GetCurrentColumnNumber(x) + 1,
				 "XML: %s",
				 XML_ErrorString(XML_GetErrorCode(x)));
	XML_ParserFree(x);
	return rc;
}

/* ---- workbook and relationships ---------------------------------------- */

typedef struct book {
	char names[256][128];
	char rids[256][64];
	size_t n;
	char target[512]; /* rels: target of the wanted id */
	const char *want;
} book;

static void book_start(void *ud, const char *el, const char **a)
{
	book *b = ud;
	if (!strcmp(local(el), "sheet") && b->n < 256) {
		const char *nm = attr(a, "name"), *id = attr(a, "r:id");
		if (!id)
			id = attr(a, "id");
		snprintf(b->names[b->n], sizeof(b->names[0]), "%s",
			 nm ? nm : "");
		snprintf(b->rids[b->n], sizeof(b->rids[0]), "%s", id ? id : "");
		b->n++;
	} else if (!strcmp(local(el), "Relationship") && b->want) {
		const char *id = attr(a, "Id"), *t = attr(a, "Target");
		if (id && t && !strcmp(id, b->want))
			snprintf(b->target, sizeof(b->target), "%s", t);
	}
}

static void no_end(void *ud, const char *el)
{
	(void)ud;
	(void)el;
}

/* ---- shared strings ------------------------------------------------------- */

typedef struct sst {
	char **s;
	size_t n, cap;
	sbuf cur;
	int in_si, in_t, in_rph;
	bool oom;
} sst;

static void sst_start(void *ud, const char *el, const char **a)
{
	sst *x = ud;
	const char *l = local(el);
	(void)a;
	if (!strcmp(l, "si")) {
		x->in_si = 1;
		x->cur.n = 0;
		sb_add(&x->cur, "", 0);
	} else if (!strcmp(l, "rPh")) {
		x->in_rph = 1; /* phonetic reading: not part of the text */
	} else if (!strcmp(l, "t") && x->in_si && !x->in_rph) {
		x->in_t = 1;
	}
}

static void sst_end(void *ud, const char *el)
{
	sst *x = ud;
	const char *l = local(el);
	if (!strcmp(l, "t")) {
		x->in_t = 0;
	} else if (!strcmp(l, "rPh")) {
		x->in_rph = 0;
	} else if (!strcmp(l, "si")) {
		x->in_si = 0;
		if (x->n == x->cap) {
			size_t cap = x->cap ? x->cap * 2 : 1024;
			char **ns = realloc(x->s, cap * sizeof(char *));
			if (!ns) {
				x->oom = true;
				return;
			}
			x->s = ns;
			x->cap = cap;
		}
		x->s[x->n] = strdup(x->cur.p ? x->cur.p : "");
		if (!x->s[x->n])
			x->oom = true;
		x->n++;
	}
}

static void sst_chars(void *ud, const char *s, int len)
{
	sst *x = ud;
	if (x->in_t)
		sb_add(&x->cur, s, (size_t)len);
}

/* ---- the sheet -------------------------------------------------------------- */

typedef struct sheet_p {
	vg_xlsx_sheet *out;
	size_t cap;
	const sst *strings;
	long row_no;
	long col; /* 0-based, of the current cell */
	char type[16];
	int in_v, in_t, in_is;
	sbuf val;
	bool oom, bad_index;
} sheet_p;

static long col_of(const char *ref)
{
	long c = 0;
	for (; *ref >= 'A' && *ref <= 'Z'; ref++)
		c = c * 26 + (*ref - 'A' + 1);
	return c - 1;
}

static void put_cell(sheet_p *p, char *text)
{
	vg_xlsx_row *row = &p->out->rows[p->out->nrows - 1];
	size_t c = (size_t)p->col;
	if (c >= 16384) {
		free(text);
		return;
	}
	if (c >= row->ncells) {
		char **nc = realloc(row->cells, (c + 1) * sizeof(char *));
		if (!nc) {
			free(text);
			p->oom = true;
			return;
		}
		for (size_t i = row->ncells; i <= c; i++)
			nc[i] = NULL;
		row->cells = nc;
		row->ncells = c + 1;
	}
	free(row->cells[c]);
	row->cells[c] = text;
}

static void sh_start(void *ud, const char *el, const char **a)
{
	sheet_p *p = ud;
	const char *l = local(el);
	if (!strcmp(l, "row")) {
		if (p->out->nrows == p->cap) {
			size_t cap = p->cap ? p->cap * 2 : 256;
			vg_xlsx_row *nr = realloc(p->out->rows,
						   cap * sizeof(*nr));
			if (!nr) {
				p->oom = true;
				return;
			}
			p->out->rows = nr;
			p->cap = cap;
		}
		const char *r = attr(a, "r");
		p->row_no = r ? strtol(r, NULL, 10) : p->row_no + 1;
		p->out->rows[p->out->nrows++] =
			(vg_xlsx_row){ p->row_no, 0, NULL };
		p->col = -1;
	} else if (!strcmp(l, "c") && p->out->nrows) {
		const char *r = attr(a, "r"), *t = attr(a, "t");
		p->col = r ? col_of(r) : p->col + 1;
		snprintf(p->type, sizeof(p->type), "%s", t ? t : "n");
		p->val.n = 0;
		sb_add(&p->val, "", 0);
	} else if (!strcmp(l, "v")) {
		p->in_v = 1;
	} else if (!strcmp(l, "is")) {
		p->in_is = 1;
	} else if (!strcmp(l, "t") && p->in_is) {
		p->in_t = 1;
	}
}

static void sh_end(void *ud, const char *el)
{
	sheet_p *p = ud;
	const char *l = local(el);
	if (!strcmp(l, "v")) {
		p->in_v = 0;
	} else if (!strcmp(l, "t")) {
		p->in_t = 0;
	} else if (!strcmp(l, "is")) {
		p->in_is = 0;
	} else if (!strcmp(l, "c") && p->out->nrows && p->col >= 0) {
		const char *v = p->val.p ? p->val.p : "";
		char *text = NULL;
		if (!strcmp(p->type, "s")) {
			char *end;
			long i = strtol(v, &end, 10);
			if (end == v || i < 0 || !p->strings ||
			    (size_t)i >= p->strings->n) {
				p->bad_index = true;
				return;
			}
			text = strdup(p->strings->s[i]);
		} else if (!strcmp(p->type, "b")) {
			text = strdup(!strcmp(v, "1") ? "TRUE" : "FALSE");
		} else if (!*v) {
			return; /* styled but empty */
		} else {
			text = strdup(v); /* n, str, inlineStr, e (#N/A...) */
		}
		if (!text) {
			p->oom = true;
			return;
		}
		put_cell(p, text);
	}
}

static void sh_chars(void *ud, const char *s, int len)
{
	sheet_p *p = ud;
	if (p->in_v || (p->in_is && p->in_t))
		sb_add(&p->val, s, (size_t)len);
}

void vg_xlsx_free(vg_xlsx_sheet *s)
{
	for (size_t i = 0; i < s->nrows; i++) {
		for (size_t c = 0; c < s->rows[i].ncells; c++)
			free(s->rows[i].cells[c]);
		free(s->rows[i].cells);
	}
	free(s->rows);
	memset(s, 0, sizeof(*s));
}

static void sst_free(sst *x)
{
	for (size_t i = 0; i < x->n; i++)
		free(x->s[i]);
	free(x->s);
	free(x->cur.p);
}

int vg_xlsx_read(const unsigned char *data, size_t len, const char *name,
		  const char *sheet, size_t max, vg_xlsx_sheet *out,
		  vg_error *err)
{
	memset(out, 0, sizeof(*out));
	zip_t *za;
	int rc = zopen(data, len, name, &za, err);
	if (rc)
		return rc;
	unsigned char *x = NULL;
	size_t xn = 0;
	book *b = calloc(1, sizeof(*b));
	sst strings = { 0 };
	if (!b) {
		zip_discard(za);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	char where[1200];
	snprintf(where, sizeof(where), "%s!xl/workbook.xml", name);
	rc = zread(za, name, "xl/workbook.xml", max, &x, &xn, err);
	if (!rc)
		rc = xml_parse(x, xn, b, book_start, no_end, NULL, where, err);
	free(x);
	x = NULL;
	size_t idx = b->n;
	if (!rc) {
		if (sheet[0] == '#') {
			long k = strtol(sheet + 1, NULL, 10);
			if (k >= 1 && (size_t)k <= b->n)
				idx = (size_t)k - 1;
		} else {
			for (size_t i = 0; i < b->n; i++)
				if (!strcmp(b->names[i], sheet))
					idx = i;
		}
		if (idx == b->n) {
			char list[1024] = "";
			for (size_t i = 0; i < b->n; i++) {
				size_t l = strlen(list);
				snprintf(list + l, sizeof(list) - l, "%s'%s'",
					 i ? ", " : "", b->names[i]);
			}
			rc = vg_error_at(err, VG_ENOTFOUND, name, 0, 0,
					 "no sheet '%s' (sheets: %s)", sheet,
					 list);
		}
	}
	if (!rc) {
		b->want = b->rids[idx];
		rc = zread(za, name, "xl/_rels/workbook.xml.rels", max, &x, &xn,
			   err);
		if (!rc)
			rc = xml_parse(x, xn, b, book_start, no_end, NULL,
				       name, err);
		free(x);
		x = NULL;
		if (!rc && !b->target[0])
			rc = vg_error_at(err, VG_EPARSE, name, 0, 0,
					 "sheet '%s' has no part in the "
					 "workbook relationships",
					 b->names[idx]);
	}
	if (!rc) {
		zip_stat_t st;
		if (zip_stat(za, "xl/sharedStrings.xml", 0, &st) == 0) {
			rc = zread(za, name, "xl/sharedStrings.xml", max, &x,
				   &xn, err);
			if (!rc)
				rc = xml_parse(x, xn, &strings, sst_start,
					       sst_end, sst_chars, name, err);
			free(x);
			x = NULL;
			if (!rc && (strings.oom || strings.cur.oom))
				rc = vg_error_set(err, VG_ENOMEM,
						  "out of memory");
		}
	}
	if (!rc) {
		char part[600];
		const char *t = b->target;
		if (t[0] == '/')
			snprintf(part, sizeof(part), "%s", t + 1);
		else
			snprintf(part, sizeof(part), "xl/%s", t);
		snprintf(where, sizeof(where), "%s!%s", name, part);
		rc = zread(za, name, part, max, &x, &xn, err);
		sheet_p sp = { .out = out, .strings = &strings };
		if (!rc)
			rc = xml_parse(x, xn, &sp, sh_start, sh_end, sh_chars,
				       where, err);
		free(x);
		free(sp.val.p);
		if (!rc && (sp.oom || sp.val.oom))
			rc = vg_error_set(err, VG_ENOMEM, "out of memory");
		if (!rc && sp.bad_index)
			rc = vg_error_at(err, VG_EPARSE, where, 0, 0,
					 "a cell refers to a shared string "
					 "that does not exist");
	}
	sst_free(&strings);
	free(b);
	zip_discard(za);
	if (rc)
		vg_xlsx_free(out);
	return rc;
}
