/* Files in and out of the store (include/vigie/io.h): value parsing and
 * formatting, indicator / territory / point imports against fixtures and
 * the real INSEE files of ../shared/data, located errors, all-or-nothing,
 * revisions, and the export -> import round trip. */
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>

#include "helpers.h"
#include "vigie/csv.h"
#include "vigie/io.h"

/* ---- helpers ---------------------------------------------------------- */

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

/* A fixture of tests/fixtures/io (VIGIE_ROOT is the repo root, else the
 * tests run from it). Each call has its own buffer so two can be used in
 * one expression. */
static const char *fixture(const char *name)
{
	static char buf[8][1024];
	static int next;
	char *b = buf[next++ % 8];
	snprintf(b, sizeof(buf[0]), "%s/tests/fixtures/io/%s",
		 env_or("VIGIE_ROOT", "."), name);
	return b;
}

/* Write `text` to dir/name; returns a malloc'ed path. */
static char *write_file(const char *dir, const char *name, const char *text)
{
	char *path = malloc(1024);
	cr_assert_not_null(path);
	snprintf(path, 1024, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	return path;
}

/* The whole content of a file (malloc'ed, NUL-terminated). */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot read %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

/* Store data directories live under a per-test temporary directory, so
 * rm_tree of that one cleans everything. */
static vg_store *open_in(const char *dir, const char *sub)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	cr_assert_eq(mkdir(path, 0750), 0, "mkdir %s", path);
	vg_store *s = NULL;
	OK(vg_store_open(&s, path, NULL, &E));
	return s;
}

static vg_store_stat stat_of(vg_store *s)
{
	vg_store_stat st;
	OK(vg_store_stat_get(s, &st, &E));
	return st;
}

/* The report is 16 KiB: one per test, static so helpers can share it. */
static vg_import_report R;

/* Publication times: everything a test imports must be dated in order,
 * and definitions are imported first, early. */
#define T_DEFS ((int64_t)1000000000) /* 2001-09-09 */

static void import_defs(vg_store *s)
{
	vg_import_opts o = { .published = T_DEFS };
	OK(vg_import_territories(s, fixture("territories.csv"), &o, &R, &E));
	cr_assert_eq(R.commit.territories, 8);
	OK(vg_import_indicators(s, fixture("indicators.json"), &o, &R, &E));
	cr_assert_eq(R.commit.indicators, 5);
}

/* One current point (or as of a time); returns the read code. */
static int get_point(vg_store *s, const char *ind, const char *terr,
		     const char *period, int64_t as_of, vg_point *p)
{
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t i, t;
	OK(vg_read_indicator_id(r, ind, &i, &E));
	OK(vg_read_territory_id(r, terr, &t, &E));
	int rc = vg_read_point(r, i, t, per(period), as_of, p);
	vg_read_end(r);
	return rc;
}

static double value_of(vg_store *s, const char *ind, const char *terr,
		       const char *period, vg_status *st)
{
	vg_point p;
	int rc = get_point(s, ind, terr, period, VG_LATEST, &p);
	cr_assert_eq(rc, 0, "no point %s %s %s", ind, terr, period);
	if (st)
		*st = p.status;
	return p.value;
}

/* ---- vg_value_parse / vg_value_format --------------------------------- */

static double parse_ok(const char *s)
{
	double v = -12345;
	bool supp = true;
	int rc = vg_value_parse(s, strlen(s), &v, &supp);
	cr_assert_eq(rc, 0, "'%s' refused", s);
	cr_assert_not(supp, "'%s' read as suppressed", s);
	return v;
}

Test(value, producer_forms)
{
	cr_assert_eq(parse_ok("12.5"), 12.5);
	cr_assert_eq(parse_ok("12,5"), 12.5);
	cr_assert_eq(parse_ok("-3e2"), -300);
	cr_assert_eq(parse_ok("1 234,5"), 1234.5);
	/* NBSP; the literal is split so \xA0 does not swallow the digits */
	cr_assert_eq(parse_ok("1\xC2\xA0" "234,5"), 1234.5);
	cr_assert_eq(parse_ok("12\xE2\x80\xAF" "345\xE2\x80\xAF" "678"),
		     12345678); /* narrow NBSP, as in French LibreOffice */
	cr_assert_eq(parse_ok(" 42 "), 42);
	cr_assert_eq(parse_ok("+7"), 7);
	cr_assert_eq(parse_ok("1,5e3"), 1500);
	cr_assert_eq(parse_ok("2.5E-1"), 0.25);
	/* The length is honoured: no NUL is needed after the value. */
	double v;
	bool supp;
	OK(vg_value_parse("12.5;ok", 4, &v, &supp));
	cr_assert_eq(v, 12.5);
}

Test(value, suppressed_forms)
{
	const char *forms[] = { "", "NS", "ns", "s", "S", "  " };
	for (size_t i = 0; i < sizeof(forms) / sizeof(*forms); i++) {
		double v = 1;
		bool supp = false;
		OK(vg_value_parse(forms[i], strlen(forms[i]), &v, &supp));
		cr_assert(supp, "'%s' not suppressed", forms[i]);
		cr_assert(isnan(v), "'%s' gave %g", forms[i], v);
	}
}

Test(value, rejects)
{
	/* "1.234,5" mixes both decimal marks; "1 ,5" and "1  234" are not
	 * digit grouping; 1e999 overflows. */
	const char *bad[] = { "abc",  "1.234,5", "0x10", "inf", "nan",
			      "12abc", "1e",     "--1",  "-",   ".",
			      "1e+",  "1.5.5",   "1 ,5", "1  234", "1e999",
			      "NaN",  "1,234,567", "12 %" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		double v = 0;
		bool supp = false;
		cr_assert_eq(vg_value_parse(bad[i], strlen(bad[i]), &v, &supp),
			     VG_EINVAL, "'%s' accepted as %g", bad[i], v);
	}
}

Test(value, format_round_trips)
{
	const double vals[] = { 0.1,	   1 / 3.0, 1e-300,
				123456789012345678.0, -0.5, 0,
				20754,	   5e-324,  1.7976931348623157e308,
				-2.5e-7 };
	char buf[32];
	for (size_t i = 0; i < sizeof(vals) / sizeof(*vals); i++) {
		vg_value_format(vals[i], buf, sizeof(buf));
		cr_assert_eq(strtod(buf, NULL), vals[i], "%.17g -> '%s'",
			     vals[i], buf);
		/* Our own parser must read our own output back. */
		cr_assert_eq(parse_ok(buf), vals[i], "'%s'", buf);
	}
	/* Short where it can be: no 0.10000000000000001. */
	vg_value_format(0.1, buf, sizeof(buf));
	cr_assert_str_eq(buf, "0.1");
	vg_value_format(-0.5, buf, sizeof(buf));
	cr_assert_str_eq(buf, "-0.5");
	vg_value_format(20754, buf, sizeof(buf));
	cr_assert_str_eq(buf, "20754");
	vg_value_format(1 / 3.0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "0.3333333333333333");
	vg_value_format(NAN, buf, sizeof(buf));
	cr_assert_str_eq(buf, "");
}

