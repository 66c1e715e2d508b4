/* Tests for the streaming CSV reader (core/csv). Run from the repo root:
 * fixtures are read from tests/fixtures/, the real INSEE file from
 * $VIGIE_SHARED/data (default ../shared). */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigie/csv.h"

#define SPECTRUM "tests/fixtures/csv-spectrum"

/* ---- helpers ------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	cr_assert_not_null(f, "cannot open %s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_geq(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static vg_csv *open_str(const char *s, const vg_csv_opts *o)
{
	vg_csv *c = NULL;
	vg_error e = {0};
	int rc = vg_csv_open_mem(&c, s, strlen(s), "t.csv", o, &e);

	cr_assert_eq(rc, 0, "open: %d %s", rc, e.msg);
	cr_assert_not_null(c);
	return c;
}

/* Next row, which must exist. */
static vg_csv_row *next_ok(vg_csv *c)
{
	vg_csv_row *row = NULL;
	vg_error e = {0};
	int rc = vg_csv_next(c, &row, &e);

	cr_assert_eq(rc, 1, "next: %d %s (line %ld col %ld)", rc, e.msg,
		     e.line, e.column);
	cr_assert_not_null(row);
	return row;
}

static void expect_end(vg_csv *c)
{
	vg_csv_row *row = (vg_csv_row *)1;

	cr_assert_eq(vg_csv_next(c, &row, NULL), 0);
	cr_assert_null(row);
	/* End is sticky too. */
	cr_assert_eq(vg_csv_next(c, &row, NULL), 0);
}

static void expect_field(const vg_csv_row *row, size_t i, const char *want)
{
	cr_assert_lt(i, row->nfields, "row at line %ld has %zu fields",
		     row->line, row->nfields);
	cr_assert_eq(row->fields[i].len, strlen(want));
	cr_assert_str_eq(row->fields[i].ptr, want);
}

/* ---- csv-spectrum: every case against its expected JSON ------------ */

/* Upstream defect, not ours: in location_coordinates the CSV holds
 * 2095257564 but the JSON expects 1234567890
 * (github.com/max-mapper/csv-spectrum/issues/20). The fixtures stay
 * verbatim; the test expects what the CSV actually says. */
static const char *spectrum_override(const char *name, const char *key)
{
	if (!strcmp(name, "location_coordinates")
	    && !strcmp(key, "Contact Phone Number"))
		return "2095257564";
	return NULL;
}

static void check_spectrum_with(const char *name, vg_csv *c)
{
	char path[256];
	char *text;
	cJSON *json, *rows;
	size_t nrows, nhead;

	snprintf(path, sizeof(path), SPECTRUM "/json/%s.json", name);
	text = slurp(path, NULL);
	json = cJSON_Parse(text);
	free(text);
	cr_assert_not_null(json, "bad JSON in %s", path);
	/* One case is a bare object rather than an array of one. */
	if (cJSON_IsObject(json)) {
		rows = cJSON_CreateArray();
		cJSON_AddItemReferenceToArray(rows, json);
	} else {
		rows = json;
	}
	cr_assert(cJSON_IsArray(rows));
	nrows = (size_t)cJSON_GetArraySize(rows);
	cr_assert_eq(vg_csv_separator(c), ',');
	vg_csv_header(c, &nhead);

	for (size_t r = 0; r < nrows; r++) {
		cJSON *obj = cJSON_GetArrayItem(rows, (int)r);
		vg_csv_row *row = next_ok(c);
		size_t i = 0;
		cJSON *kv;

		cr_assert_eq(row->nfields, nhead, "%s row %zu", name, r);
		cJSON_ArrayForEach(kv, obj)
		{
			const char *want = spectrum_override(name, kv->string);

			cr_assert(cJSON_IsString(kv));
			if (!want)
				want = kv->valuestring;
			cr_assert_eq(vg_csv_field_index(c, kv->string), (int)i,
				     "%s: key %s", name, kv->string);
			cr_assert_eq(row->fields[i].len, strlen(want),
				     "%s row %zu key %s: got '%s'", name, r,
				     kv->string, row->fields[i].ptr);
			cr_assert_eq(memcmp(row->fields[i].ptr, want,
					    row->fields[i].len), 0,
				     "%s row %zu key %s: got '%s'", name, r,
				     kv->string, row->fields[i].ptr);
			i++;
		}
		cr_assert_eq(i, nhead, "%s: JSON has %zu keys", name, i);
	}
	expect_end(c);
	if (rows != json)
		cJSON_Delete(rows);
	cJSON_Delete(json);
}

