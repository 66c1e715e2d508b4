/* Tabular output of the command-line client: a readable aligned table on
 * a terminal, CSV (`;`) when piped, or JSON. Rows are buffered (query
 * results are small: a slice is at most one row per commune) so the table
 * can size its columns. */
#ifndef VIGIE_CMD_OUTPUT_H
#define VIGIE_CMD_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum { OUT_TABLE, OUT_CSV, OUT_JSON } out_format;

/* Column kinds: JSON writes numbers as numbers ("" as null). */
typedef enum { COL_STR, COL_NUM } col_kind;

typedef struct out_table out_table;

out_table *out_new(out_format f, size_t ncols, const char *const *names,
		   const col_kind *kinds);
/* Append a row of ncols strings (copied). Returns 0 or -1 (no memory). */
int out_row(out_table *t, const char *const *cells);
/* Print and free. Returns 0 or -1 on a write error. */
int out_flush(out_table *t, FILE *f);

#endif