/* ---- indicators ------------------------------------------------------- */

Test(import_indicators, array_form)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	OK(vg_import_indicators(s, fixture("indicators.json"), NULL, &R, &E));
	cr_assert_eq(R.rows, 5);
	cr_assert_eq(R.bad_rows, 0);
	cr_assert_eq(R.commit.indicators, 5);
	cr_assert_neq(R.commit.vintage, 0);
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t id;
	vg_indicator ind;
	OK(vg_read_indicator_id(r, "gp_density", &id, &E));
	OK(vg_read_indicator(r, id, &ind, &E));
	cr_assert_str_eq(ind.label, "Densité de médecins généralistes");
	cr_assert_str_eq(ind.unit, "pour 100 000 habitants");
	cr_assert_eq(ind.decimals, 1);
	cr_assert_eq(ind.agg.kind, VG_AGG_RATIO);
	cr_assert_str_eq(ind.agg.a, "gp_count");
	cr_assert_str_eq(ind.agg.b, "population");
	cr_assert_eq(ind.agg.scale, 1e5);
	OK(vg_read_indicator_id(r, "unemployment_rate", &id, &E));
	OK(vg_read_indicator(r, id, &ind, &E));
	cr_assert_eq(ind.periodicity, VG_QUARTER);
	/* "wmean(population)" means wmean(self, population) */
	cr_assert_eq(ind.agg.kind, VG_AGG_WMEAN);
	cr_assert_str_eq(ind.agg.a, "unemployment_rate");
	cr_assert_str_eq(ind.agg.b, "population");
	OK(vg_read_indicator_id(r, "population", &id, &E));
	OK(vg_read_indicator(r, id, &ind, &E));
	cr_assert_str_eq(ind.licence, "Licence Ouverte 2.0");
	cr_assert_eq(ind.decimals, 0);
	vg_read_end(r);
	/* The vintage names the file and carries its checksum. */
	OK(vg_read_begin(s, &r, &E));
	vg_vintage vv;
	OK(vg_read_vintage(r, R.commit.vintage, &vv, &E));
	cr_assert_str_eq(vv.origin, "import indicators.json");
	cr_assert(strncmp(vv.checksum, "sha256:", 7) == 0, "%s", vv.checksum);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_indicators, object_form)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	OK(vg_import_indicators(s, fixture("indicators_object.json"),
				&(vg_import_opts){ .origin = "DREES" }, &R,
				&E));
	cr_assert_eq(R.rows, 2);
	cr_assert_eq(stat_of(s).indicators, 2);
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t id;
	vg_indicator ind;
	OK(vg_read_indicator_id(r, "apl", &id, &E));
	OK(vg_read_indicator(r, id, &ind, &E));
	cr_assert_eq(ind.periodicity, VG_YEAR); /* French "annee" */
	cr_assert_eq(ind.decimals, 2);
	cr_assert_str_eq(ind.agg.b, "pop_std");
	vg_vintage vv;
	OK(vg_read_vintage(r, R.commit.vintage, &vv, &E));
	cr_assert_str_eq(vv.origin, "DREES");
	vg_read_end(r);
	/* The same file again changes nothing: no vintage. */
	OK(vg_import_indicators(s, fixture("indicators_object.json"), NULL,
				&R, &E));
	cr_assert_eq(R.commit.vintage, 0);
	cr_assert_eq(R.commit.indicators, 0);
	cr_assert_eq(stat_of(s).vintages, 1);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_indicators, unknown_key_named)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	int rc = vg_import_indicators(s, fixture("indicators_unknown_key.json"),
				      NULL, &R, &E);
	cr_assert_eq(rc, VG_EBADROWS, "rc %d: %s", rc, E.msg);
	cr_assert_eq(R.bad_rows, 1);
	cr_assert_eq(R.nerrors, 1);
	cr_assert(strstr(R.errors[0].msg, "'license'") &&
			  strstr(R.errors[0].msg, "#2"),
		  "%s", R.errors[0].msg);
	cr_assert(strstr(E.msg, "license"), "%s", E.msg);
	cr_assert(strstr(E.where, "indicators_unknown_key.json"), "%s",
		  E.where);
	cr_assert_eq(stat_of(s).indicators, 0);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_indicators, invalid_json_located)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	int rc = vg_import_indicators(s, fixture("indicators_bad_syntax.json"),
				      NULL, &R, &E);
	cr_assert_eq(rc, VG_EPARSE, "rc %d: %s", rc, E.msg);
	cr_assert_eq(E.line, 3);
	cr_assert_eq(E.column, 17);
	/* Text after the array is invalid JSON too, not silently ignored. */
	rc = vg_import_indicators(s, fixture("indicators_trailing.json"), NULL,
				  &R, &E);
	cr_assert_eq(rc, VG_EPARSE, "rc %d: %s", rc, E.msg);
	cr_assert_eq(E.line, 2);
	cr_assert_eq(E.column, 1);
	/* Neither an array nor {"indicators": [...]} */
	char *p = write_file(dir, "obj.json", "{\"indicator\": []}\n");
	cr_assert_eq(vg_import_indicators(s, p, NULL, &R, &E), VG_EPARSE);
	cr_assert(strstr(E.msg, "\"indicators\""), "%s", E.msg);
	free(p);
	/* A missing file */
	p = write_file(dir, "x", "");
	strcat(p, ".nope");
	cr_assert_eq(vg_import_indicators(s, p, NULL, &R, &E), VG_ENOTFOUND);
	free(p);
	cr_assert_eq(stat_of(s).indicators, 0);
	cr_assert_eq(stat_of(s).vintages, 0);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_indicators, bad_aggregate_named)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	int rc = vg_import_indicators(
		s, fixture("indicators_bad_aggregate.json"), NULL, &R, &E);
	cr_assert_eq(rc, VG_EBADROWS, "rc %d: %s", rc, E.msg);
	cr_assert_eq(R.nerrors, 1);
	cr_assert(strstr(R.errors[0].msg, "mean(gp_count)") &&
			  strstr(R.errors[0].msg, "gp_density"),
		  "%s", R.errors[0].msg);
	cr_assert_eq(stat_of(s).indicators, 0);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_indicators, all_or_nothing)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	int rc = vg_import_indicators(s, fixture("indicators_one_bad.json"),
				      NULL, &R, &E);
	cr_assert_eq(rc, VG_EBADROWS, "rc %d: %s", rc, E.msg);
	cr_assert_eq(R.rows, 4);
	cr_assert_eq(R.bad_rows, 1);
	cr_assert(strstr(R.errors[0].msg, "#3") &&
			  strstr(R.errors[0].msg, "periodicity"),
		  "%s", R.errors[0].msg);
	cr_assert_eq(R.commit.vintage, 0);
	vg_store_stat st = stat_of(s);
	cr_assert_eq(st.indicators, 0);
	cr_assert_eq(st.vintages, 0);
	/* skip_bad: the three good ones go in */
	OK(vg_import_indicators(s, fixture("indicators_one_bad.json"),
				&(vg_import_opts){ .skip_bad = true }, &R,
				&E));
	cr_assert_eq(R.bad_rows, 1);
	cr_assert_eq(R.commit.indicators, 3);
	cr_assert_eq(stat_of(s).indicators, 3);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- territories: the real COG ------------------------------------------ */