static void check_spectrum(const char *name)
{
	static const size_t read_sizes[] = {1, 2, 3, 7};
	char path[256];
	vg_csv *c = NULL;
	vg_error e = {0};
	vg_csv_opts o = {.header = true};
	size_t len;
	char *data;

	/* From the file, default chunk size, separator auto-detected. */
	snprintf(path, sizeof(path), SPECTRUM "/csvs/%s.csv", name);
	cr_assert_eq(vg_csv_open_file(&c, path, &o, &e), 0, "%s", e.msg);
	check_spectrum_with(name, c);
	vg_csv_close(c);

	/* From memory in tiny chunks: every quote, CRLF and multi-byte
	 * character ends up split across a chunk boundary. */
	data = slurp(path, &len);
	for (size_t k = 0; k < sizeof(read_sizes) / sizeof(*read_sizes); k++) {
		o.read_size = read_sizes[k];
		cr_assert_eq(vg_csv_open_mem(&c, data, len, name, &o, &e), 0,
			     "%s", e.msg);
		check_spectrum_with(name, c);
		vg_csv_close(c);
	}
	free(data);
}

Test(csv_spectrum, comma_in_quotes) { check_spectrum("comma_in_quotes"); }
Test(csv_spectrum, empty) { check_spectrum("empty"); }
Test(csv_spectrum, empty_crlf) { check_spectrum("empty_crlf"); }
Test(csv_spectrum, escaped_quotes) { check_spectrum("escaped_quotes"); }
Test(csv_spectrum, json) { check_spectrum("json"); }
Test(csv_spectrum, location_coordinates)
{
	check_spectrum("location_coordinates");
}
Test(csv_spectrum, newlines) { check_spectrum("newlines"); }
Test(csv_spectrum, newlines_crlf) { check_spectrum("newlines_crlf"); }
Test(csv_spectrum, quotes_and_newlines)
{
	check_spectrum("quotes_and_newlines");
}
Test(csv_spectrum, simple) { check_spectrum("simple"); }
Test(csv_spectrum, simple_crlf) { check_spectrum("simple_crlf"); }
Test(csv_spectrum, utf8) { check_spectrum("utf8"); }

/* ---- encodings ----------------------------------------------------- */

Test(csv, bom_is_stripped)
{
	vg_csv_opts o = {.header = true};
	vg_csv *c = open_str("\xEF\xBB\xBF"
			     "CODGEO,POP\n01001,832\n",
			     &o);
	size_t n;
	const char *const *h = vg_csv_header(c, &n);

	cr_assert_eq(n, 2);
	cr_assert_str_eq(h[0], "CODGEO");
	cr_assert_eq(vg_csv_field_index(c, "CODGEO"), 0);
	vg_csv_row *row = next_ok(c);
	expect_field(row, 0, "01001");
	cr_assert_eq(row->line, 2);
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, bom_column_counts_after_it)
{
	vg_csv *c = (vg_csv *)1;
	vg_error e = {0};
	const char *s = "\xEF\xBB\xBF"
			"a,\"b\n";

	/* No row before the error: open itself fails. */
	cr_assert_eq(vg_csv_open_mem(&c, s, strlen(s), "t", NULL, &e),
		     VG_EPARSE);
	cr_assert_null(c);
	cr_assert_eq(e.line, 1);
	cr_assert_eq(e.column, 3);
}

