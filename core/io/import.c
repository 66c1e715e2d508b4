/* CSV and JSON imports into the store, all or nothing. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/sha256.h"
#include "util/strmap.h"
#include "vigie/csv.h"
#include "vigie/io.h"

/* Keep the first errors for the report; count them all. */
static void row_error(vg_import_report *rep, const vg_error *e)
{
	rep->bad_rows++;
	if (rep->nerrors < VG_IMPORT_MAX_ERRORS)
		rep->errors[rep->nerrors++] = *e;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int start_batch(vg_store *s, const char *path, const vg_import_opts *o,
		       vg_batch **b, vg_error *err)
{
	char origin[300], sum[72] = "";
	if (o && o->origin)
		snprintf(origin, sizeof(origin), "%s", o->origin);
	else
		snprintf(origin, sizeof(origin), "import %s", base_name(path));
	vg_sha256_file(path, sum);
	vg_batch_opts bo = { .origin = origin,
			     .checksum = sum[0] ? sum : NULL,
			     .time = o ? o->published : 0 };
	return vg_batch_new(s, &bo, b, err);
}

/* The end of every import: refuse if rows were bad (unless skipping),
 * otherwise commit. Frees the batch. */
static int finish(vg_batch *b, const char *path, const vg_import_opts *o,
		  vg_import_report *rep, vg_error *err)
{
	if (rep->bad_rows && !(o && o->skip_bad)) {
		vg_batch_free(b);
		const vg_error *first = &rep->errors[0];
		return vg_error_at(err, VG_EBADROWS, path, first->line,
				   first->column,
				   "%llu bad row%s (first: %s); nothing was "
				   "imported (--skip-bad imports the others)",
				   (unsigned long long)rep->bad_rows,
				   rep->bad_rows > 1 ? "s" : "", first->msg);
	}
	return vg_batch_commit(b, &rep->commit, err);
}

/* Column lookup by header name, case-insensitive. */
static int column(vg_csv *c, const char *name)
{
	size_t n;
	const char *const *h = vg_csv_header(c, &n);
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(h[i], name) == 0)
			return (int)i;
	return -1;
}

static int need_columns(vg_csv *c, const char *path, const char *const *names,
			int *idx, size_t n, const char *expected,
			vg_error *err)
{
	for (size_t i = 0; i < n; i++) {
		idx[i] = column(c, names[i]);
		if (idx[i] < 0)
			return vg_error_at(err, VG_EPARSE, path, 1, 0,
					   "missing column '%s' in the header "
					   "(expected %s)", names[i], expected);
	}
	return 0;
}

/* Open a CSV whose header must name `names`; their indexes go to idx.
 * On error nothing stays open. */
static int open_with_columns(const char *path, const char *const *names,
			     int *idx, size_t n, const char *expected,
			     vg_csv **c, vg_error *err)
{
	vg_csv_opts co = { .header = true };
	int rc = vg_csv_open_file(c, path, &co, err);
	if (rc)
		return rc;
	rc = need_columns(*c, path, names, idx, n, expected, err);
	if (rc) {
		vg_csv_close(*c);
		*c = NULL;
	}
	return rc;
}

static void set_row_err(vg_error *e, vg_csv *c, const vg_csv_row *row,
			int field, const vg_error *why)
{
	/* A field the row does not have is located at the row's start. */
	bool have = field >= 0 && (size_t)field < row->nfields;
	vg_error_at(e, why->code, vg_csv_name(c),
		    have ? vg_csv_field_line(row, (size_t)field) : row->line,
		    have ? vg_csv_field_col(row, (size_t)field) : 0, "%s",
		    why->msg);
}

static const char *fld(const vg_csv_row *row, int i)
{
	return i >= 0 && (size_t)i < row->nfields ? row->fields[i].ptr : "";
}

/* ---- points ----------------------------------------------------------- */

/* First non-empty field past the header's columns, or -1. Such a row is
 * refused: with `,` separators an unquoted decimal comma ("20,5") splits
 * the value and would silently import 20. Trailing empty fields are fine. */
