/* Folding names into search keys: "Saint-Étienne", "st etienne" and
 * "SAINT ETIENNE" all give "saint etienne".
 *
 * The key is lower-case ASCII letters and digits in space-separated
 * tokens: accents of the Latin-1 Supplement and Latin Extended-A letters
 * are stripped (é è ê ë -> e, ç -> c, ÿ -> y...), ligatures spelt out
 * (œ -> oe, æ -> ae, ß -> ss), combining accents (decomposed input)
 * dropped; hyphens, apostrophes (' and ’) and other punctuation separate
 * tokens; runs of separators become one space, none at either end.
 * Other non-ASCII letters (Greek, Cyrillic...) are copied unchanged, so a
 * name in another script still matches itself. Invalid UTF-8 bytes are
 * separators: folding never fails. Names keep their accents in storage;
 * only the key is folded. */
#ifndef VIGIE_FOLD_H
#define VIGIE_FOLD_H

#include <stddef.h>

/* Tokens "st" and "ste" become "saint" and "sainte" (the usual
 * abbreviations in French place names). */
#define VG_FOLD_SAINT 1u
/* Apostrophes are deleted instead of separating: "L'Haÿ" -> "lhay", so a
 * user who types the elided article glued to the word finds the name. */
#define VG_FOLD_JOIN_APOS 2u

/* Fold NUL-terminated UTF-8 `in` into out[n] (n >= 1; always
 * NUL-terminated). Truncates at a character boundary when out is too
 * small. Returns the key's length (bytes before the NUL). */
size_t vg_fold(const char *in, char *out, size_t n, unsigned flags);

#endif