Test(csv, latin1_is_converted)
{
	vg_csv_opts o = {.header = true, .encoding = VG_CSV_LATIN1};
	vg_csv *c = open_str("nom;val\nCl\xE9menciat;1\n\xC9vreux;2\n", &o);

	cr_assert_eq(vg_csv_separator(c), ';');
	vg_csv_row *row = next_ok(c);
	expect_field(row, 0, "Cl\xC3\xA9menciat"); /* Clémenciat */
	row = next_ok(c);
	expect_field(row, 0, "\xC3\x89vreux"); /* Évreux */
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, latin1_file_with_cp1252)
{
	vg_csv *c = NULL;
	vg_error e = {0};
	vg_csv_opts o = {.header = true, .encoding = VG_CSV_LATIN1};

	cr_assert_eq(vg_csv_open_file(&c, "tests/fixtures/csv/latin1.csv", &o,
				      &e),
		     0, "%s", e.msg);
	cr_assert_eq(vg_csv_field_index(c, "LIBGEO"), 1);
	vg_csv_row *row = next_ok(c);
	expect_field(row, 1, "L'Abergement-Cl\xC3\xA9menciat");
	/* Columns count characters, so they match what an editor shows in
	 * the original Latin-1 file. */
	cr_assert_eq(vg_csv_field_col(row, 2), 31);
	row = next_ok(c);
	expect_field(row, 0, "2A004");
	/* 0x80 is the euro sign, 0x92 a right single quote in cp1252. */
	expect_field(row, 2, "Corse \xE2\x82\xAC \xE2\x80\x99test\xE2\x80\x99");
	cr_assert_eq(row->line, 3);
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, latin1_read_as_utf8_is_an_error)
{
	vg_csv *c = NULL;
	vg_error e = {0};
	vg_csv_opts o = {.header = true};
	const char *s = "nom;val\nOK;1\nCl\xE9menciat;2\n";

	cr_assert_eq(vg_csv_open_mem(&c, s, strlen(s), "t.csv", &o, &e), 0);
	vg_csv_row *row = next_ok(c);
	expect_field(row, 0, "OK");
	cr_assert_eq(vg_csv_next(c, &row, &e), VG_EPARSE);
	cr_assert_eq(e.line, 3);
	cr_assert_eq(e.column, 1);
	cr_assert(strstr(e.msg, "UTF-8"), "%s", e.msg);
	vg_csv_close(c);
}

Test(csv, utf16_is_refused)
{
	vg_csv *c = (vg_csv *)1;
	vg_error e = {0};
	const char s[] = "\xFF\xFE"
			 "a\0,\0b\0";

	cr_assert_eq(vg_csv_open_mem(&c, s, sizeof(s) - 1, "t.csv", NULL, &e),
		     VG_EPARSE);
	cr_assert_null(c);
	cr_assert(strstr(e.msg, "UTF-16"), "%s", e.msg);
}

/* ---- separators and French number formats ------------------------ */

Test(csv, semicolon_autodetected_with_decimal_comma)
{
	vg_csv_opts o = {.header = true};
	vg_csv *c = open_str("CODGEO;AN;VAL\n01001;2024;1,5\n2A004;2024;"
			     "\"12,25\"\n",
			     &o);

	cr_assert_eq(vg_csv_separator(c), ';');
	vg_csv_row *row = next_ok(c);
	cr_assert_eq(row->nfields, 3);
	expect_field(row, 0, "01001");
	expect_field(row, 1, "2024");
	expect_field(row, 2, "1,5");
	row = next_ok(c);
	expect_field(row, 0, "2A004");
	expect_field(row, 2, "12,25");
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, semicolon_autodetected_without_header)
{
	vg_csv *c = open_str("01001;2024;1,5\n", NULL);

	cr_assert_eq(vg_csv_separator(c), ';');
	cr_assert_null(vg_csv_header(c, NULL));
	cr_assert_eq(vg_csv_field_index(c, "x"), VG_ENOTFOUND);
	vg_csv_row *row = next_ok(c);
	cr_assert_eq(row->nfields, 3);
	expect_field(row, 2, "1,5");
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, other_separators_autodetected)
{
	static const struct {
		const char *in;
		char sep;
	} cases[] = {
		{"a\tb\tc\n1\t2\t3\n", '\t'},
		{"a|b|c\n1|2|3\n", '|'},
		{"a,b,c\n1,2,3\n", ','},
		/* Separators inside quotes do not count. */
		{"\"x;y;z\",b\n1,2\n", ','},
		/* The first non-blank line decides. */
		{"\n\na;b\n1,5;2\n", ';'},
		/* A single column falls back to ','. */
		{"a\n1\n", ','},
		/* Ties go to ';' (the French default). */
		{"a;b,c\n", ';'},
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
		vg_csv *c = open_str(cases[k].in, NULL);

		cr_assert_eq(vg_csv_separator(c), cases[k].sep, "case %zu", k);
		vg_csv_close(c);
	}
}