static int extra_field(const vg_csv_row *row, size_t nhead)
{
	for (size_t i = nhead; i < row->nfields; i++)
		if (row->fields[i].len)
			return (int)i;
	return -1;
}

int vg_import_points(vg_store *s, const char *path, const vg_import_opts *o,
		     vg_import_report *rep, vg_error *err)
{
	memset(rep, 0, sizeof(*rep));
	vg_csv *c;
	static const char *const names[] = { "indicator", "territory", "period",
					     "value" };
	int idx[4];
	int rc = open_with_columns(path, names, idx, 4,
				   "indicator;territory;period;value[;status]",
				   &c, err);
	if (rc)
		return rc;
	int st_col = column(c, "status");
	/* Columns may come in any order: a row must reach the last one. */
	size_t need = 0;
	for (int i = 0; i < 4; i++)
		if ((size_t)idx[i] + 1 > need)
			need = (size_t)idx[i] + 1;
	/* rc is 0 here: open_with_columns returned early otherwise. */
	vg_batch *b = NULL;
	rc = start_batch(s, path, o, &b, err);
	if (rc) {
		vg_csv_close(c);
		return rc;
	}
	size_t nhead;
	vg_csv_header(c, &nhead);
	vg_csv_row *row;
	vg_error why, located;
	while ((rc = vg_csv_next(c, &row, err)) == 1) {
		rep->rows++;
		vg_error_clear(&why);
		int bad_field = -1, xf;
		const char *ind = fld(row, idx[0]), *terr = fld(row, idx[1]);
		const char *ps = fld(row, idx[2]);
		const vg_csv_field *vf = (size_t)idx[3] < row->nfields
						 ? &row->fields[idx[3]]
						 : NULL;
		char tcode[VG_CODE_MAX];
		vg_period p;
		double v = 0;
		bool supp = false;
		vg_status st = VG_STATUS_OK;
		if (row->nfields < need || !vf) {
			vg_error_set(&why, VG_EPARSE,
				     "%zu field%s, expected at least %zu "
				     "(indicator;territory;period;value)",
				     row->nfields, row->nfields == 1 ? "" : "s",
				     need);
		} else if ((xf = extra_field(row, nhead)) >= 0) {
			bad_field = xf;
			vg_error_set(&why, VG_EPARSE,
				     "%zu fields but the header has %zu (with "
				     "',' separators, quote a decimal comma: "
				     "\"12,5\")", row->nfields, nhead);
		} else if (vg_territory_code_canon(NULL, terr, tcode, NULL,
						   &why)) {
			/* "COM:85146" is read as the store reads it; a bare
			 * "85146" is refused with a hint. */
			bad_field = idx[1];
		} else if (vg_period_parse(ps, strlen(ps), &p)) {
			bad_field = idx[2];
			vg_error_set(&why, VG_EPERIOD,
				     "period '%s' is not YYYY, YYYY-Qn, YYYY-MM "
				     "or YYYY-MM-DD", ps);
		} else if (vg_value_parse(vf->ptr, vf->len, &v, &supp)) {
			bad_field = idx[3];
			vg_error_set(&why, VG_EINVAL,
				     "value '%s' is not a number (empty, NS or "
				     "s mean suppressed)", vf->ptr);
		} else if (st_col >= 0 && *fld(row, st_col) &&
			   vg_status_parse(fld(row, st_col),
					   strlen(fld(row, st_col)), &st)) {
			bad_field = st_col;
			vg_error_set(&why, VG_EINVAL,
				     "status '%s' is not one of ok, "
				     "provisional, estimated, suppressed, "
				     "missing", fld(row, st_col));
		} else {
			if (supp && st != VG_STATUS_MISSING)
				st = VG_STATUS_SUPPRESSED;
			if (!supp && (st == VG_STATUS_SUPPRESSED ||
				      st == VG_STATUS_MISSING))
				v = 0; /* the status wins: stored as NaN */
			int prc = vg_batch_point(b, ind, tcode, p, v, st,
						 &why);
			if (prc)
				bad_field = prc == VG_EPERIOD ? idx[2]
					    : strncmp(why.msg,
						      "unknown indicator",
						      17) == 0
						    ? idx[0]
						    : idx[1];
		}
		if (why.code) {
			set_row_err(&located, c, row, bad_field, &why);
			row_error(rep, &located);
		}
	}
	vg_csv_close(c);
	if (rc < 0) {
		vg_batch_free(b);
		return rc;
	}
	return finish(b, path, o, rep, err);
}

