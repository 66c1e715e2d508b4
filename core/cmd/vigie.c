/* vigie: the command-line client.
 *
 * Offline mode (`--data DIR`) opens the store directly. Every command is a
 * row of the `commands` table below, which drives dispatch and `help`. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/output.h"
#include "cmd/plugin_cmd.h"
#include "vigie/common.h"
#include "vigie/io.h"
#include "vigie/query.h"
#include "vigie/store.h"

typedef struct cli {
	const char *data;
	out_format fmt;
	vg_store *store;
	vg_error err;
} cli;

/* Exit codes: 0 ok, 1 operation failed, 2 usage error. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static int fail(cli *c)
{
	char buf[1024];
	fprintf(stderr, "vigie: %s\n", vg_error_format(&c->err, buf, sizeof(buf)));
	return EXIT_FAIL;
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "vigie%s%s: ", *cmd ? " " : "", cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see 'vigie help')\n");
	return EXIT_USAGE;
}

static int open_store(cli *c, bool write)
{
	vg_store_opts o = { .read_only = !write };
	if (vg_store_open(&c->store, c->data, &o, &c->err))
		return fail(c);
	return 0;
}

/* ---- option parsing shared by the commands --------------------------- */

typedef struct cmd_opts {
	const char *from, *to, *as_of, *level, *period, *in, *indicator,
		*published, *territory;
	bool skip_bad;
} cmd_opts;

/* Parse the options after the command words; positional arguments are
 * left in argv[optind..]. Returns 0 or EXIT_USAGE. */
static int parse_opts(const char *cmd, int argc, char **argv, cmd_opts *o)
{
	static const struct option longs[] = {
		{ "from", required_argument, 0, 'f' },
		{ "to", required_argument, 0, 't' },
		{ "as-of", required_argument, 0, 'a' },
		{ "level", required_argument, 0, 'l' },
		{ "period", required_argument, 0, 'p' },
		{ "in", required_argument, 0, 'i' },
		{ "indicator", required_argument, 0, 'n' },
		{ "published", required_argument, 0, 'P' },
		{ "skip-bad", no_argument, 0, 's' },
		{ "territory", required_argument, 0, 'T' },
		{ 0, 0, 0, 0 },
	};
	memset(o, 0, sizeof(*o));
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'f': o->from = optarg; break;
		case 't': o->to = optarg; break;
		case 'a': o->as_of = optarg; break;
		case 'l': o->level = optarg; break;
		case 'p': o->period = optarg; break;
		case 'i': o->in = optarg; break;
		case 'n': o->indicator = optarg; break;
		case 'P': o->published = optarg; break;
		case 's': o->skip_bad = true; break;
		case 'T': o->territory = optarg; break;
		default:
			return usage_error(cmd, "unknown or incomplete option "
					   "'%s'", argv[optind - 1]);
		}
	}
	return 0;
}

static int parse_period(const char *cmd, const char *s, vg_period *p)
{
	if (vg_period_parse(s, strlen(s), p))
		return usage_error(cmd, "'%s' is not a period (2024, 2024-Q1, "
				   "2024-03, 2024-03-15)", s);
	return 0;
}

static int parse_when(const char *cmd, const char *s, int64_t *t)
{
	if (!s) {
		*t = VG_LATEST;
		return 0;
	}
	if (vg_time_parse(s, t))
		return usage_error(cmd, "'%s' is not a date (2024-05-01) or a "
				   "UTC date-time (2024-05-01T12:00:00Z)", s);
	return 0;
}

/* ---- import / export -------------------------------------------------- */

static void print_report(const char *what, const char *path,
			 const vg_import_report *r, bool ok)
{
	for (size_t i = 0; i < r->nerrors; i++) {
		char buf[1024];
		fprintf(stderr, "  %s\n",
			vg_error_format(&r->errors[i], buf, sizeof(buf)));
	}
	if (r->bad_rows > r->nerrors)
		fprintf(stderr, "  ... and %llu more\n",
			(unsigned long long)(r->bad_rows - r->nerrors));
	if (!ok)
		return;
	const vg_commit_info *ci = &r->commit;
	fprintf(stderr,
		"imported %s from %s: %llu rows read, %llu skipped; "
		"%llu new, %llu revised, %llu unchanged points; "
		"%llu indicators and %llu territories defined or changed",
		what, path, (unsigned long long)r->rows,
		(unsigned long long)r->bad_rows,
		(unsigned long long)ci->points_new,
		(unsigned long long)ci->points_changed,
		(unsigned long long)ci->points_unchanged,
		(unsigned long long)ci->indicators,
		(unsigned long long)ci->territories);
	if (ci->vintage)
		fprintf(stderr, " (vintage %u)\n", ci->vintage);
	else
		fprintf(stderr, " (nothing changed: no vintage recorded)\n");
}