Test(csv, tab_separator_keeps_empty_fields)
{
	vg_csv_opts o = {.sep = '\t'};
	vg_csv *c = open_str("a\t\tc\t\n", &o);
	vg_csv_row *row = next_ok(c);

	cr_assert_eq(row->nfields, 4);
	expect_field(row, 0, "a");
	expect_field(row, 1, "");
	expect_field(row, 2, "c");
	expect_field(row, 3, "");
	cr_assert_eq(vg_csv_field_col(row, 2), 4);
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, explicit_separator_wins)
{
	vg_csv_opts o = {.sep = ',', .header = true};
	vg_csv *c = open_str("a;b,c\n1;2,3\n", &o);
	vg_csv_row *row = next_ok(c);

	cr_assert_eq(row->nfields, 2);
	expect_field(row, 0, "1;2");
	vg_csv_close(c);
}

/* ---- skip_lines ------------------------------------------------------ */

Test(csv, skip_lines_insee_title_block)
{
	vg_csv *c = NULL;
	vg_error e = {0};
	vg_csv_opts o = {.header = true, .skip_lines = 3};

	/* The title block has a BOM, an accent and an unbalanced quote: all
	 * ignored. Line numbers stay those of the file. */
	cr_assert_eq(vg_csv_open_file(&c, "tests/fixtures/csv/insee_title.csv",
				      &o, &e),
		     0, "%s", e.msg);
	cr_assert_eq(vg_csv_separator(c), ';');
	size_t n;
	const char *const *h = vg_csv_header(c, &n);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(h[0], "CODGEO");
	cr_assert_str_eq(h[3], "TAUX");
	vg_csv_row *row = next_ok(c);
	cr_assert_eq(row->line, 5);
	expect_field(row, 0, "01001");
	expect_field(row, 3, "1,5");
	row = next_ok(c);
	cr_assert_eq(row->line, 7);
	expect_field(row, 0, "01002");
	expect_field(row, 3, "12,25");
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, skip_lines_crlf_in_tiny_chunks)
{
	static const char s[] = "title\r\n\"unbalanced\r\nA;B\r\n1;2\r\n";

	for (size_t rs = 1; rs <= 4; rs++) {
		vg_csv *c = NULL;
		vg_csv_opts o = {.header = true, .skip_lines = 2,
				 .read_size = rs};

		cr_assert_eq(vg_csv_open_mem(&c, s, sizeof(s) - 1, "t", &o,
					     NULL),
			     0);
		cr_assert_eq(vg_csv_separator(c), ';');
		cr_assert_eq(vg_csv_field_index(c, "B"), 1);
		vg_csv_row *row = next_ok(c);
		cr_assert_eq(row->line, 4, "read_size %zu", rs);
		expect_field(row, 1, "2");
		expect_end(c);
		vg_csv_close(c);
	}
}

Test(csv, skip_more_lines_than_the_file_has)
{
	vg_csv_opts o = {.header = true, .skip_lines = 10};
	vg_csv *c = open_str("a\nb\n", &o);
	size_t n = 99;

	cr_assert_null(vg_csv_header(c, &n));
	cr_assert_eq(n, 0);
	expect_end(c);
	vg_csv_close(c);
}

/* ---- malformed input ------------------------------------------------ */

Test(csv, unterminated_quote_is_located)
{
	vg_csv *c = NULL;
	vg_error e = {0};
	vg_csv_row *row;
	char buf[600];
	vg_csv_opts o = {.header = true};
	const char *s = "a,b\n1,2\n3,\"abc\n4,5\n";

	cr_assert_eq(vg_csv_open_mem(&c, s, strlen(s), "data.csv", &o, &e), 0);
	/* Rows before the error still come out. */
	row = next_ok(c);
	expect_field(row, 0, "1");
	cr_assert_eq(vg_csv_next(c, &row, &e), VG_EPARSE);
	cr_assert_null(row);
	cr_assert_eq(e.code, VG_EPARSE);
	cr_assert_eq(e.line, 3);
	cr_assert_eq(e.column, 3); /* the opening quote */
	cr_assert_str_eq(e.where, "data.csv");
	cr_assert_str_eq(vg_error_format(&e, buf, sizeof(buf)),
			 "data.csv:3:3: unterminated quoted field");
	/* Sticky, with the same detail. */
	memset(&e, 0, sizeof(e));
	cr_assert_eq(vg_csv_next(c, &row, &e), VG_EPARSE);
	cr_assert_eq(e.line, 3);
	vg_csv_close(c);
}

