/* Files in and out of the store: CSV/JSON imports and CSV export.
 *
 * Formats (see README "Import formats"):
 *   indicators  JSON: an array of indicator objects, or {"indicators": [...]}
 *   territories CSV with header
 *               code;level;name;parent_codes[;members][;successors]
 *               (parents and members comma-separated canonical codes;
 *               successors, for an old code only: `com:85146`, or for a
 *               split `com:A=0.6|com:B=0.4`, shares adding up to 1)
 *   points      CSV with header indicator;territory;period;value[;status]
 * `;` or `,` separators are detected; a decimal comma is accepted; an
 * empty value, `NS` or `s` means status `suppressed` (secret statistique).
 *
 * An import is all or nothing: any bad row and nothing is written, unless
 * `skip_bad` is set, in which case bad rows are counted and skipped. */
#ifndef VIGIE_IO_H
#define VIGIE_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vigie/store.h"

#define VG_IMPORT_MAX_ERRORS 20

typedef struct vg_import_opts {
	bool skip_bad;      /* skip and count bad rows instead of failing */
	int64_t published;  /* vintage time (Unix s); 0: now */
	const char *origin; /* vintage origin; NULL: "import <file name>" */
} vg_import_opts;

typedef struct vg_import_report {
	uint64_t rows;     /* data rows read */
	uint64_t bad_rows; /* rows with an error (skipped or fatal) */
	size_t nerrors;    /* the first errors, located file:line:col */
	vg_error errors[VG_IMPORT_MAX_ERRORS];
	vg_commit_info commit; /* what was written */
} vg_import_report;

/* Each returns 0, VG_EBADROWS (bad rows, nothing written; the report says
 * which), or the error of opening, parsing or committing. */
int vg_import_indicators(vg_store *s, const char *path,
			 const vg_import_opts *o, vg_import_report *rep,
			 vg_error *err);
int vg_import_territories(vg_store *s, const char *path,
			  const vg_import_opts *o, vg_import_report *rep,
			  vg_error *err);
int vg_import_points(vg_store *s, const char *path, const vg_import_opts *o,
		     vg_import_report *rep, vg_error *err);

/* Write every point (of one indicator, or all when `ind` is NULL) as a
 * points CSV that vg_import_points reads back to the same store content.
 * `rows` (may be NULL) receives the count. */
int vg_export_points(vg_store *s, const char *ind, FILE *out, uint64_t *rows,
		     vg_error *err);

/* Parse a value as producers write them: `12.5`, `12,5`, `-3e2`,
 * `1 234,5` (spaces, NBSP or narrow NBSP between digit groups). Empty,
 * `NS`, `ns`, `s`, `S` set *suppressed. Returns 0 or VG_EINVAL. */
int vg_value_parse(const char *s, size_t len, double *out, bool *suppressed);

/* The shortest decimal text that reads back as exactly `v` ("" for NaN).
 * buf must hold 32 bytes. */
void vg_value_format(double v, char *buf, size_t n);

#endif