/* Convert the real COG with the project's script into dir/terr.csv. */
static char *real_territories(const char *dir)
{
	const char *sh = env_or("VIGIE_SHARED", "../shared");
	const char *root = env_or("VIGIE_ROOT", ".");
	char *out = malloc(1024);
	cr_assert_not_null(out);
	snprintf(out, 1024, "%s/terr.csv", dir);
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "python3 '%s/scripts/cog_to_territories.py'"
		 " --cog '%s/data/cog/v_commune_2024.csv'"
		 " --names '%s/data/population/popref2025_rp2022'"
		 " --epci '%s/data/epci/EPCI_au_01-01-2024~Composition_"
		 "communale.csv'"
		 " --epci-names '%s/data/epci/EPCI_au_01-01-2024~EPCI.csv'"
		 " > '%s' 2>/dev/null",
		 root, sh, sh, sh, sh, out);
	int rc = system(cmd);
	cr_assert_eq(rc, 0, "cog_to_territories.py failed: %s", cmd);
	return out;
}

static vg_store *with_real_cog(const char *dir)
{
	char *terr = real_territories(dir);
	vg_store *s = open_in(dir, "d");
	OK(vg_import_territories(s, terr, &(vg_import_opts){ .published =
								     T_DEFS },
				 &R, &E));
	free(terr);
	return s;
}

static int count_cb(void *ud, uint32_t id)
{
	(void)id;
	(*(size_t *)ud)++;
	return 0;
}

static size_t count_level(vg_read *r, const char *level)
{
	size_t n = 0;
	OK(vg_read_territories(r, level, count_cb, &n));
	return n;
}

typedef struct within_ctx {
	vg_read *r;
	uint32_t anc;
	size_t n;
} within_ctx;

static int within_cb(void *ud, uint32_t id)
{
	within_ctx *w = ud;
	w->n += vg_read_territory_within(w->r, id, w->anc);
	return 0;
}

/* How many territories of `level` are within `anc`. */
static size_t count_within(vg_read *r, const char *level, const char *anc)
{
	within_ctx w = { r, 0, 0 };
	OK(vg_read_territory_id(r, anc, &w.anc, &E));
	OK(vg_read_territories(r, level, within_cb, &w));
	return w.n;
}

static bool within(vg_read *r, const char *terr, const char *anc)
{
	uint32_t t, a;
	OK(vg_read_territory_id(r, terr, &t, &E));
	OK(vg_read_territory_id(r, anc, &a, &E));
	return vg_read_territory_within(r, t, a);
}

static vg_territory read_terr(vg_read *r, const char *code)
{
	uint32_t id;
	vg_territory t;
	OK(vg_read_territory_id(r, code, &id, &E));
	OK(vg_read_territory(r, id, &t, &E));
	return t;
}

