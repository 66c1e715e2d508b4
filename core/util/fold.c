/* UTF-8 -> search key. See include/vigie/fold.h. */
#include <string.h>

#include "vigie/fold.h"

/* ASCII spelling of U+00C0..U+017F, one entry per code point; "" for the
 * two signs of that block (× ÷), which separate like punctuation. */
static const char *const latin[0x180 - 0xC0] = {
	/* C0 */ "a", "a", "a", "a", "a", "a", "ae", "c",
	/* C8 */ "e", "e", "e", "e", "i", "i", "i", "i",
	/* D0 */ "d", "n", "o", "o", "o", "o", "o", "",
	/* D8 */ "o", "u", "u", "u", "u", "y", "th", "ss",
	/* E0 */ "a", "a", "a", "a", "a", "a", "ae", "c",
	/* E8 */ "e", "e", "e", "e", "i", "i", "i", "i",
	/* F0 */ "d", "n", "o", "o", "o", "o", "o", "",
	/* F8 */ "o", "u", "u", "u", "u", "y", "th", "y",
	/* 100 */ "a", "a", "a", "a", "a", "a", "c", "c",
	/* 108 */ "c", "c", "c", "c", "c", "c", "d", "d",
	/* 110 */ "d", "d", "e", "e", "e", "e", "e", "e",
	/* 118 */ "e", "e", "e", "e", "g", "g", "g", "g",
	/* 120 */ "g", "g", "g", "g", "h", "h", "h", "h",
	/* 128 */ "i", "i", "i", "i", "i", "i", "i", "i",
	/* 130 */ "i", "i", "ij", "ij", "j", "j", "k", "k",
	/* 138 */ "k", "l", "l", "l", "l", "l", "l", "l",
	/* 140 */ "l", "l", "l", "n", "n", "n", "n", "n",
	/* 148 */ "n", "n", "n", "n", "o", "o", "o", "o",
	/* 150 */ "o", "o", "oe", "oe", "r", "r", "r", "r",
	/* 158 */ "r", "r", "s", "s", "s", "s", "s", "s",
	/* 160 */ "s", "s", "t", "t", "t", "t", "t", "t",
	/* 168 */ "u", "u", "u", "u", "u", "u", "u", "u",
	/* 170 */ "u", "u", "u", "u", "w", "w", "y", "y",
	/* 178 */ "y", "z", "z", "z", "z", "z", "z", "s",
};

/* Decode one UTF-8 sequence at s (s[0] != 0). Returns its length and the
 * code point in *cp, or 1 with *cp = -1 for an invalid byte. */
static size_t decode(const unsigned char *s, long *cp)
{
	unsigned c = s[0];
	size_t len;
	long v;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		v = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		v = c & 0x07;
	} else {
		*cp = -1;
		return 1;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80) { /* also stops at the NUL */
			*cp = -1;
			return 1;
		}
		v = (v << 6) | (s[i] & 0x3F);
	}
	/* Overlong forms and surrogates are not characters. */
	if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 ||
						     v > 0x10FFFF)) ||
	    (v >= 0xD800 && v <= 0xDFFF)) {
		*cp = -1;
		return 1;
	}
	*cp = v;
	return len;
}

typedef struct out {
	char *p;
	size_t n, len;
	size_t tok; /* where the current token starts */
	unsigned flags;
	int full;
} out;

/* End the current token: apply "st" -> "saint", then one space. */
static void end_token(out *o)
{
	if (o->len == o->tok)
		return; /* no token open */
	size_t tl = o->len - o->tok;
	const char *rep = NULL;
	if (o->flags & VG_FOLD_SAINT) {
		if (tl == 2 && !memcmp(o->p + o->tok, "st", 2))
			rep = "saint";
		else if (tl == 3 && !memcmp(o->p + o->tok, "ste", 3))
			rep = "sainte";
	}
	if (rep) {
		size_t rl = strlen(rep);
		if (o->tok + rl < o->n) {
			memcpy(o->p + o->tok, rep, rl);
			o->len = o->tok + rl;
		} else {
			o->full = 1;
		}
	}
	if (!o->full && o->len + 1 < o->n)
		o->p[o->len++] = ' ';
	else
		o->full = 1;
	o->tok = o->len;
}

static void put(out *o, const char *s, size_t k)
{
	if (o->full || o->len + k >= o->n) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, k);
	o->len += k;
}

size_t vg_fold(const char *in, char *outbuf, size_t n, unsigned flags)
{
	if (n == 0)
		return 0;
	out o = { outbuf, n, 0, 0, flags, 0 };
	const unsigned char *s = (const unsigned char *)in;
	while (*s && !o.full) {
		long cp;
		size_t k = decode(s, &cp);
		if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) {
			char ch = (char)cp;
			put(&o, &ch, 1);
		} else if (cp >= 'A' && cp <= 'Z') {
			char ch = (char)(cp - 'A' + 'a');
			put(&o, &ch, 1);
		} else if ((cp == '\'' || cp == 0x2019 || cp == 0x2BC) &&
			   (flags & VG_FOLD_JOIN_APOS)) {
			/* deleted: the two sides join */
		} else if (cp >= 0xC0 && cp < 0x180) {
			const char *a = latin[cp - 0xC0];
			if (*a)
				put(&o, a, strlen(a));
			else
				end_token(&o);
		} else if (cp >= 0x300 && cp <= 0x36F) {
			/* combining accent of decomposed text: dropped */
		} else if (cp < 0x80 || cp < 0xC0 || (cp >= 0x2000 &&
						      cp <= 0x206F)) {
			/* ASCII punctuation and spaces, controls, Latin-1
			 * signs (« » ° NBSP), general punctuation (’ – —)
			 * and invalid bytes separate tokens. */
			end_token(&o);
		} else {
			put(&o, (const char *)s, k);
		}
		s += k;
	}
	if (!o.full)
		end_token(&o);
	/* Drop the trailing separator (or a token cut short by truncation
	 * keeps what fitted: the key stays a valid prefix). */
	while (o.len && o.p[o.len - 1] == ' ')
		o.len--;
	o.p[o.len] = '\0';
	return o.len;
}