Test(csv, unterminated_quote_in_file_and_tiny_chunks)
{
	/* Same error whatever the chunking, also at the very last byte. */
	static const char s[] = "x;y\n1;2\n\"open";

	for (size_t rs = 1; rs <= 5; rs++) {
		vg_csv *c = NULL;
		vg_error e = {0};
		vg_csv_row *row;
		vg_csv_opts o = {.read_size = rs};

		cr_assert_eq(vg_csv_open_mem(&c, s, sizeof(s) - 1, "t", &o,
					     &e),
			     0);
		next_ok(c);
		next_ok(c);
		cr_assert_eq(vg_csv_next(c, &row, &e), VG_EPARSE);
		cr_assert_eq(e.line, 3);
		cr_assert_eq(e.column, 1);
		cr_assert_str_eq(e.msg, "unterminated quoted field");
		vg_csv_close(c);
	}
}

Test(csv, unterminated_header_fails_open)
{
	vg_csv *c = (vg_csv *)1;
	vg_error e = {0};
	vg_csv_opts o = {.header = true};

	cr_assert_eq(vg_csv_open_mem(&c, "\"a,b\n", 5, "h.csv", &o, &e),
		     VG_EPARSE);
	cr_assert_null(c);
	cr_assert_eq(e.line, 1);
	cr_assert_eq(e.column, 1);
}

Test(csv, quote_inside_unquoted_field_is_data)
{
	vg_csv *c = open_str("a,b\n1,ab\"c\n12\" screen,\"x\"\n", NULL);

	next_ok(c);
	vg_csv_row *row = next_ok(c);
	expect_field(row, 1, "ab\"c");
	row = next_ok(c);
	expect_field(row, 0, "12\" screen");
	expect_field(row, 1, "x");
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, text_after_closing_quote)
{
	vg_csv *c = open_str("a,b\n\"\xC3\xA9t\xC3\xA9\"x,1\n", NULL);
	vg_csv_row *row;
	vg_error e = {0};

	next_ok(c);
	cr_assert_eq(vg_csv_next(c, &row, &e), VG_EPARSE);
	cr_assert_eq(e.line, 2);
	cr_assert_eq(e.column, 6); /* characters, not bytes */
	vg_csv_close(c);
}

Test(csv, field_too_long)
{
	vg_csv_opts o = {.max_field = 4};
	vg_csv *c = open_str("ab,abcd\nabcde,x\n", &o);
	vg_csv_row *row;
	vg_error e = {0};

	next_ok(c);
	cr_assert_eq(vg_csv_next(c, &row, &e), VG_ETOOBIG);
	cr_assert_eq(e.line, 2);
	cr_assert_eq(e.column, 1);
	vg_csv_close(c);
}

Test(csv, quoted_field_too_long_is_stopped_early)
{
	/* An open quote must not make libcsv buffer the whole input. */
	size_t len = 8u << 20;
	char *s = malloc(len);
	vg_csv *c = NULL;
	vg_error e = {0};
	vg_csv_opts o = {.sep = ',', .max_field = 1000};

	cr_assert_not_null(s);
	memset(s, 'x', len);
	s[0] = '"';
	cr_assert_eq(vg_csv_open_mem(&c, s, len, "big", &o, &e), VG_ETOOBIG);
	cr_assert_eq(e.line, 1);
	cr_assert_eq(e.column, 1);
	free(s);
}

Test(csv, too_many_fields)
{
	vg_csv_opts o = {.sep = ',', .max_fields = 3};
	vg_csv *c = open_str("1,2,3\n1,2,3,4\n", &o);
	vg_csv_row *row;

	next_ok(c);
	cr_assert_eq(vg_csv_next(c, &row, NULL), VG_ETOOBIG);
	vg_csv_close(c);
}