Test(import_territories, real_cog, .timeout = 120)
{
	char *dir = tmp_dir();
	vg_store *s = with_real_cog(dir);
	/* 36 355 territories of the COG 2024, plus 1 991 old commune codes
	 * (communes déléguées/associées with a code of their own) */
	cr_assert_eq(R.rows, 38346);
	cr_assert_eq(R.bad_rows, 0);
	cr_assert_eq(R.commit.territories, 38346);
	cr_assert_eq(stat_of(s).territories, 38346);

	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	cr_assert_eq(count_level(r, "com"), 34935 + 1991);
	cr_assert_eq(count_level(r, "arm"), 45);
	cr_assert_eq(count_level(r, "dep"), 101);
	cr_assert_eq(count_level(r, "reg"), 18);
	cr_assert_eq(count_level(r, "epci"), 1255);
	cr_assert_eq(count_level(r, "fr"), 1);

	/* Paris, Lyon, Marseille and their arrondissements municipaux */
	cr_assert_eq(count_within(r, "arm", "com:75056"), 20);
	cr_assert_eq(count_within(r, "arm", "com:69123"), 9);
	cr_assert_eq(count_within(r, "arm", "com:13055"), 16);
	cr_assert(within(r, "arm:75101", "reg:11"));
	cr_assert(within(r, "arm:75101", "fr"));
	cr_assert_not(within(r, "arm:75101", "com:69123"));
	/* Every commune is in France, and the départements partition them;
	 * old codes lie within nothing */
	cr_assert_eq(count_within(r, "com", "fr"), 34935);
	cr_assert_eq(count_within(r, "com", "dep:85"), 255);

	/* Old codes: Boufféré, merged into Montaigu-Vendée in 2019 */
	vg_territory old = read_terr(r, "com:85027");
	cr_assert_str_eq(old.name, "Boufféré");
	cr_assert_eq(old.nparents, 0);
	cr_assert_eq(old.nsuccessors, 1);
	cr_assert_str_eq(old.successors[0].code, "com:85146");
	cr_assert_eq(old.successors[0].weight, 1.0);
	cr_assert_not(within(r, "com:85027", "dep:85"));
	vg_territory_clear(&old);
	uint32_t mv;
	const vg_passage *pp;
	OK(vg_read_territory_id(r, "com:85146", &mv, &E));
	cr_assert_eq(vg_read_territory_predecessors(r, mv, &pp), 4);

	/* Corsica: 2A is a département code, not a number */
	cr_assert(within(r, "com:2A004", "dep:2A"));
	cr_assert(within(r, "com:2A004", "reg:94"));
	cr_assert_not(within(r, "com:2A004", "reg:93"));
	vg_territory t = read_terr(r, "com:2A004");
	cr_assert_str_eq(t.name, "Ajaccio");
	vg_territory_clear(&t);

	/* Names are UTF-8 with their accents */
	t = read_terr(r, "com:36044");
	cr_assert_str_eq(t.name, "Châteauroux");
	cr_assert_str_eq(t.level, "com");
	vg_territory_clear(&t);
	t = read_terr(r, "reg:84");
	cr_assert_str_eq(t.name, "Auvergne-Rhône-Alpes");
	vg_territory_clear(&t);
	t = read_terr(r, "dep:976");
	cr_assert_str_eq(t.name, "Mayotte");
	vg_territory_clear(&t);

	/* A commune with an EPCI has epci, dep, reg as parents */
	t = read_terr(r, "com:85146");
	cr_assert_eq(t.nparents, 3);
	cr_assert(strncmp(t.parents[0], "epci:", 5) == 0, "%s", t.parents[0]);
	cr_assert_str_eq(t.parents[1], "dep:85");
	cr_assert_str_eq(t.parents[2], "reg:52");
	vg_territory_clear(&t);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_territories, island_communes_without_epci, .timeout = 120)
{
	char *dir = tmp_dir();
	vg_store *s = with_real_cog(dir);
	/* The communes the EPCI file puts in no EPCI (ZZZZZZZZZ) */
	const char *sh = env_or("VIGIE_SHARED", "../shared");
	char comp[1024];
	snprintf(comp, sizeof(comp),
		 "%s/data/epci/EPCI_au_01-01-2024~Composition_communale.csv",
		 sh);
	vg_csv *c;
	OK(vg_csv_open_file(&c, comp, &(vg_csv_opts){ .header = true }, &E));
	int ccode = vg_csv_field_index(c, "CODGEO");
	int cepci = vg_csv_field_index(c, "EPCI");
	int cdep = vg_csv_field_index(c, "DEP");
	int creg = vg_csv_field_index(c, "REG");
	cr_assert(ccode >= 0 && cepci >= 0 && cdep >= 0 && creg >= 0);
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	vg_csv_row *row;
	size_t n = 0;
	int rc;
	while ((rc = vg_csv_next(c, &row, &E)) == 1) {
		if (strcmp(row->fields[cepci].ptr, "ZZZZZZZZZ"))
			continue;
		n++;
		char code[VG_CODE_MAX], dep[VG_CODE_MAX], reg[VG_CODE_MAX];
		snprintf(code, sizeof(code), "com:%s", row->fields[ccode].ptr);
		snprintf(dep, sizeof(dep), "dep:%s", row->fields[cdep].ptr);
		snprintf(reg, sizeof(reg), "reg:%s", row->fields[creg].ptr);
		vg_territory t = read_terr(r, code);
		cr_assert_eq(t.nparents, 2, "%s has %zu parents", code,
			     t.nparents);
		cr_assert_str_eq(t.parents[0], dep, "%s", code);
		cr_assert_str_eq(t.parents[1], reg, "%s", code);
		vg_territory_clear(&t);
		cr_assert(within(r, code, "fr"));
		cr_assert_eq(count_within(r, "epci", code), 0);
	}
	cr_assert_eq(rc, 0, "%s", E.msg);
	/* Île-de-Bréhat, Île-de-Sein, Ouessant, L'Île-d'Yeu */
	cr_assert_eq(n, 4);
	vg_territory t = read_terr(r, "com:85113");
	cr_assert_str_eq(t.name, "L'Île-d'Yeu");
	vg_territory_clear(&t);
	vg_read_end(r);
	vg_csv_close(c);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_territories, dangling_parent_refused)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	/* dep:44 is never defined; com:44109 on line 4 names it. */
	char *p = write_file(dir, "t.csv",
			     "code;level;name;parent_codes\n"
			     "fr;fr;France;\n"
			     "85;dep;Vendée;fr\n"
			     "44109;com;Nantes;dep:44,fr\n");
	int rc = vg_import_territories(s, p, NULL, &R, &E);
	cr_assert_eq(rc, VG_EBADROWS, "rc %d: %s", rc, E.msg);
	cr_assert_eq(R.nerrors, 1);
	cr_assert_eq(R.errors[0].line, 4);
	cr_assert_eq(R.errors[0].column, 18); /* parent_codes */
	cr_assert(strstr(R.errors[0].msg, "dep:44"), "%s", R.errors[0].msg);
	/* skip_bad cannot skip a reference: still nothing */
	rc = vg_import_territories(s, p, &(vg_import_opts){ .skip_bad = true },
				   &R, &E);
	cr_assert_eq(rc, VG_EBADROWS, "rc %d: %s", rc, E.msg);
	cr_assert_eq(stat_of(s).territories, 0);
	free(p);
	/* Bare codes with the level column are canonicalised */
	p = write_file(dir, "t2.csv",
		       "code;level;name;parent_codes\n"
		       "44109;com;Nantes;dep:44\n"
		       "44;DEP;Loire-Atlantique;FR\n"
		       "fr;fr;France;\n");
	OK(vg_import_territories(s, p, NULL, &R, &E));
	free(p);
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	cr_assert(within(r, "com:44109", "fr"));
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_territories, perimeter_members)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	import_defs(s);
	char *p = write_file(dir, "cls.csv",
			     "code;level;name;parent_codes;members\n"
			     "cls:littoral;cls;Littoral;dep:85;"
			     "com:85194, COM:44109\n");
	OK(vg_import_territories(s, p, NULL, &R, &E));
	free(p);
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	vg_territory t = read_terr(r, "cls:littoral");
	cr_assert_eq(t.nmembers, 2);
	cr_assert_str_eq(t.members[1], "com:44109");
	vg_territory_clear(&t);
	cr_assert(within(r, "com:44109", "cls:littoral"));
	cr_assert_not(within(r, "com:85146", "cls:littoral"));
	vg_read_end(r);
	/* One member code too long: the row is refused, located at the
	 * members column, not imported with an empty member list. */
	char big[200] = "cls:x;cls;X;;com:85146,com:";
	memset(big + strlen(big), '9', 70);
	strcat(big, "\n");
	char text[400];
	snprintf(text, sizeof(text), "code;level;name;parent_codes;members\n%s",
		 big);
	p = write_file(dir, "long.csv", text);
	int rc = vg_import_territories(s, p, NULL, &R, &E);
	cr_assert_eq(rc, VG_EBADROWS, "rc %d: %s", rc, E.msg);
	cr_assert_eq(R.errors[0].line, 2);
	cr_assert_eq(R.errors[0].column, 14);
	free(p);
	OK(vg_read_begin(s, &r, &E));
	uint32_t id;
	cr_assert_eq(vg_read_territory_id(r, "cls:x", &id, NULL),
		     VG_ENOTFOUND);
	vg_read_end(r);
	vg_store_close(s);
	rm_tree(dir);
}

/* The successors column: a merger, a split with shares; round trip
 * through the store and JSON; bad fields located at that column. */