static int cmd_import(cli *c, int argc, char **argv)
{
	cmd_opts o;
	if (parse_opts("import", argc, argv, &o))
		return EXIT_USAGE;
	if (argc - optind != 2)
		return usage_error("import", "expects a kind and a file: "
				   "import indicators|territories|points "
				   "FILE%s", "");
	const char *kind = argv[optind], *path = argv[optind + 1];
	vg_import_opts io = { .skip_bad = o.skip_bad };
	if (o.published && vg_time_parse(o.published, &io.published))
		return usage_error("import", "--published '%s' is not a date",
				   o.published);
	int (*fn)(vg_store *, const char *, const vg_import_opts *,
		  vg_import_report *, vg_error *);
	if (!strcmp(kind, "indicators"))
		fn = vg_import_indicators;
	else if (!strcmp(kind, "territories"))
		fn = vg_import_territories;
	else if (!strcmp(kind, "points"))
		fn = vg_import_points;
	else
		return usage_error("import", "unknown kind '%s' (indicators, "
				   "territories or points)", kind);
	if (open_store(c, true))
		return EXIT_FAIL;
	vg_import_report *rep = calloc(1, sizeof(*rep));
	if (!rep)
		return EXIT_FAIL;
	int rc = fn(c->store, path, &io, rep, &c->err);
	print_report(kind, path, rep, rc == 0);
	free(rep);
	return rc ? fail(c) : EXIT_OK;
}

static int cmd_export(cli *c, int argc, char **argv)
{
	cmd_opts o;
	if (parse_opts("export", argc, argv, &o))
		return EXIT_USAGE;
	if (argc - optind != 1 || strcmp(argv[optind], "points"))
		return usage_error("export", "usage: export points "
				   "[--indicator IND]%s", "");
	if (open_store(c, false))
		return EXIT_FAIL;
	uint64_t rows;
	if (vg_export_points(c->store, o.indicator, stdout, &rows, &c->err))
		return fail(c);
	fprintf(stderr, "exported %llu points\n", (unsigned long long)rows);
	return EXIT_OK;
}

/* ---- queries ---------------------------------------------------------- */

/* Values shown with the indicator's decimals on a terminal; full
 * precision in CSV and JSON so nothing is lost downstream. */
static void fmt_value(cli *c, double v, int decimals, char *buf, size_t n)
{
	if (isnan(v))
		buf[0] = '\0';
	else if (c->fmt == OUT_TABLE && decimals >= 0)
		snprintf(buf, n, "%.*f", decimals, v);
	else
		vg_value_format(v, buf, n);
}

typedef struct q_ctx {
	cli *c;
	vg_read *r;
	out_table *t;
	int decimals;
} q_ctx;

static int series_row(void *ud, const vg_point *p)
{
	q_ctx *q = ud;
	char ps[VG_PERIOD_STRLEN], vs[40], vint[16], when[32] = "";
	vg_vintage v;
	vg_period_format(p->period, ps, sizeof(ps));
	fmt_value(q->c, p->value, q->decimals, vs, sizeof(vs));
	snprintf(vint, sizeof(vint), "%u", p->vintage);
	if (!vg_read_vintage(q->r, p->vintage, &v, NULL))
		vg_time_format(v.time, when, sizeof(when));
	const char *cells[] = { ps, vs, vg_status_name(p->status), vint, when };
	return out_row(q->t, cells) ? VG_ENOMEM : 0;
}

static int lookup(cli *c, vg_read *r, const char *ind, const char *terr,
		  uint32_t *iid, uint32_t *tid, int *decimals)
{
	if (ind && vg_read_indicator_id(r, ind, iid, &c->err))
		return -1;
	if (terr && vg_read_territory_id(r, terr, tid, &c->err))
		return -1;
	if (ind && decimals) {
		vg_indicator meta;
		*decimals = vg_read_indicator(r, *iid, &meta, NULL)
				    ? -1
				    : meta.decimals;
	}
	return 0;
}

/* Open the store and a read, resolve IND and TERR, and prepare the
 * table of a series-shaped answer (series, history). Returns 0, or an exit
 * code with everything released. */