/* ---- territories ------------------------------------------------------ */

/* Split "a,b, c" into codes; returns the count or -1 if too many. */
static int split_codes(const char *s, char (*out)[VG_CODE_MAX], size_t max)
{
	size_t n = 0;
	while (*s) {
		while (*s == ' ' || *s == ',')
			s++;
		if (!*s)
			break;
		const char *e = s;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > s && t[-1] == ' ')
			t--;
		if (n == max || (size_t)(t - s) >= VG_CODE_MAX)
			return -1;
		memcpy(out[n], s, (size_t)(t - s));
		out[n][t - s] = '\0';
		n++;
		s = e;
	}
	return (int)n;
}

static size_t count_codes(const char *s)
{
	size_t n = 1;
	for (; *s; s++)
		n += *s == ',';
	return n;
}

/* Parse a successors field: "com:85146" (weight 1) or
 * "com:A=0.6|com:B=0.4". Weights are checked further (range, sum) by
 * vg_batch_territory. Returns 0 or VG_EINVAL with a message in why. */
static int parse_successors(const char *s, vg_territory *t, vg_error *why)
{
	size_t n = 0, given = 0;
	while (*s) {
		while (*s == ' ' || *s == '|')
			s++;
		if (!*s)
			break;
		const char *e = s;
		while (*e && *e != '|')
			e++;
		const char *eq = memchr(s, '=', (size_t)(e - s));
		const char *ce = eq ? eq : e;
		while (ce > s && ce[-1] == ' ')
			ce--;
		if (n == VG_MAX_SUCCESSORS)
			return vg_error_set(why, VG_EINVAL,
					    "more than %d successors",
					    VG_MAX_SUCCESSORS);
		if (ce == s || (size_t)(ce - s) >= VG_CODE_MAX)
			return vg_error_set(why, VG_EINVAL,
					    "successor code empty or longer "
					    "than %d bytes", VG_CODE_MAX - 1);
		memcpy(t->successors[n].code, s, (size_t)(ce - s));
		t->successors[n].code[ce - s] = '\0';
		double w = 1;
		if (eq) {
			char buf[64];
			size_t wl = (size_t)(e - eq - 1);
			char *end;
			if (wl == 0 || wl >= sizeof(buf))
				return vg_error_set(why, VG_EINVAL,
						    "successor '%s': bad weight",
						    t->successors[n].code);
			memcpy(buf, eq + 1, wl);
			buf[wl] = '\0';
			w = strtod(buf, &end);
			while (*end == ' ')
				end++;
			if (*end || end == buf)
				return vg_error_set(why, VG_EINVAL,
						    "successor '%s': weight '%s' "
						    "is not a number (use a dot: "
						    "0.6)", t->successors[n].code,
						    buf);
		}
		given += eq != NULL;
		t->successors[n++].weight = w;
		s = e;
	}
	if (n > 1 && given < n)
		return vg_error_set(why, VG_EINVAL,
				    "%zu successors: each needs its share "
				    "(com:A=0.6|com:B=0.4)", n);
	t->nsuccessors = n;
	return 0;
}

typedef struct ref_check {
	char code[VG_CODE_MAX];
	char from[VG_CODE_MAX];
	long line, col;
} ref_check;