Test(import_territories, successors_column)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	import_defs(s);
	char *p = write_file(dir, "old.csv",
			     "code;level;name;parent_codes;members;successors\n"
			     "com:85027;com;Boufféré;;;com:85146\n"
			     "com:85800;com;Scindée;;;"
			     "com:85146=0.6 | COM:85194=0.4\n");
	OK(vg_import_territories(s, p, NULL, &R, &E));
	cr_assert_eq(R.commit.territories, 2);
	free(p);
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	vg_territory t = read_terr(r, "com:85800");
	cr_assert_eq(t.nsuccessors, 2);
	cr_assert_str_eq(t.successors[1].code, "com:85194");
	cr_assert_eq(t.successors[0].weight, 0.6);
	cr_assert_eq(t.successors[1].weight, 0.4);
	cJSON *j = vg_territory_to_json(&t);
	char *js = cJSON_PrintUnformatted(j);
	cr_assert(strstr(js, "\"successors\":[{\"code\":\"com:85146\","
			     "\"weight\":0.6},{\"code\":\"com:85194\","
			     "\"weight\":0.4}]"), "%s", js);
	free(js);
	cJSON_Delete(j);
	vg_territory_clear(&t);
	uint32_t id;
	const vg_passage *pp;
	OK(vg_read_territory_id(r, "com:85146", &id, &E));
	cr_assert_eq(vg_read_territory_predecessors(r, id, &pp), 2);
	cr_assert_not(within(r, "com:85027", "dep:85"));
	vg_read_end(r);

	struct {
		const char *field, *why;
	} bad[] = {
		{ "com:85146=0.6|com:85194=0.3", "add up to 0.9" },
		{ "com:85146|com:85194", "each needs its share" },
		{ "com:85146=six", "not a number" },
		{ "com:85146=", "bad weight" },
		{ "com:85146=1.5", "not in (0, 1]" },
		{ "com:99999", "com:99999" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char text[256];
		snprintf(text, sizeof(text),
			 "code;level;name;parent_codes;members;successors\n"
			 "com:1;com;X;;;%s\n", bad[i].field);
		p = write_file(dir, "bad.csv", text);
		int rc = vg_import_territories(s, p, NULL, &R, &E);
		cr_assert_eq(rc, VG_EBADROWS, "%s: rc %d", bad[i].field, rc);
		cr_assert_eq(R.errors[0].line, 2);
		cr_assert_eq(R.errors[0].column, 15, "%s: column %ld",
			     bad[i].field, R.errors[0].column);
		cr_assert(strstr(R.errors[0].msg, bad[i].why), "%s: %s",
			  bad[i].field, R.errors[0].msg);
		free(p);
	}
	/* An old code with a parent: refused. */
	p = write_file(dir, "par.csv",
		       "code;level;name;parent_codes;members;successors\n"
		       "com:2;com;Y;dep:85;;com:85146\n");
	cr_assert_eq(vg_import_territories(s, p, NULL, &R, &E), VG_EBADROWS);
	cr_assert(strstr(R.errors[0].msg, "counted twice"), "%s",
		  R.errors[0].msg);
	free(p);
	vg_store_close(s);
	rm_tree(dir);
}

/* The official geography package (@etalab/decoupage-administratif 4.1.0,
 * COG 2024, installed in node_modules by scripts/install-deps.sh),
 * converted by scripts/decoupage_to_territories.py: it imports, has the
 * COG's territories level by level, and differs from the INSEE-derived
 * file only by the EPCI names (abbreviated "CC ..." in the package) and
 * 2 189 more old codes (anciensCodes: mergers older than the communes
 * déléguées). */