static int begin_point_query(cli *c, const char *ind, const char *terr,
			     q_ctx *q, uint32_t *iid, uint32_t *tid)
{
	static const char *const cols[] = { "period", "value", "status",
					    "vintage", "published" };
	static const col_kind kinds[] = { COL_STR, COL_NUM, COL_STR, COL_NUM,
					  COL_STR };
	if (open_store(c, false))
		return EXIT_FAIL;
	q->c = c;
	q->decimals = -1;
	if (vg_read_begin(c->store, &q->r, &c->err))
		return fail(c);
	if (lookup(c, q->r, ind, terr, iid, tid, &q->decimals)) {
		vg_read_end(q->r);
		return fail(c);
	}
	q->t = out_new(c->fmt, 5, cols, kinds);
	return q->t ? 0 : (vg_read_end(q->r), EXIT_FAIL);
}

/* Release the read, print the table; rc is the reading's result. */
static int end_query(q_ctx *q, int rc)
{
	vg_read_end(q->r);
	return out_flush(q->t, stdout) || rc ? EXIT_FAIL : EXIT_OK;
}

static int cmd_series(cli *c, int argc, char **argv)
{
	cmd_opts o;
	vg_period from = 0, to = 0;
	int64_t as_of;
	if (parse_opts("series", argc, argv, &o))
		return EXIT_USAGE;
	if (argc - optind != 2)
		return usage_error("series", "usage: series IND TERR [--from P] "
				   "[--to P] [--as-of WHEN]%s", "");
	if ((o.from && parse_period("series", o.from, &from)) ||
	    (o.to && parse_period("series", o.to, &to)) ||
	    parse_when("series", o.as_of, &as_of))
		return EXIT_USAGE;
	q_ctx q;
	uint32_t ind, terr;
	int x = begin_point_query(c, argv[optind], argv[optind + 1], &q, &ind,
				  &terr);
	if (x)
		return x;
	return end_query(&q, vg_read_series(q.r, ind, terr, from, to, as_of,
					    series_row, &q));
}

static int slice_row(void *ud, const vg_point *p)
{
	q_ctx *q = ud;
	char vs[40];
	vg_territory t;
	fmt_value(q->c, p->value, q->decimals, vs, sizeof(vs));
	if (vg_read_territory(q->r, p->terr, &t, NULL))
		return VG_ESTORE;
	const char *cells[] = { t.code, t.name, vs, vg_status_name(p->status) };
	int rc = out_row(q->t, cells);
	vg_territory_clear(&t);
	return rc ? VG_ENOMEM : 0;
}

static int cmd_slice(cli *c, int argc, char **argv)
{
	cmd_opts o;
	vg_period period;
	int64_t as_of;
	if (parse_opts("slice", argc, argv, &o))
		return EXIT_USAGE;
	if (argc - optind != 1 || !o.level || !o.period)
		return usage_error("slice", "usage: slice IND --level L "
				   "--period P [--in TERR] [--as-of WHEN]%s",
				   "");
	if (parse_period("slice", o.period, &period) ||
	    parse_when("slice", o.as_of, &as_of))
		return EXIT_USAGE;
	if (open_store(c, false))
		return EXIT_FAIL;
	vg_read *r;
	if (vg_read_begin(c->store, &r, &c->err))
		return fail(c);
	uint32_t ind, in = 0;
	uint16_t level;
	int dec = -1;
	if (lookup(c, r, argv[optind], o.in, &ind, &in, &dec) ||
	    vg_read_level_id(r, o.level, &level, &c->err)) {
		vg_read_end(r);
		return fail(c);
	}
	static const char *const cols[] = { "territory", "name", "value",
					    "status" };
	static const col_kind kinds[] = { COL_STR, COL_STR, COL_NUM, COL_STR };
	q_ctx q = { c, r, out_new(c->fmt, 4, cols, kinds), dec };
	int rc = vg_read_slice(r, ind, period, level, in, as_of, slice_row, &q);
	vg_read_end(r);
	if (out_flush(q.t, stdout) || rc)
		return EXIT_FAIL;
	return EXIT_OK;
}

static int cmd_history(cli *c, int argc, char **argv)
{
	cmd_opts o;
	vg_period period;
	if (parse_opts("history", argc, argv, &o))
		return EXIT_USAGE;
	if (argc - optind != 3)
		return usage_error("history", "usage: history IND TERR PERIOD%s",
				   "");
	if (parse_period("history", argv[optind + 2], &period))
		return EXIT_USAGE;
	q_ctx q;
	uint32_t ind, terr;
	int x = begin_point_query(c, argv[optind], argv[optind + 1], &q, &ind,
				  &terr);
	if (x)
		return x;
	int rc = vg_read_history(q.r, ind, terr, period, series_row, &q);
	vg_point cur;
	if (!rc && !vg_read_point(q.r, ind, terr, period, VG_LATEST, &cur))
		rc = series_row(&q, &cur);
	return end_query(&q, rc);
}


/* ---- aggregate --------------------------------------------------------- */