int vg_import_territories(vg_store *s, const char *path,
			  const vg_import_opts *o, vg_import_report *rep,
			  vg_error *err)
{
	memset(rep, 0, sizeof(*rep));
	vg_csv *c;
	static const char *const names[] = { "code", "level", "name",
					     "parent_codes" };
	int idx[4];
	int rc = open_with_columns(path, names, idx, 4,
				   "code;level;name;parent_codes[;members][;successors]"
				   "[;valid_from]",
				   &c, err);
	if (rc)
		return rc;
	int mem_col = column(c, "members");
	int suc_col = column(c, "successors");
	/* valid_from: the period a row's members apply from (one row per
	 * membership version of a perimeter); empty: from the beginning. */
	int vf_col = column(c, "valid_from");
	/* rc is 0 here: open_with_columns returned early otherwise. */
	vg_batch *b = NULL;
	rc = start_batch(s, path, o, &b, err);
	if (rc) {
		vg_csv_close(c);
		return rc;
	}
	/* Parents may come later in the file than their children: collect
	 * references and check them once the whole file is read. */
	vg_strmap defined;
	vg_strmap_init(&defined);
	ref_check *refs = NULL;
	size_t nrefs = 0, caprefs = 0;
	vg_csv_row *row;
	vg_error why, located;
	vg_territory t;
	while ((rc = vg_csv_next(c, &row, err)) == 1) {
		rep->rows++;
		vg_error_clear(&why);
		memset(&t, 0, sizeof(t));
		int bad_field = idx[0];
		const char *pc = fld(row, idx[3]);
		const char *mc = fld(row, mem_col);
		int np = 0;
		if (row->nfields < 3) {
			bad_field = -1;
			vg_error_set(&why, VG_EPARSE,
				     "%zu fields, expected code;level;name;"
				     "parent_codes", row->nfields);
		} else if (vg_territory_code_canon(fld(row, idx[1]),
						   fld(row, idx[0]), t.code,
						   t.level, &why)) {
			/* why is set */
		} else if (!*fld(row, idx[2])) {
			bad_field = idx[2];
			vg_error_set(&why, VG_EINVAL, "territory '%s' has no "
				     "name", t.code);
		} else if (strlen(fld(row, idx[2])) >= sizeof(t.name)) {
			bad_field = idx[2];
			vg_error_set(&why, VG_EINVAL, "name longer than %zu "
				     "bytes", sizeof(t.name) - 1);
		} else if ((np = split_codes(pc, t.parents, VG_MAX_PARENTS)) <
			   0) {
			bad_field = idx[3];
			vg_error_set(&why, VG_EINVAL,
				     "more than %d parents, or a code too long",
				     VG_MAX_PARENTS);
		} else {
			strcpy(t.name, fld(row, idx[2]));
			t.nparents = (size_t)np;
			if (*mc) {
				size_t cap = count_codes(mc);
				t.members = calloc(cap, VG_CODE_MAX);
				int nm = t.members ? split_codes(mc, t.members,
								 cap)
						   : -1;
				t.nmembers = nm > 0 ? (size_t)nm : 0;
				/* Dropping the whole list silently would
				 * define an empty perimeter. */
				if (!t.members)
					vg_error_set(&why, VG_ENOMEM,
						     "out of memory");
				else if (nm < 0)
					vg_error_set(&why, VG_EINVAL,
						     "a member code is longer "
						     "than %d bytes",
						     VG_CODE_MAX - 1);
			}
			bad_field = why.code ? mem_col : idx[3];
			const char *vf = fld(row, vf_col);
			if (!why.code && *vf) {
				if (vg_period_parse(vf, strlen(vf), &t.from)) {
					bad_field = vf_col;
					vg_error_set(&why, VG_EPERIOD,
						     "valid_from '%s' is not a "
						     "period (2024, 2024-Q1, "
						     "2024-03, 2024-03-15)",
						     vf);
				} else if (!t.nmembers) {
					bad_field = vf_col;
					vg_error_set(&why, VG_EINVAL,
						     "valid_from '%s' without "
						     "members: only a "
						     "perimeter's membership "
						     "has versions",
						     vf);
				}
				t.has_from = true;
			}
			if (!why.code && *fld(row, suc_col) &&
			    parse_successors(fld(row, suc_col), &t, &why))
				bad_field = suc_col;
			if (!why.code && t.nsuccessors)
				bad_field = suc_col; /* batch checks: shares */
			if (!why.code && !vg_batch_territory(b, &t, &why)) {
				/* Remember what to check at the end. */
				vg_strmap_put(&defined, t.code, 1);
				size_t nr = t.nparents + t.nmembers +
					    t.nsuccessors;
				if (nrefs + nr > caprefs) {
					size_t ncap = (nrefs + nr) * 2 + 64;
					ref_check *nrf = realloc(
						refs, ncap * sizeof(*refs));
					if (!nrf) {
						rc = vg_error_set(err, VG_ENOMEM,
								  "out of memory");
						vg_territory_clear(&t);
						break;
					}
					refs = nrf;
					caprefs = ncap;
				}
				for (size_t i = 0; i < nr; i++) {
					ref_check *r = &refs[nrefs++];
					size_t pm = t.nparents + t.nmembers;
					const char *code =
						i < t.nparents
							? t.parents[i]
						: i < pm
							? t.members[i - t.nparents]
							: t.successors[i - pm].code;
					vg_territory_code_canon(NULL, code,
								r->code, NULL,
								NULL);
					strcpy(r->from, t.code);
					int f = i < t.nparents ? idx[3]
						: i < pm       ? mem_col
							       : suc_col;
					r->line = vg_csv_field_line(row,
								    (size_t)f);
					r->col = vg_csv_field_col(row,
								  (size_t)f);
				}
			}
			vg_territory_clear(&t);
		}
		if (why.code) {
			set_row_err(&located, c, row, bad_field, &why);
			row_error(rep, &located);
		}
	}
	const char *name = path;
	uint64_t dangling = 0;
	if (rc >= 0 && refs) {
		vg_read *r = NULL;
		vg_read_begin(s, &r, NULL);
		for (size_t i = 0; i < nrefs; i++) {
			uint32_t id;
			if (vg_strmap_get(&defined, refs[i].code, &id) ||
			    (r && !vg_read_territory_id(r, refs[i].code, &id,
							NULL)))
				continue;
			vg_error_at(&located, VG_ENOTFOUND, name, refs[i].line,
				    refs[i].col,
				    "'%s' (parent, member or successor of "
				    "'%s') is not defined in this file nor "
				    "in the store",
				    refs[i].code, refs[i].from);
			row_error(rep, &located);
			dangling++;
		}
		vg_read_end(r);
	}
	free(refs);
	vg_strmap_free(&defined);
	vg_csv_close(c);
	if (rc < 0) {
		vg_batch_free(b);
		return rc;
	}
	if (dangling && o && o->skip_bad) {
		/* A skipped territory can leave others pointing at it; the
		 * store refuses dangling references, so skipping cannot
		 * apply to references. */
		vg_batch_free(b);
		for (size_t i = 0; i < rep->nerrors; i++)
			if (rep->errors[i].code == VG_ENOTFOUND)
				return vg_error_at(err, VG_EBADROWS, path,
						   rep->errors[i].line,
						   rep->errors[i].column,
						   "%s (%llu undefined references); "
						   "nothing was imported",
						   rep->errors[i].msg,
						   (unsigned long long)dangling);
		return vg_error_at(err, VG_EBADROWS, path, 0, 0,
				   "%llu undefined parent or member "
				   "references; nothing was imported",
				   (unsigned long long)dangling);
	}
	return finish(b, path, o, rep, err);
}