Test(import_territories, decoupage_package, .timeout = 120)
{
	char *dir = tmp_dir();
	const char *root = env_or("VIGIE_ROOT", ".");
	char out[1024], cmp[1024], cmd[4096];
	snprintf(out, sizeof(out), "%s/dec.csv", dir);
	snprintf(cmp, sizeof(cmp), "%s/cmp.txt", dir);
	snprintf(cmd, sizeof(cmd),
		 "python3 '%s/scripts/decoupage_to_territories.py' > '%s' "
		 "2>/dev/null && python3 '%s/scripts/decoupage_to_territories.py'"
		 " --compare '%s/tests/fixtures/real/territories_cog2024.csv' "
		 "> '%s' 2>/dev/null",
		 root, out, root, root, cmp);
	cr_assert_eq(system(cmd), 0,
		     "decoupage_to_territories.py failed (is node_modules "
		     "installed? scripts/install-deps.sh): %s", cmd);
	vg_store *s = open_in(dir, "d");
	OK(vg_import_territories(s, out, NULL, &R, &E));
	cr_assert_eq(R.bad_rows, 0);
	cr_assert_eq(R.commit.territories, 36355 + 4180);
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	cr_assert_eq(count_level(r, "com"), 34935 + 4180);
	cr_assert_eq(count_within(r, "com", "fr"), 34935);
	cr_assert_eq(count_level(r, "arm"), 45);
	cr_assert_eq(count_level(r, "epci"), 1255);
	cr_assert_eq(count_level(r, "dep"), 101);
	cr_assert_eq(count_level(r, "reg"), 18);
	cr_assert_eq(count_within(r, "com", "dep:85"), 255);
	/* An old code known from anciensCodes only (Valserhône, 2019). */
	vg_territory t = read_terr(r, "com:01126");
	cr_assert_eq(t.nsuccessors, 1);
	cr_assert_str_eq(t.successors[0].code, "com:01033");
	vg_territory_clear(&t);
	vg_read_end(r);
	vg_store_close(s);

	FILE *f = fopen(cmp, "r");
	cr_assert_not_null(f);
	char text[16384];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	const char *want[] = {
		"com;34935;34935;0\n", "arm;45;45;0\n", "epci;1255;1255;0\n",
		"dep;101;101;0\n", "reg;18;18;0\n",
		"com (old codes);4180;1991;2189\n",
		"codes only in territories_cog2024.csv: 0\n",
		"names that differ: 1233\n", "parents that differ: 0\n",
		"successors that differ: 0\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
		cr_assert(strstr(text, want[i]), "'%s' not in:\n%s", want[i],
			  text);
	rm_tree(dir);
}

/* ---- points: the real populations ------------------------------------- */

typedef struct sum_acc {
	size_t n, nan;
	double sum;
} sum_acc;

static int sum_cb(void *ud, const vg_point *p)
{
	sum_acc *a = ud;
	a->n++;
	if (isnan(p->value))
		a->nan++;
	else
		a->sum += p->value;
	return 0;
}

Test(import_points, real_populations, .timeout = 120)
{
	char *dir = tmp_dir();
	vg_store *s = with_real_cog(dir);
	vg_import_opts o = { .published = T_DEFS };
	OK(vg_import_indicators(s, fixture("indicators.json"), &o, &R, &E));

	/* Build the points file from the populations légales by commune. */
	char src[1024];
	snprintf(src, sizeof(src),
		 "%s/data/population/popref2025_rp2022/ensemble~Communes.csv",
		 env_or("VIGIE_SHARED", "../shared"));
	vg_csv *c;
	OK(vg_csv_open_file(&c, src, &(vg_csv_opts){ .header = true }, &E));
	int cdep = vg_csv_field_index(c, "Code département");
	int ccom = vg_csv_field_index(c, "Code commune");
	int cpop = vg_csv_field_index(c, "Population municipale");
	cr_assert(cdep >= 0 && ccom >= 0 && cpop >= 0);
	char path[1024];
	snprintf(path, sizeof(path), "%s/population.csv", dir);
	FILE *out = fopen(path, "w");
	cr_assert_not_null(out);
	fputs("indicator;territory;period;value\n", out);
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	vg_csv_row *row;
	int rc;
	double sum_com = 0, sum_arm = 0;
	size_t n_com = 0, n_arm = 0, n_com_skipped = 0;
	while ((rc = vg_csv_next(c, &row, &E)) == 1) {
		const char *dep = row->fields[cdep].ptr;
		/* Collectivités d'outre-mer: not in the COG communes */
		if (!strcmp(dep, "975") || !strcmp(dep, "977") ||
		    !strcmp(dep, "978")) {
			n_com_skipped++;
			continue;
		}
		/* DOM: département 971 + commune 101 -> 97101 */
		char insee[16], code[VG_CODE_MAX];
		snprintf(insee, sizeof(insee), "%.*s%s",
			 strncmp(dep, "97", 2) == 0 ? 2 : (int)strlen(dep), dep,
			 row->fields[ccom].ptr);
		/* Paris, Lyon and Marseille come by arrondissement. */
		uint32_t id;
		bool is_arm = false;
		snprintf(code, sizeof(code), "com:%s", insee);
		if (vg_read_territory_id(r, code, &id, NULL)) {
			snprintf(code, sizeof(code), "arm:%s", insee);
			cr_assert_eq(vg_read_territory_id(r, code, &id, &E), 0,
				     "%s: neither a commune nor an "
				     "arrondissement", insee);
			is_arm = true;
		}
		double v = strtod(row->fields[cpop].ptr, NULL);
		fprintf(out, "population;%s;2022;%s\n", code,
			row->fields[cpop].ptr);
		if (is_arm) {
			sum_arm += v;
			n_arm++;
		} else {
			sum_com += v;
			n_com++;
		}
	}
	cr_assert_eq(rc, 0, "%s", E.msg);
	vg_read_end(r);
	vg_csv_close(c);
	cr_assert_eq(fclose(out), 0);
	cr_assert_eq(n_com_skipped, 4);
	cr_assert_eq(n_arm, 45);

	o.published = T_DEFS + 86400;
	OK(vg_import_points(s, path, &o, &R, &E));
	cr_assert_eq(R.rows, n_com + n_arm);
	cr_assert_eq(R.bad_rows, 0);
	cr_assert_eq(R.commit.points_new, n_com + n_arm);
	cr_assert_eq(stat_of(s).points, n_com + n_arm);

	/* The slice of level com adds up to the file */
	OK(vg_read_begin(s, &r, &E));
	uint32_t pop;
	uint16_t lcom, larm;
	OK(vg_read_indicator_id(r, "population", &pop, &E));
	OK(vg_read_level_id(r, "com", &lcom, &E));
	OK(vg_read_level_id(r, "arm", &larm, &E));
	sum_acc acc = { 0, 0, 0 };
	OK(vg_read_slice(r, pop, per("2022"), lcom, 0, VG_LATEST, sum_cb,
			 &acc));
	cr_assert_eq(acc.n, n_com);
	cr_assert_eq(acc.nan, 0);
	cr_assert_eq(acc.sum, sum_com, "%.0f != %.0f", acc.sum, sum_com);
	sum_acc arm = { 0, 0, 0 };
	OK(vg_read_slice(r, pop, per("2022"), larm, 0, VG_LATEST, sum_cb,
			 &arm));
	cr_assert_eq(arm.n, 45);
	cr_assert_eq(arm.sum, sum_arm);
	/* Within a département, through the parents */
	uint32_t dep85;
	OK(vg_read_territory_id(r, "dep:85", &dep85, &E));
	sum_acc v = { 0, 0, 0 };
	OK(vg_read_slice(r, pop, per("2022"), lcom, dep85, VG_LATEST, sum_cb,
			 &v));
	cr_assert_eq(v.n, 255);
	vg_read_end(r);

	/* Spot checks against the file (Montaigu-Vendée, Les Abymes, Ajaccio,
	 * Paris 1er) */
	cr_assert_eq(value_of(s, "population", "com:85146", "2022", NULL),
		     20754);
	cr_assert_eq(value_of(s, "population", "com:97101", "2022", NULL),
		     51760);
	cr_assert_eq(value_of(s, "population", "com:2A004", "2022", NULL),
		     75343);
	vg_status st;
	cr_assert_gt(value_of(s, "population", "arm:75101", "2022", &st), 0);
	cr_assert_eq(st, VG_STATUS_OK);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- points: formats and located errors -------------------------------- */

Test(import_points, semicolon_file)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	import_defs(s);
	OK(vg_import_points(s, fixture("points_semicolon.csv"), NULL, &R, &E));
	cr_assert_eq(R.rows, 10);
	cr_assert_eq(R.commit.points_new, 10);
	vg_status st;
	/* digit groups: space, NBSP, narrow NBSP */
	cr_assert_eq(value_of(s, "population", "com:85146", "2022", &st),
		     20754);
	cr_assert_eq(st, VG_STATUS_OK);
	cr_assert_eq(value_of(s, "population", "com:85194", "2022", &st),
		     48740);
	cr_assert_eq(value_of(s, "population", "com:44109", "2022", &st),
		     323208);
	cr_assert_eq(st, VG_STATUS_PROVISIONAL);
	/* NS, empty, s: secret statistique */
	const char *supp[] = { "com:85146", "com:85194", "com:44109",
			       "dep:85" };
	for (size_t i = 0; i < 4; i++) {
		double v = value_of(s, "gp_count", supp[i], "2022", &st);
		cr_assert(isnan(v), "%s: %g", supp[i], v);
		cr_assert_eq(st, VG_STATUS_SUPPRESSED, "%s: %s", supp[i],
			     vg_status_name(st));
	}
	/* an empty value with status missing stays missing */
	cr_assert(isnan(value_of(s, "gp_count", "dep:44", "2022", &st)));
	cr_assert_eq(st, VG_STATUS_MISSING);
	/* decimal comma */
	cr_assert_eq(value_of(s, "gp_density", "dep:85", "2022", &st), 72.5);
	cr_assert_eq(st, VG_STATUS_ESTIMATED);
	cr_assert_eq(value_of(s, "unemployment_rate", "dep:85", "2024-Q1",
			      &st),
		     6.1);
	cr_assert_eq(st, VG_STATUS_PROVISIONAL);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_points, comma_file)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	import_defs(s);
	OK(vg_import_points(s, fixture("points_comma.csv"), NULL, &R, &E));
	cr_assert_eq(R.rows, 4);
	cr_assert_eq(R.commit.points_new, 4);
	vg_status st;
	/* a quoted decimal comma in a comma-separated file */
	cr_assert_eq(value_of(s, "population", "com:85146", "2021", &st),
		     20500.5);
	cr_assert_eq(st, VG_STATUS_PROVISIONAL);
	cr_assert_eq(value_of(s, "population", "com:85194", "2021", &st),
		     48000);
	cr_assert_eq(st, VG_STATUS_OK);
	cr_assert_eq(value_of(s, "population", "dep:85", "2021", &st), 1500);
	cr_assert(isnan(value_of(s, "gp_count", "com:44109", "2021", &st)));
	cr_assert_eq(st, VG_STATUS_SUPPRESSED);
	/* An unquoted decimal comma splits the value: refused at the extra
	 * field rather than read as 20. Trailing empty fields are fine. */
	char *p = write_file(dir, "unquoted.csv",
			     "indicator,territory,period,value\n"
			     "population,com:85146,2020,20,5\n"
			     "population,com:85194,2020,7,,\n");
	int rc = vg_import_points(s, p, NULL, &R, &E);
	cr_assert_eq(rc, VG_EBADROWS, "rc %d: %s", rc, E.msg);
	cr_assert_eq(R.bad_rows, 1);
	cr_assert_eq(R.errors[0].line, 2);
	cr_assert_eq(R.errors[0].column, 30);
	cr_assert(strstr(R.errors[0].msg, "quote"), "%s", R.errors[0].msg);
	vg_point pt;
	cr_assert_eq(get_point(s, "population", "com:85146", "2020",
			       VG_LATEST, &pt),
		     VG_ENOTFOUND);
	free(p);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_points, bad_period_located)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	import_defs(s);
	uint64_t vintages = stat_of(s).vintages;
	const char *path = fixture("points_bad_period.csv");
	int rc = vg_import_points(s, path, NULL, &R, &E);
	cr_assert_eq(rc, VG_EBADROWS, "rc %d: %s", rc, E.msg);
	cr_assert_eq(R.rows, 3);
	cr_assert_eq(R.bad_rows, 1);
	cr_assert_eq(R.nerrors, 1);
	cr_assert_eq(R.errors[0].code, VG_EPERIOD);
	cr_assert_eq(R.errors[0].line, 3);
	cr_assert_eq(R.errors[0].column, 22); /* the period field */
	cr_assert_str_eq(R.errors[0].where, path);
	cr_assert(strstr(R.errors[0].msg, "'20x0'"), "%s", R.errors[0].msg);
	/* the returned error points at the first bad row too */
	cr_assert_eq(E.line, 3);
	cr_assert_eq(E.column, 22);
	char buf[1024];
	vg_error_format(&E, buf, sizeof(buf));
	cr_assert(strstr(buf, "points_bad_period.csv:3:22: "), "%s", buf);
	cr_assert_eq(R.commit.vintage, 0);
	cr_assert_eq(stat_of(s).points, 0);
	cr_assert_eq(stat_of(s).vintages, vintages);

	/* skip_bad: the two good rows go in, the bad one is counted */
	OK(vg_import_points(s, path, &(vg_import_opts){ .skip_bad = true },
			    &R, &E));
	cr_assert_eq(R.rows, 3);
	cr_assert_eq(R.bad_rows, 1);
	cr_assert_eq(R.nerrors, 1);
	cr_assert_eq(R.commit.points_new, 2);
	cr_assert_eq(stat_of(s).points, 2);
	cr_assert_eq(value_of(s, "population", "com:44109", "2020", NULL),
		     320000);
	vg_point p;
	cr_assert_eq(get_point(s, "population", "com:85194", "2020",
			       VG_LATEST, &p),
		     VG_ENOTFOUND);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_points, every_error_located)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	import_defs(s);
	int rc = vg_import_points(s, fixture("points_errors.csv"), NULL, &R,
				  &E);
	cr_assert_eq(rc, VG_EBADROWS, "rc %d: %s", rc, E.msg);
	cr_assert_eq(R.rows, 7);
	cr_assert_eq(R.bad_rows, 6);
	cr_assert_eq(R.nerrors, 6);
	/* line, column, code, a word of the message */
	static const struct {
		long line, col;
		int code;
		const char *says;
	} want[] = {
		{ 2, 1, VG_ENOTFOUND, "indicator 'popul'" },
		{ 4, 12, VG_ENOTFOUND, "territory 'com:99999'" },
		{ 5, 27, VG_EINVAL, "'abc'" },
		{ 6, 22, VG_EPERIOD, "month" },
		{ 7, 29, VG_EINVAL, "'final'" },
		{ 8, 12, VG_EINVAL, "com:85146" },
	};
	for (size_t i = 0; i < 6; i++) {
		const vg_error *e = &R.errors[i];
		cr_assert_eq(e->line, want[i].line, "#%zu: line %ld (%s)", i,
			     e->line, e->msg);
		cr_assert_eq(e->column, want[i].col, "#%zu: col %ld (%s)", i,
			     e->column, e->msg);
		cr_assert_eq(e->code, want[i].code, "#%zu: code %d (%s)", i,
			     e->code, e->msg);
		cr_assert(strstr(e->msg, want[i].says), "#%zu: %s", i, e->msg);
	}
	cr_assert_eq(stat_of(s).points, 0);
	OK(vg_import_points(s, fixture("points_errors.csv"),
			    &(vg_import_opts){ .skip_bad = true }, &R, &E));
	cr_assert_eq(R.bad_rows, 6);
	cr_assert_eq(R.commit.points_new, 1);
	cr_assert_eq(value_of(s, "population", "com:85146", "2020", NULL),
		     20000);
	vg_store_close(s);
	rm_tree(dir);
}