static int agg_row(void *ud, const vg_agg_value *v)
{
	q_ctx *q = ud;
	char vs[40], members[16], with[16], supp[16], share[32] = "";
	vg_territory t;
	if (vg_read_territory(q->r, v->terr, &t, NULL))
		return VG_ESTORE;
	fmt_value(q->c, v->value, q->decimals, vs, sizeof(vs));
	snprintf(members, sizeof(members), "%u", v->cov.members);
	snprintf(with, sizeof(with), "%u", v->cov.with_data);
	snprintf(supp, sizeof(supp), "%u", v->cov.suppressed);
	if (v->source == VG_SOURCE_COMPUTED && !isnan(v->cov.weight_total) &&
	    v->cov.weight_total > 0)
		snprintf(share, sizeof(share), "%.4g",
			 100 * v->cov.weight_covered / v->cov.weight_total);
	bool computed = v->source == VG_SOURCE_COMPUTED;
	const char *cells[] = { t.code, t.name, vs,
				vg_status_name(v->status),
				vg_value_source_name(v->source),
				computed ? members : "", computed ? with : "",
				computed ? supp : "", share,
				computed ? (v->cov.partial ? "partial" : "complete")
					 : "" };
	int rc = out_row(q->t, cells);
	vg_territory_clear(&t);
	return rc ? VG_ENOMEM : 0;
}

static int cmd_aggregate(cli *c, int argc, char **argv)
{
	cmd_opts o;
	vg_period period;
	int64_t as_of;
	if (parse_opts("aggregate", argc, argv, &o))
		return EXIT_USAGE;
	if (argc - optind != 1 || !o.period || (!o.level == !o.territory))
		return usage_error("aggregate", "usage: aggregate IND --period P "
				   "(--level L [--in TERR] | --territory T) "
				   "[--as-of WHEN]%s", "");
	if (parse_period("aggregate", o.period, &period) ||
	    parse_when("aggregate", o.as_of, &as_of))
		return EXIT_USAGE;
	if (open_store(c, false))
		return EXIT_FAIL;
	q_ctx q = { c, NULL, NULL, -1 };
	if (vg_read_begin(c->store, &q.r, &c->err))
		return fail(c);
	uint32_t ind, in = 0, target = 0;
	uint16_t level = 0;
	vg_agg_ctx *ac = NULL;
	int rc = lookup(c, q.r, argv[optind], o.in, &ind, &in, &q.decimals);
	if (!rc && o.territory)
		rc = vg_read_territory_id(q.r, o.territory, &target, &c->err);
	if (!rc && o.level)
		rc = vg_read_level_id(q.r, o.level, &level, &c->err);
	if (!rc)
		rc = vg_agg_ctx_new(q.r, ind, period, as_of, &ac, &c->err);
	if (rc) {
		vg_read_end(q.r);
		return fail(c);
	}
	static const char *const cols[] = { "territory", "name", "value",
					    "status", "source", "members",
					    "with_data", "suppressed",
					    "weight_covered_pct", "coverage" };
	static const col_kind kinds[] = { COL_STR, COL_STR, COL_NUM, COL_STR,
					  COL_STR, COL_NUM, COL_NUM, COL_NUM,
					  COL_NUM, COL_STR };
	q.t = out_new(c->fmt, 10, cols, kinds);
	if (target) {
		vg_agg_value v;
		rc = vg_agg_value_at(ac, target, &v, &c->err);
		if (!rc)
			rc = agg_row(&q, &v);
	} else {
		rc = vg_aggregate_level(ac, level, in, agg_row, &q, &c->err);
	}
	vg_agg_ctx_free(ac);
	rc = end_query(&q, rc);
	if (rc && c->err.code)
		return fail(c);
	return rc;
}


/* ---- compare and rank ------------------------------------------------- */

typedef struct cmp_ctx {
	q_ctx q;
	double target; /* the first row's value: gaps are measured from it */
} cmp_ctx;

static int compare_row(void *ud, const vg_agg_value *v, int depth)
{
	cmp_ctx *x = ud;
	char vs[40], gap[40] = "", ratio[40] = "", dep[8];
	vg_territory t;
	if (depth == 0)
		x->target = v->value;
	if (vg_read_territory(x->q.r, v->terr, &t, NULL))
		return VG_ESTORE;
	fmt_value(x->q.c, v->value, x->q.decimals, vs, sizeof(vs));
	if (depth > 0 && !isnan(v->value) && !isnan(x->target)) {
		fmt_value(x->q.c, x->target - v->value, x->q.decimals, gap,
			  sizeof(gap));
		if (v->value != 0)
			snprintf(ratio, sizeof(ratio), "%.4g",
				 x->target / v->value);
	}
	snprintf(dep, sizeof(dep), "%d", depth);
	const char *cells[] = { t.code, t.name, dep, vs,
				vg_status_name(v->status),
				vg_value_source_name(v->source),
				v->source == VG_SOURCE_COMPUTED
					? (v->cov.partial ? "partial" : "complete")
					: "",
				gap, ratio };
	int rc = out_row(x->q.t, cells);
	vg_territory_clear(&t);
	return rc ? VG_ENOMEM : 0;
}

