/* Territory name search over the folded names kept in the dictionaries,
 * and the passage table. See vg_read_territory_search in vigie/store.h. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "vigie/fold.h"

#define MAX_TOKENS 16

size_t vg_read_territory_successors(vg_read *r, uint32_t terr,
				    const vg_passage **out)
{
	const vg__dict *d = &r->s->dict;
	*out = NULL;
	if (terr == 0 || terr >= d->nterrs || !d->terrs[terr].nsucc)
		return 0;
	*out = d->terrs[terr].succ;
	return d->terrs[terr].nsucc;
}

size_t vg_read_territory_predecessors(vg_read *r, uint32_t terr,
				      const vg_passage **out)
{
	const vg__dict *d = &r->s->dict;
	*out = NULL;
	if (terr == 0 || terr >= d->nterrs || !d->terrs[terr].npred)
		return 0;
	*out = d->terrs[terr].pred;
	return d->terrs[terr].npred;
}

typedef struct token {
	const char *s;
	size_t n;
	const char *alt; /* "saint"/"sainte" for "st"/"ste", else NULL */
	size_t altn;
} token;

/* Is q (n bytes) the prefix of a token of the space-separated key? */
static bool prefix_of_token(const char *key, const char *q, size_t n)
{
	for (const char *p = key; *p;) {
		if (!strncmp(p, q, n))
			return true;
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
	}
	return false;
}

static bool token_in(const char *key, const char *alt, const token *t)
{
	if (prefix_of_token(key, t->s, t->n) ||
	    (alt && prefix_of_token(alt, t->s, t->n)))
		return true;
	return t->alt && (prefix_of_token(key, t->alt, t->altn) ||
			  (alt && prefix_of_token(alt, t->alt, t->altn)));
}

typedef struct hit {
	uint32_t id;
	uint8_t cls; /* 0 exact, 1 starts with the query's words, 2 starts
			with it ("parisot" for "paris"), 3 other */
	uint16_t level, len;
	const char *code;
} hit;

static int cmp_hit(const void *x, const void *y)
{
	const hit *a = x, *b = y;
	if (a->cls != b->cls)
		return a->cls < b->cls ? -1 : 1;
	if (a->level != b->level)
		return a->level < b->level ? -1 : 1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return strcmp(a->code, b->code);
}

static uint8_t starts(const char *key, const char *q, size_t qn)
{
	if (strncmp(key, q, qn))
		return 3;
	return key[qn] == '\0' ? 0 : key[qn] == ' ' ? 1 : 2;
}

/* Class of a matching name against the folded query (with "st" spelt
 * out), on its key or its apostrophes-joined variant: equal, starting
 * with the query's words ("paris 1er arrondissement"), starting with it
 * ("parisot"), or other. */
static uint8_t classify(const char *key, const char *alt, const char *q,
			size_t qn)
{
	uint8_t c = starts(key, q, qn);
	if (alt) {
		uint8_t ca = starts(alt, q, qn);
		if (ca < c)
			c = ca;
	}
	return c;
}

int vg_read_territory_search(vg_read *r, const char *query, const char *level,
			     uint32_t within, size_t offset, size_t limit,
			     vg_id_cb cb, void *ud, size_t *total)
{
	const vg__dict *d = &r->s->dict;
	if (total)
		*total = 0;
	uint32_t lid = UINT32_MAX;
	if (level && !vg_strmap_get(&d->level_map, level, &lid))
		return 0; /* no territory has that level */
	char q[512], qs[512];
	vg_fold(query ? query : "", q, sizeof(q), 0);
	/* The query with "st" spelt out, for the exact/starts-with ranks. */
	size_t qsn = vg_fold(query ? query : "", qs, sizeof(qs),
			     VG_FOLD_SAINT);
	token tok[MAX_TOKENS];
	size_t nt = 0;
	for (char *p = q; *p;) {
		char *e = strchr(p, ' ');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (nt == MAX_TOKENS)
			return VG_EINVAL;
		tok[nt] = (token){ p, n, NULL, 0 };
		if (n == 2 && !strncmp(p, "st", 2))
			tok[nt].alt = "saint", tok[nt].altn = 5;
		else if (n == 3 && !strncmp(p, "ste", 3))
			tok[nt].alt = "sainte", tok[nt].altn = 6;
		nt++;
		p += n;
		if (*p)
			p++;
	}
	size_t cap = 0, nh = 0;
	hit *hits = NULL;
	if (nt == 0) {
		/* Every territory, in level then rank order: no sort. */
		size_t seen = 0, called = 0;
		for (uint16_t l = 0; l < d->nlevels; l++) {
			if (lid != UINT32_MAX && l != lid)
				continue;
			for (uint32_t k = 0; k < d->level_len[l]; k++) {
				uint32_t id = d->level_terr[l][k];
				if (!id || (within &&
					    !vg__dict_within(d, id, within)))
					continue;
				if (seen++ < offset ||
				    (limit && called >= limit))
					continue;
				called++;
				int rc = cb(ud, id);
				if (rc)
					return rc;
			}
		}
		if (total)
			*total = seen;
		return 0;
	}
	for (uint32_t id = 1; id < d->nterrs; id++) {
		const vg__terr_entry *e = &d->terrs[id];
		if (!e->code[0] || (lid != UINT32_MAX && e->level != lid))
			continue;
		const char *key = d->keys + e->key_off;
		const char *alt = e->alt_off == UINT32_MAX
					  ? NULL
					  : d->keys + e->alt_off;
		size_t i = 0;
		while (i < nt && token_in(key, alt, &tok[i]))
			i++;
		if (i < nt || (within && !vg__dict_within(d, id, within)))
			continue;
		if (nh == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			hit *nhits = realloc(hits, ncap * sizeof(*hits));
			if (!nhits) {
				free(hits);
				return VG_ENOMEM;
			}
			hits = nhits;
			cap = ncap;
		}
		hits[nh++] = (hit){ id, classify(key, alt, qs, qsn), e->level,
				    e->key_len, e->code };
	}
	if (nh > 1)
		qsort(hits, nh, sizeof(*hits), cmp_hit);
	if (total)
		*total = nh;
	int rc = 0;
	for (size_t i = offset; i < nh && !rc && (!limit || i - offset < limit);
	     i++)
		rc = cb(ud, hits[i].id);
	free(hits);
	return rc;
}