Test(import_points, short_row_and_header)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	import_defs(s);
	/* The value column is the 5th: a 4-field row lacks it (this used to
	 * dereference NULL). */
	int rc = vg_import_points(s, fixture("points_short_row.csv"), NULL, &R,
				  &E);
	cr_assert_eq(rc, VG_EBADROWS, "rc %d: %s", rc, E.msg);
	cr_assert_eq(R.bad_rows, 1);
	cr_assert_eq(R.errors[0].line, 2);
	cr_assert(strstr(R.errors[0].msg, "4 fields"), "%s", R.errors[0].msg);
	/* Columns by name, in any order */
	OK(vg_import_points(s, fixture("points_short_row.csv"),
			    &(vg_import_opts){ .skip_bad = true }, &R, &E));
	cr_assert_eq(value_of(s, "population", "com:85194", "2020", NULL),
		     45000);
	/* A header without the value column is refused at line 1 */
	char *p = write_file(dir, "h.csv",
			     "indicator;territory;period;valeur\n"
			     "population;com:85146;2020;1\n");
	rc = vg_import_points(s, p, NULL, &R, &E);
	cr_assert_eq(rc, VG_EPARSE, "rc %d: %s", rc, E.msg);
	cr_assert_eq(E.line, 1);
	cr_assert(strstr(E.msg, "'value'"), "%s", E.msg);
	free(p);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- revisions through import ----------------------------------------- */

typedef struct hist_acc {
	size_t n;
	vg_point last;
} hist_acc;

static int hist_cb(void *ud, const vg_point *p)
{
	hist_acc *h = ud;
	h->n++;
	h->last = *p;
	return 0;
}