/* Shared by compare and rank: IND TERR --period P [--as-of WHEN]. */
static int begin_agg_query(cli *c, const char *cmd, int argc, char **argv,
			   cmd_opts *o, q_ctx *q, uint32_t *terr,
			   vg_agg_ctx **ac)
{
	vg_period period;
	int64_t as_of;
	if (parse_opts(cmd, argc, argv, o))
		return EXIT_USAGE;
	if (argc - optind != 2 || !o->period)
		return usage_error(cmd, "usage: IND TERR --period P [--in TERR] "
				   "[--as-of WHEN]%s", "");
	if (parse_period(cmd, o->period, &period) ||
	    parse_when(cmd, o->as_of, &as_of))
		return EXIT_USAGE;
	if (open_store(c, false))
		return EXIT_FAIL;
	*q = (q_ctx){ c, NULL, NULL, -1 };
	if (vg_read_begin(c->store, &q->r, &c->err))
		return fail(c);
	uint32_t ind;
	if (lookup(c, q->r, argv[optind], argv[optind + 1], &ind, terr,
		   &q->decimals) ||
	    vg_agg_ctx_new(q->r, ind, period, as_of, ac, &c->err)) {
		vg_read_end(q->r);
		return fail(c);
	}
	return 0;
}

static int cmd_compare(cli *c, int argc, char **argv)
{
	cmd_opts o;
	cmp_ctx x;
	uint32_t terr;
	vg_agg_ctx *ac;
	int e = begin_agg_query(c, "compare", argc, argv, &o, &x.q, &terr, &ac);
	if (e)
		return e;
	static const char *const cols[] = { "territory", "name", "depth",
					    "value", "status", "source",
					    "coverage", "gap", "ratio" };
	static const col_kind kinds[] = { COL_STR, COL_STR, COL_NUM, COL_NUM,
					  COL_STR, COL_STR, COL_STR, COL_NUM,
					  COL_NUM };
	x.q.t = out_new(c->fmt, 9, cols, kinds);
	int rc = vg_compare(ac, terr, compare_row, &x, &c->err);
	vg_agg_ctx_free(ac);
	rc = end_query(&x.q, rc);
	return rc && c->err.code ? fail(c) : rc;
}

static int cmd_rank(cli *c, int argc, char **argv)
{
	cmd_opts o;
	q_ctx q;
	uint32_t terr, in = 0;
	vg_agg_ctx *ac;
	int e = begin_agg_query(c, "rank", argc, argv, &o, &q, &terr, &ac);
	if (e)
		return e;
	vg_rank rk;
	int rc = 0;
	if (o.in)
		rc = vg_read_territory_id(q.r, o.in, &in, &c->err);
	if (!rc)
		rc = vg_rank_of(ac, terr, in, &rk, &c->err);
	vg_agg_ctx_free(ac);
	if (rc) {
		vg_read_end(q.r);
		return fail(c);
	}
	static const char *const cols[] = { "territory", "within", "value",
					    "position", "count", "percentile" };
	static const col_kind kinds[] = { COL_STR, COL_STR, COL_NUM, COL_NUM,
					  COL_NUM, COL_NUM };
	q.t = out_new(c->fmt, 6, cols, kinds);
	char vs[40], pos[16] = "", cnt[16], pct[16] = "";
	fmt_value(c, rk.value.value, q.decimals, vs, sizeof(vs));
	if (rk.position) {
		snprintf(pos, sizeof(pos), "%u", rk.position);
		snprintf(pct, sizeof(pct), "%.1f", rk.percentile);
	}
	snprintf(cnt, sizeof(cnt), "%u", rk.count);
	const char *cells[] = { vg_read_territory_code(q.r, terr),
				in ? vg_read_territory_code(q.r, in) : "",
				vs, pos, cnt, pct };
	out_row(q.t, cells);
	return end_query(&q, 0);
}


/* ---- profile and disparities ------------------------------------------ */

typedef struct prof_out {
	cli *c;
	vg_read *r;
	out_table *t;
	double target;
} prof_out;