Test(csv, bad_options)
{
	vg_csv *c = (vg_csv *)1;
	vg_csv_opts o = {.sep = '"'};

	cr_assert_eq(vg_csv_open_mem(&c, "a", 1, NULL, &o, NULL), VG_EINVAL);
	cr_assert_null(c);
	o = (vg_csv_opts){.encoding = (vg_csv_encoding)7};
	cr_assert_eq(vg_csv_open_mem(&c, "a", 1, NULL, &o, NULL), VG_EINVAL);
}

Test(csv, missing_file)
{
	vg_csv *c = (vg_csv *)1;
	vg_error e = {0};

	cr_assert_eq(vg_csv_open_file(&c, "tests/fixtures/csv/nope.csv", NULL,
				      &e),
		     VG_ENOTFOUND);
	cr_assert_null(c);
	cr_assert_str_eq(e.where, "tests/fixtures/csv/nope.csv");
}

/* ---- shape, positions, nulls --------------------------------------- */

Test(csv, positions_crlf_blank_lines_and_multiline_fields)
{
	vg_csv_opts o = {.header = true};
	vg_csv *c = open_str("a,bb,ccc\r\n"
			     "1,22,333\r\n"
			     "\r\n"
			     "  \r\n"
			     "x,\"two\r\nlines\",  z\r\n"
			     "last,, \"q\" \r\n",
			     &o);
	vg_csv_row *row = next_ok(c);

	cr_assert_eq(row->line, 2);
	cr_assert_eq(vg_csv_field_col(row, 0), 1);
	cr_assert_eq(vg_csv_field_col(row, 1), 3);
	cr_assert_eq(vg_csv_field_col(row, 2), 6);
	cr_assert_eq(vg_csv_field_col(row, 3), 0);

	row = next_ok(c); /* blank and blank-looking lines skipped */
	cr_assert_eq(row->line, 5);
	expect_field(row, 1, "two\r\nlines");
	expect_field(row, 2, "z"); /* blanks around unquoted fields trimmed */
	cr_assert_eq(vg_csv_field_line(row, 2), 6);
	cr_assert_eq(vg_csv_field_col(row, 2), 10);

	row = next_ok(c);
	cr_assert_eq(row->line, 7);
	expect_field(row, 1, "");
	cr_assert(row->fields[1].null);
	expect_field(row, 2, "q");
	cr_assert_not(row->fields[2].null);
	cr_assert_eq(vg_csv_field_col(row, 2), 8);
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, empty_vs_quoted_empty)
{
	vg_csv *c = open_str("a,,\"\",b", NULL);
	vg_csv_row *row = next_ok(c);

	cr_assert_eq(row->nfields, 4);
	cr_assert_not(row->fields[0].null);
	cr_assert(row->fields[1].null);
	cr_assert_not(row->fields[2].null);
	cr_assert_not_null(row->fields[1].ptr);
	expect_field(row, 1, "");
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, trailing_separator_at_eof)
{
	vg_csv *c = open_str("a,b,", NULL);
	vg_csv_row *row = next_ok(c);

	cr_assert_eq(row->nfields, 3);
	cr_assert(row->fields[2].null);
	cr_assert_eq(vg_csv_field_col(row, 2), 5);
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, ragged_rows_are_returned_as_is)
{
	vg_csv_opts o = {.header = true};
	vg_csv *c = open_str("a,b,c\n1\n1,2,3,4\n", &o);

	cr_assert_eq(next_ok(c)->nfields, 1);
	cr_assert_eq(next_ok(c)->nfields, 4);
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, lone_cr_line_ends)
{
	vg_csv *c = open_str("a;b\r1;2\r3;4", NULL);

	cr_assert_eq(next_ok(c)->line, 1);
	cr_assert_eq(next_ok(c)->line, 2);
	vg_csv_row *row = next_ok(c);
	cr_assert_eq(row->line, 3);
	expect_field(row, 1, "4");
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, empty_inputs)
{
	static const char *const inputs[] = {"", "\n\n", "\xEF\xBB\xBF",
					     "  \r\n"};
	for (size_t k = 0; k < sizeof(inputs) / sizeof(*inputs); k++) {
		vg_csv_opts o = {.header = true};
		vg_csv *c = open_str(inputs[k], &o);
		size_t n = 1;

		cr_assert_null(vg_csv_header(c, &n));
		cr_assert_eq(n, 0);
		expect_end(c);
		vg_csv_close(c);
	}
	/* NULL buffer of length 0 is an empty input too. */
	vg_csv *c = NULL;
	cr_assert_eq(vg_csv_open_mem(&c, NULL, 0, NULL, NULL, NULL), 0);
	cr_assert_str_eq(vg_csv_name(c), "<memory>");
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, header_only)
{
	vg_csv_opts o = {.header = true};
	vg_csv *c = open_str("CODGEO;P21_POP\n", &o);

	cr_assert_eq(vg_csv_field_index(c, "P21_POP"), 1);
	cr_assert_eq(vg_csv_field_index(c, "p21_pop"), VG_ENOTFOUND);
	expect_end(c);
	vg_csv_close(c);
}