/* ---- indicators ------------------------------------------------------- */

static char *read_file(const char *path, size_t *len, vg_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		vg_error_at(err, errno == ENOENT ? VG_ENOTFOUND : VG_EIO, path,
			    0, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	size_t got;
	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			if (cap >= (64u << 20)) {
				free(buf);
				fclose(f);
				vg_error_at(err, VG_ETOOBIG, path, 0, 0,
					    "larger than 64 MiB");
				return NULL;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf) {
		vg_error_set(err, VG_ENOMEM, "out of memory");
		return NULL;
	}
	buf[n] = '\0'; /* n < cap here: the buffer grows when full */
	*len = n;
	return buf;
}

/* Line and column of byte offset `off` in buf. */
static void position(const char *buf, size_t off, long *line, long *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

int vg_import_indicators(vg_store *s, const char *path,
			 const vg_import_opts *o, vg_import_report *rep,
			 vg_error *err)
{
	memset(rep, 0, sizeof(*rep));
	size_t len;
	char *text = read_file(path, &len, err);
	if (!text)
		return err ? err->code : VG_EIO;
	const char *end = NULL;
	/* Parse through the NUL so text after the JSON value is refused:
	 * cJSON wants the terminator inside the length to check it. */
	cJSON *root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
	if (!root) {
		long line, col;
		size_t off = end ? (size_t)(end - text) : 0;
		position(text, off, &line, &col);
		free(text);
		return vg_error_at(err, VG_EPARSE, path, line, col,
				   "invalid JSON");
	}
	free(text);
	const cJSON *arr = root;
	if (cJSON_IsObject(root))
		arr = cJSON_GetObjectItemCaseSensitive(root, "indicators");
	if (!cJSON_IsArray(arr)) {
		cJSON_Delete(root);
		return vg_error_at(err, VG_EPARSE, path, 0, 0,
				   "expected an array of indicators or an "
				   "object with an \"indicators\" array");
	}
	vg_batch *b;
	int rc = start_batch(s, path, o, &b, err);
	if (rc) {
		cJSON_Delete(root);
		return rc;
	}
	long i = 0;
	const cJSON *it;
	vg_indicator ind;
	vg_error why;
	cJSON_ArrayForEach(it, arr)
	{
		rep->rows++;
		vg_error_clear(&why);
		if (!vg_indicator_from_json(it, &ind, path, i, &why))
			vg_batch_indicator(b, &ind, &why);
		if (why.code) {
			if (!why.where[0])
				snprintf(why.where, sizeof(why.where), "%s",
					 path);
			row_error(rep, &why);
		}
		i++;
	}
	cJSON_Delete(root);
	return finish(b, path, o, rep, err);
}

/* ---- export ----------------------------------------------------------- */

typedef struct export_ctx {
	vg_read *r;
	FILE *out;
	uint64_t rows;
} export_ctx;

static int export_point(void *ud, const vg_point *p)
{
	export_ctx *x = ud;
	char ps[VG_PERIOD_STRLEN], vs[32];
	vg_period_format(p->period, ps, sizeof(ps));
	vg_value_format(p->value, vs, sizeof(vs));
	if (fprintf(x->out, "%s;%s;%s;%s;%s\n",
		    vg_read_indicator_code(x->r, p->ind),
		    vg_read_territory_code(x->r, p->terr), ps, vs,
		    vg_status_name(p->status)) < 0)
		return VG_EIO;
	x->rows++;
	return 0;
}

int vg_export_points(vg_store *s, const char *ind, FILE *out, uint64_t *rows,
		     vg_error *err)
{
	vg_read *r;
	int rc = vg_read_begin(s, &r, err);
	if (rc)
		return rc;
	uint32_t id = 0;
	if (ind && (rc = vg_read_indicator_id(r, ind, &id, err))) {
		vg_read_end(r);
		return rc;
	}
	export_ctx x = { r, out, 0 };
	fprintf(out, "indicator;territory;period;value;status\n");
	rc = vg_read_points(r, id, export_point, &x);
	vg_read_end(r);
	if (rows)
		*rows = x.rows;
	if (rc || fflush(out) != 0 || ferror(out))
		return vg_error_set(err, VG_EIO, "cannot write the export: %s",
				    strerror(errno));
	return 0;
}