static int profile_row(void *ud, uint32_t ind, const vg_agg_value *v,
		       int depth)
{
	prof_out *x = ud;
	vg_indicator m;
	char vs[40], gap[40] = "", dep[8];
	if (vg_read_indicator(x->r, ind, &m, NULL))
		return VG_ESTORE;
	if (depth == 0)
		x->target = v->value;
	fmt_value(x->c, v->value, m.decimals, vs, sizeof(vs));
	if (depth > 0 && !isnan(v->value) && !isnan(x->target))
		fmt_value(x->c, x->target - v->value, m.decimals, gap,
			  sizeof(gap));
	snprintf(dep, sizeof(dep), "%d", depth);
	const char *cells[] = { m.code, m.label, m.unit,
				vg_read_territory_code(x->r, v->terr), dep, vs,
				vg_status_name(v->status),
				vg_value_source_name(v->source),
				v->source == VG_SOURCE_COMPUTED
					? (v->cov.partial ? "partial" : "complete")
					: "",
				gap };
	return out_row(x->t, cells) ? VG_ENOMEM : 0;
}

static int cmd_profile(cli *c, int argc, char **argv)
{
	cmd_opts o;
	vg_period period;
	int64_t as_of;
	if (parse_opts("profile", argc, argv, &o))
		return EXIT_USAGE;
	if (argc - optind != 1 || !o.period)
		return usage_error("profile", "usage: profile TERR --period P "
				   "[--as-of WHEN]%s", "");
	if (parse_period("profile", o.period, &period) ||
	    parse_when("profile", o.as_of, &as_of))
		return EXIT_USAGE;
	if (open_store(c, false))
		return EXIT_FAIL;
	prof_out x = { c, NULL, NULL, NAN };
	uint32_t terr;
	if (vg_read_begin(c->store, &x.r, &c->err))
		return fail(c);
	if (vg_read_territory_id(x.r, argv[optind], &terr, &c->err)) {
		vg_read_end(x.r);
		return fail(c);
	}
	static const char *const cols[] = { "indicator", "label", "unit",
					    "territory", "depth", "value",
					    "status", "source", "coverage",
					    "gap" };
	static const col_kind kinds[] = { COL_STR, COL_STR, COL_STR, COL_STR,
					  COL_NUM, COL_NUM, COL_STR, COL_STR,
					  COL_STR, COL_NUM };
	x.t = out_new(c->fmt, 10, cols, kinds);
	int rc = vg_profile(x.r, terr, period, as_of, profile_row, &x, &c->err);
	vg_read_end(x.r);
	if (out_flush(x.t, stdout))
		return EXIT_FAIL;
	return rc ? fail(c) : EXIT_OK;
}

static int cmd_disparities(cli *c, int argc, char **argv)
{
	cmd_opts o;
	q_ctx q;
	uint32_t terr;
	vg_agg_ctx *ac;
	int e = begin_agg_query(c, "disparities", argc, argv, &o, &q, &terr,
				&ac);
	if (e)
		return e;
	uint16_t level;
	vg_disparity d;
	int rc = vg_read_level_id(q.r, o.level ? o.level : "com", &level,
				  &c->err);
	if (!rc)
		rc = vg_disparity_of(ac, terr, level, &d, &c->err);
	vg_agg_ctx_free(ac);
	if (rc) {
		vg_read_end(q.r);
		return fail(c);
	}
	static const char *const cols[] = { "territory", "level", "count",
					    "with_data", "min", "q1", "median",
					    "q3", "max", "max_min_ratio",
					    "min_territory", "max_territory" };
	static const col_kind kinds[] = { COL_STR, COL_STR, COL_NUM, COL_NUM,
					  COL_NUM, COL_NUM, COL_NUM, COL_NUM,
					  COL_NUM, COL_NUM, COL_STR, COL_STR };
	q.t = out_new(c->fmt, 12, cols, kinds);
	char cnt[16], wd[16], v[5][40], ratio[40] = "";
	double vals[5] = { d.min, d.q1, d.median, d.q3, d.max };
	snprintf(cnt, sizeof(cnt), "%u", d.count);
	snprintf(wd, sizeof(wd), "%u", d.with_data);
	for (int i = 0; i < 5; i++)
		fmt_value(c, vals[i], q.decimals, v[i], sizeof(v[i]));
	if (!isnan(d.max_min_ratio))
		snprintf(ratio, sizeof(ratio), "%.4g", d.max_min_ratio);
	const char *mn = d.with_data ? vg_read_territory_code(q.r, d.min_terr)
				     : "";
	const char *mx = d.with_data ? vg_read_territory_code(q.r, d.max_terr)
				     : "";
	const char *cells[] = { vg_read_territory_code(q.r, terr),
				vg_read_level_name(q.r, level), cnt, wd, v[0],
				v[1], v[2], v[3], v[4], ratio, mn, mx };
	out_row(q.t, cells);
	return end_query(&q, 0);
}