Test(csv, close_null_is_safe)
{
	vg_csv_close(NULL);
	cr_assert_null(vg_csv_header(NULL, NULL));
}

Test(csv, many_rows_across_chunks)
{
	/* Enough rows to refill the queue many times with small chunks,
	 * with a multi-line quoted field straddling each refill. */
	size_t cap = 200000, len = 0;
	char *s = malloc(cap);
	vg_csv *c = NULL;
	vg_csv_opts o = {.header = true, .read_size = 1000};

	cr_assert_not_null(s);
	len += (size_t)snprintf(s + len, cap - len, "id;txt\n");
	for (int i = 0; i < 5000; i++)
		len += (size_t)snprintf(s + len, cap - len,
					"%05d;\"l%d\nm\"\"x\"\n", i, i);
	cr_assert_eq(vg_csv_open_mem(&c, s, len, "gen", &o, NULL), 0);
	for (int i = 0; i < 5000; i++) {
		char want[32];
		vg_csv_row *row = next_ok(c);

		snprintf(want, sizeof(want), "%05d", i);
		expect_field(row, 0, want);
		snprintf(want, sizeof(want), "l%d\nm\"x", i);
		expect_field(row, 1, want);
		cr_assert_eq(row->line, 2 + 2 * i);
	}
	expect_end(c);
	vg_csv_close(c);
	free(s);
}

/* ---- a real file ---------------------------------------------------- */

Test(csv, real_epci_composition)
{
	const char *shared = getenv("VIGIE_SHARED");
	char path[1024];
	vg_csv *c = NULL;
	vg_error e = {0};
	vg_csv_opts o = {.header = true};
	vg_csv_row *row;
	long rows = 0, last_line = 0;
	int rc, icode, iepci;

	snprintf(path, sizeof(path),
		 "%s/data/epci/EPCI_au_01-01-2024~Composition_communale.csv",
		 shared && *shared ? shared : "../shared");
	rc = vg_csv_open_file(&c, path, &o, &e);
	cr_assert_eq(rc, 0, "%s: %s", path, e.msg);
	cr_assert_eq(vg_csv_separator(c), ';');
	icode = vg_csv_field_index(c, "CODGEO");
	iepci = vg_csv_field_index(c, "EPCI");
	cr_assert_eq(icode, 0);
	cr_assert_eq(iepci, 2);
	while ((rc = vg_csv_next(c, &row, &e)) == 1) {
		if (rows == 0) {
			cr_assert_eq(row->line, 2);
			expect_field(row, 0, "01001");
			expect_field(row, 1,
				     "L'Abergement-Cl\xC3\xA9menciat");
			expect_field(row, 2, "200069193");
		}
		cr_assert_eq(row->nfields, 6, "line %ld", row->line);
		cr_assert_eq(row->fields[icode].len, 5, "line %ld", row->line);
		last_line = row->line;
		rows++;
	}
	cr_assert_eq(rc, 0, "%s", e.msg);
	cr_assert_eq(rows, 34935);
	cr_assert_eq(last_line, 34936);
	vg_csv_close(c);
}