Test(import_points, revisions)
{
	char *dir = tmp_dir();
	vg_store *s = open_in(dir, "d");
	import_defs(s);
	int64_t t1, t2, t3;
	vg_time_parse("2023-01-10T00:00:00Z", &t1);
	vg_time_parse("2024-01-10T00:00:00Z", &t2);
	vg_time_parse("2025-01-10T00:00:00Z", &t3);
	char *f1 = write_file(dir, "v1.csv",
			      "indicator;territory;period;value;status\n"
			      "population;com:85146;2022;20754;provisional\n"
			      "population;com:85194;2022;48740;provisional\n"
			      "population;com:44109;2022;323208;provisional\n");
	/* Montaigu-Vendée revised, the others confirmed unchanged */
	char *f2 = write_file(dir, "v2.csv",
			      "indicator;territory;period;value;status\n"
			      "population;com:85146;2022;20801;provisional\n"
			      "population;com:85194;2022;48740;provisional\n"
			      "population;com:44109;2022;323208;provisional\n");
	OK(vg_import_points(s, f1, &(vg_import_opts){ .published = t1 }, &R,
			    &E));
	uint32_t v1 = R.commit.vintage;
	cr_assert_neq(v1, 0);
	cr_assert_eq(R.commit.points_new, 3);
	OK(vg_import_points(s, f2, &(vg_import_opts){ .published = t2 }, &R,
			    &E));
	uint32_t v2 = R.commit.vintage;
	cr_assert_gt(v2, v1);
	cr_assert_eq(R.commit.points_new, 0);
	cr_assert_eq(R.commit.points_changed, 1);
	cr_assert_eq(R.commit.points_unchanged, 2);
	cr_assert_eq(R.commit.time, t2);

	vg_point p;
	OK(get_point(s, "population", "com:85146", "2022", VG_LATEST, &p));
	cr_assert_eq(p.value, 20801);
	cr_assert_eq(p.vintage, v2);
	/* as of mid-2023: the first publication */
	int64_t mid;
	vg_time_parse("2023-06-30", &mid);
	OK(get_point(s, "population", "com:85146", "2022", mid, &p));
	cr_assert_eq(p.value, 20754);
	cr_assert_eq(p.vintage, v1);
	/* unchanged points keep their first vintage */
	OK(get_point(s, "population", "com:85194", "2022", VG_LATEST, &p));
	cr_assert_eq(p.vintage, v1);

	/* the history holds the old value, once */
	vg_read *r;
	OK(vg_read_begin(s, &r, &E));
	uint32_t pop, mv, sables;
	OK(vg_read_indicator_id(r, "population", &pop, &E));
	OK(vg_read_territory_id(r, "com:85146", &mv, &E));
	OK(vg_read_territory_id(r, "com:85194", &sables, &E));
	hist_acc h = { 0 };
	OK(vg_read_history(r, pop, mv, per("2022"), hist_cb, &h));
	cr_assert_eq(h.n, 1);
	cr_assert_eq(h.last.value, 20754);
	cr_assert_eq(h.last.status, VG_STATUS_PROVISIONAL);
	cr_assert_eq(h.last.vintage, v1);
	h.n = 0;
	OK(vg_read_history(r, pop, sables, per("2022"), hist_cb, &h));
	cr_assert_eq(h.n, 0);
	vg_vintage vv;
	OK(vg_read_vintage(r, v2, &vv, &E));
	cr_assert_str_eq(vv.origin, "import v2.csv");
	cr_assert_eq(vv.points_changed, 1);
	vg_read_end(r);

	/* the same file again writes nothing */
	uint64_t nv = stat_of(s).vintages;
	OK(vg_import_points(s, f2, &(vg_import_opts){ .published = t3 }, &R,
			    &E));
	cr_assert_eq(R.commit.vintage, 0);
	cr_assert_eq(R.commit.points_unchanged, 3);
	cr_assert_eq(R.commit.points_changed, 0);
	cr_assert_eq(stat_of(s).vintages, nv);
	cr_assert_eq(stat_of(s).history, 1);
	/* a status change alone is a revision */
	char *f3 = write_file(dir, "v3.csv",
			      "indicator;territory;period;value;status\n"
			      "population;com:44109;2022;323208;ok\n");
	OK(vg_import_points(s, f3, &(vg_import_opts){ .published = t3 }, &R,
			    &E));
	cr_assert_eq(R.commit.points_changed, 1);
	cr_assert_eq(stat_of(s).history, 2);
	free(f1);
	free(f2);
	free(f3);
	vg_store_close(s);
	rm_tree(dir);
}

/* ---- export and round trip --------------------------------------------- */

static char *export_to(vg_store *s, const char *ind, const char *path,
		       uint64_t *rows)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	OK(vg_export_points(s, ind, f, rows, &E));
	cr_assert_eq(fclose(f), 0);
	return slurp(path, NULL);
}

Test(export, round_trip)
{
	char *dir = tmp_dir();
	vg_store *a = open_in(dir, "a");
	import_defs(a);
	OK(vg_import_points(a, fixture("points_rt.csv"), NULL, &R, &E));
	cr_assert_eq(R.commit.points_new, 11);
	char ea[1024], eb[1024];
	snprintf(ea, sizeof(ea), "%s/a.csv", dir);
	snprintf(eb, sizeof(eb), "%s/b.csv", dir);
	uint64_t rows = 0;
	char *text_a = export_to(a, NULL, ea, &rows);
	cr_assert_eq(rows, 11);
	/* exact text: order, shortest exact values, statuses */
	char *want = slurp(fixture("points_rt_export.csv"), NULL);
	cr_assert_str_eq(text_a, want);
	free(want);

	/* into a fresh store, out again: byte-identical */
	vg_store *b = open_in(dir, "b");
	import_defs(b);
	OK(vg_import_points(b, ea, NULL, &R, &E));
	cr_assert_eq(R.commit.points_new, 11);
	char *text_b = export_to(b, NULL, eb, &rows);
	cr_assert_eq(rows, 11);
	cr_assert_str_eq(text_a, text_b);
	free(text_b);
	vg_store_close(b);

	/* the export re-imported into its own store changes nothing */
	uint64_t nv = stat_of(a).vintages;
	OK(vg_import_points(a, ea, NULL, &R, &E));
	cr_assert_eq(R.commit.vintage, 0);
	cr_assert_eq(R.commit.points_unchanged, 11);
	cr_assert_eq(stat_of(a).vintages, nv);
	cr_assert_eq(stat_of(a).history, 0);
	free(text_a);

	/* one indicator only */
	text_a = export_to(a, "unemployment_rate", ea, &rows);
	cr_assert_eq(rows, 2);
	cr_assert_str_eq(text_a, "indicator;territory;period;value;status\n"
				 "unemployment_rate;dep:85;2024-Q1;6.1;ok\n"
				 "unemployment_rate;dep:85;2024-Q2;5.95;ok\n");
	free(text_a);
	FILE *f = fopen(ea, "w");
	cr_assert_eq(vg_export_points(a, "nope", f, &rows, &E), VG_ENOTFOUND);
	fclose(f);
	vg_store_close(a);
	rm_tree(dir);
}