static int indicator_row(void *ud, uint32_t id)
{
	q_ctx *q = ud;
	vg_indicator m;
	char agg[200], dec[16] = "";
	if (vg_read_indicator(q->r, id, &m, NULL))
		return VG_ESTORE;
	vg_agg_format(&m.agg, agg, sizeof(agg));
	if (m.decimals >= 0)
		snprintf(dec, sizeof(dec), "%d", m.decimals);
	const char *cells[] = { m.code, m.label, m.unit,
				vg_periodicity_name(m.periodicity), agg, dec,
				m.source };
	return out_row(q->t, cells) ? VG_ENOMEM : 0;
}

static int cmd_indicators(cli *c, int argc, char **argv)
{
	if (open_store(c, false))
		return EXIT_FAIL;
	vg_read *r;
	if (vg_read_begin(c->store, &r, &c->err))
		return fail(c);
	static const char *const cols[] = { "code", "label", "unit",
					    "periodicity", "aggregate",
					    "decimals", "source" };
	q_ctx q = { c, r, out_new(c->fmt, 7, cols, NULL), -1 };
	int rc = vg_read_indicators(r, indicator_row, &q);
	vg_read_end(r);
	return out_flush(q.t, stdout) || rc ? EXIT_FAIL : EXIT_OK;
}

typedef struct terr_ctx {
	q_ctx q;
	uint32_t in;
} terr_ctx;

static int territory_row(void *ud, uint32_t id)
{
	terr_ctx *x = ud;
	if (x->in && !vg_read_territory_within(x->q.r, id, x->in))
		return 0;
	vg_territory t;
	if (vg_read_territory(x->q.r, id, &t, NULL))
		return VG_ESTORE;
	char parents[VG_MAX_PARENTS * VG_CODE_MAX] = "", members[16];
	for (size_t i = 0; i < t.nparents; i++) {
		if (i)
			strcat(parents, ",");
		strcat(parents, t.parents[i]);
	}
	snprintf(members, sizeof(members), "%zu", t.nmembers);
	const char *cells[] = { t.code, t.level, t.name, parents, members };
	int rc = out_row(x->q.t, cells);
	vg_territory_clear(&t);
	return rc ? VG_ENOMEM : 0;
}

static int cmd_territories(cli *c, int argc, char **argv)
{
	cmd_opts o;
	if (parse_opts("territories", argc, argv, &o))
		return EXIT_USAGE;
	if (open_store(c, false))
		return EXIT_FAIL;
	vg_read *r;
	if (vg_read_begin(c->store, &r, &c->err))
		return fail(c);
	terr_ctx x = { { c, r, NULL, -1 }, 0 };
	if (o.in && vg_read_territory_id(r, o.in, &x.in, &c->err)) {
		vg_read_end(r);
		return fail(c);
	}
	static const char *const cols[] = { "code", "level", "name",
					    "parent_codes", "members" };
	static const col_kind kinds[] = { COL_STR, COL_STR, COL_STR, COL_STR,
					  COL_NUM };
	x.q.t = out_new(c->fmt, 5, cols, kinds);
	int rc = vg_read_territories(r, o.level, territory_row, &x);
	vg_read_end(r);
	return out_flush(x.q.t, stdout) || rc ? EXIT_FAIL : EXIT_OK;
}

static int cmd_stat(cli *c, int argc, char **argv)
{
	if (open_store(c, false))
		return EXIT_FAIL;
	vg_store_stat st;
	if (vg_store_stat_get(c->store, &st, &c->err))
		return fail(c);
	static const char *const cols[] = { "key", "value" };
	static const col_kind kinds[] = { COL_STR, COL_NUM };
	out_table *t = out_new(c->fmt, 2, cols, kinds);
	struct {
		const char *k;
		unsigned long long v;
	} rows[] = {
		{ "indicators", st.indicators }, { "territories", st.territories },
		{ "points", st.points },	 { "revisions", st.history },
		{ "blocks", st.blocks },	 { "vintages", st.vintages },
		{ "map_size", st.map_size },	 { "used_bytes", st.used },
		{ "file_bytes", st.file_size },
	};
	for (size_t i = 0; i < VG_ARRAY_LEN(rows); i++) {
		char v[32];
		snprintf(v, sizeof(v), "%llu", rows[i].v);
		const char *cells[] = { rows[i].k, v };
		out_row(t, cells);
	}
	return out_flush(t, stdout) ? EXIT_FAIL : EXIT_OK;
}

static int cmd_plugin(cli *c, int argc, char **argv)
{
	return vg_cmd_plugin(argc, argv);
}

