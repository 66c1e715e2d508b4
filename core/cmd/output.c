#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/output.h"

struct out_table {
	out_format fmt;
	size_t ncols, nrows, cap;
	char **names;
	col_kind *kinds;
	char **cells; /* nrows * ncols, owned */
};

out_table *out_new(out_format f, size_t ncols, const char *const *names,
		   const col_kind *kinds)
{
	out_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->fmt = f;
	t->ncols = ncols;
	t->names = calloc(ncols, sizeof(char *));
	t->kinds = calloc(ncols, sizeof(col_kind));
	if (!t->names || !t->kinds) {
		free(t->names);
		free(t->kinds);
		free(t);
		return NULL;
	}
	for (size_t i = 0; i < ncols; i++) {
		t->names[i] = strdup(names[i]);
		t->kinds[i] = kinds ? kinds[i] : COL_STR;
	}
	return t;
}

int out_row(out_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		char **nc = realloc(t->cells, ncap * t->ncols * sizeof(char *));
		if (!nc)
			return -1;
		t->cells = nc;
		t->cap = ncap;
	}
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] =
			strdup(cells[i] ? cells[i] : "");
	t->nrows++;
	return 0;
}

/* Display width: UTF-8 code points (accented names stay aligned). */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

static void print_table(out_table *t, FILE *f)
{
	size_t *w = calloc(t->ncols, sizeof(size_t));
	if (!w)
		return;
	for (size_t c = 0; c < t->ncols; c++)
		w[c] = width(t->names[c]);
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t x = width(t->cells[r * t->ncols + c]);
			if (x > w[c])
				w[c] = x;
		}
	for (int pass = -1; pass < (int)t->nrows; pass++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = pass < 0 ? t->names[c]
						 : t->cells[(size_t)pass *
								    t->ncols +
							    c];
			size_t pad = w[c] - width(s);
			bool right = t->kinds[c] == COL_NUM && pass >= 0;
			if (right)
				fprintf(f, "%*s", (int)pad, "");
			fputs(s, f);
			if (!right && c + 1 < t->ncols)
				fprintf(f, "%*s", (int)pad, "");
			if (c + 1 < t->ncols)
				fputs("  ", f);
		}
		fputc('\n', f);
		if (pass < 0) {
			for (size_t c = 0; c < t->ncols; c++) {
				for (size_t i = 0; i < w[c]; i++)
					fputc('-', f);
				if (c + 1 < t->ncols)
					fputs("  ", f);
			}
			fputc('\n', f);
		}
	}
	if (t->nrows == 0)
		fputs("(no rows)\n", f);
	free(w);
}

static void csv_cell(const char *s, FILE *f)
{
	if (!strpbrk(s, ";\"\n\r")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void print_csv(out_table *t, FILE *f)
{
	for (int r = -1; r < (int)t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			if (c)
				fputc(';', f);
			csv_cell(r < 0 ? t->names[c]
				       : t->cells[(size_t)r * t->ncols + c],
				 f);
		}
		fputc('\n', f);
	}
}

static void print_json(out_table *t, FILE *f)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t r = 0; r < t->nrows; r++) {
		cJSON *o = cJSON_CreateObject();
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (t->kinds[c] == COL_NUM)
				cJSON_AddItemToObject(
					o, t->names[c],
					*s ? cJSON_CreateRaw(s)
					   : cJSON_CreateNull());
			else
				cJSON_AddStringToObject(o, t->names[c], s);
		}
		cJSON_AddItemToArray(arr, o);
	}
	char *s = cJSON_Print(arr);
	if (s) {
		fputs(s, f);
		fputc('\n', f);
	}
	free(s);
	cJSON_Delete(arr);
}

int out_flush(out_table *t, FILE *f)
{
	if (t->fmt == OUT_TABLE)
		print_table(t, f);
	else if (t->fmt == OUT_CSV)
		print_csv(t, f);
	else
		print_json(t, f);
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	for (size_t i = 0; i < t->ncols; i++)
		free(t->names[i]);
	free(t->cells);
	free(t->names);
	free(t->kinds);
	free(t);
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}