static int cmd_help(cli *c, int argc, char **argv);

/* The commands: one table drives dispatch and help. */
static const struct command {
	const char *name;
	int (*fn)(cli *, int, char **);
	const char *args;
	const char *help;
} commands[] = {
	{ "import", cmd_import,
	  "indicators|territories|points FILE [--skip-bad] [--published WHEN]",
	  "import a file; any bad row and nothing is imported" },
	{ "series", cmd_series, "IND TERR [--from P] [--to P] [--as-of WHEN]",
	  "one territory's values over time" },
	{ "slice", cmd_slice,
	  "IND --level L --period P [--in TERR] [--as-of WHEN]",
	  "every territory of a level for one period (a map)" },
	{ "aggregate", cmd_aggregate,
	  "IND --period P (--level L [--in TERR] | --territory T) [--as-of WHEN]",
	  "values at any scale, computed with the indicator's rule, with "
	  "coverage" },
	{ "compare", cmd_compare, "IND TERR --period P [--as-of WHEN]",
	  "a territory against each territory containing it and France, "
	  "with the gap" },
	{ "rank", cmd_rank, "IND TERR --period P [--in TERR] [--as-of WHEN]",
	  "position and percentile among the territories of its level" },
	{ "profile", cmd_profile, "TERR --period P [--as-of WHEN]",
	  "every indicator of a territory with its containers' values "
	  "(portrait de territoire)" },
	{ "disparities", cmd_disparities,
	  "IND TERR --period P [--level L] [--as-of WHEN]",
	  "spread of the values of its communes (or --level): min, quartiles, "
	  "max, max/min" },
	{ "history", cmd_history, "IND TERR PERIOD",
	  "every published value of one point, oldest first" },
	{ "export", cmd_export, "points [--indicator IND]",
	  "write points as CSV (re-importable) to standard output" },
	{ "indicators", cmd_indicators, "", "list indicators" },
	{ "territories", cmd_territories, "[--level L] [--in TERR]",
	  "list territories" },
	{ "stat", cmd_stat, "", "store statistics" },
	{ "plugin", cmd_plugin,
	  "check FILE.lua | run FILE.lua [--dry-run] [--data DIR] "
	  "[--config K=V]", "validate a plugin's manifest, or run it" },
	{ "help", cmd_help, "", "this text" },
};

static int cmd_help(cli *c, int argc, char **argv)
{
	printf("usage: vigie [--data DIR] [--format table|csv|json] COMMAND "
	       "...\n\n"
	       "  --data DIR    data directory (default $VIGIE_DATA, else "
	       "./var/data)\n"
	       "  --format F    table on a terminal, csv otherwise by "
	       "default\n\ncommands:\n");
	for (size_t i = 0; i < VG_ARRAY_LEN(commands); i++)
		printf("  %s %s\n      %s\n", commands[i].name, commands[i].args,
		       commands[i].help);
	printf("\nPeriods: 2024, 2024-Q1, 2024-03, 2024-03-15. WHEN: "
	       "2024-05-01 (end of that day, UTC) or 2024-05-01T12:00:00Z.\n"
	       "Territories: level:code, e.g. com:85146, epci:200081115, "
	       "dep:2A, reg:52, fr.\n");
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	cli c = { 0 };
	c.data = getenv("VIGIE_DATA");
	if (!c.data)
		c.data = "var/data";
	c.fmt = isatty(STDOUT_FILENO) ? OUT_TABLE : OUT_CSV;
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help")) {
			return cmd_help(&c, 0, NULL);
		} else if (!strcmp(a, "--data") && i + 1 < argc) {
			c.data = argv[++i];
		} else if (!strcmp(a, "--format") && i + 1 < argc) {
			const char *f = argv[++i];
			if (!strcmp(f, "table"))
				c.fmt = OUT_TABLE;
			else if (!strcmp(f, "csv"))
				c.fmt = OUT_CSV;
			else if (!strcmp(f, "json"))
				c.fmt = OUT_JSON;
			else
				return usage_error("", "unknown format '%s' "
						   "(table, csv, json)", f);
		} else {
			return usage_error("", "unknown or incomplete option "
					   "'%s'", a);
		}
	}
	if (i >= argc)
		return cmd_help(&c, 0, NULL), EXIT_USAGE;
	const char *name = argv[i];
	for (size_t k = 0; k < VG_ARRAY_LEN(commands); k++) {
		if (strcmp(commands[k].name, name))
			continue;
		/* The command sees its own argv: argv[0] is its name. */
		int rc = commands[k].fn(&c, argc - i, argv + i);
		vg_store_close(c.store);
		return rc;
	}
	return usage_error("", "unknown command '%s'", name);
}
