/* Numbers as French producers write them, and back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigie/io.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Length of a group separator at s (space, NBSP U+00A0, NNBSP U+202F). */
static size_t group_sep(const char *s, size_t left)
{
	if (left >= 1 && s[0] == ' ')
		return 1;
	if (left >= 2 && (unsigned char)s[0] == 0xC2 &&
	    (unsigned char)s[1] == 0xA0)
		return 2;
	if (left >= 3 && (unsigned char)s[0] == 0xE2 &&
	    (unsigned char)s[1] == 0x80 && (unsigned char)s[2] == 0xAF)
		return 3;
	return 0;
}

int vg_value_parse(const char *s, size_t len, double *out, bool *suppressed)
{
	*suppressed = false;
	while (len && (s[0] == ' ' || s[0] == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || (len == 2 && (s[0] == 'N' || s[0] == 'n') &&
			 (s[1] == 'S' || s[1] == 's')) ||
	    (len == 1 && (s[0] == 's' || s[0] == 'S'))) {
		*suppressed = true;
		*out = NAN;
		return 0;
	}
	/* Copy into C syntax, checking the shape as we go: sign, digits
	 * (with group separators between digits), one decimal mark,
	 * exponent. Anything else (hex, inf, nan, "12abc") is refused. */
	char buf[64];
	size_t n = 0, i = 0;
	int marks = 0, digits = 0;
	if (s[i] == '+' || s[i] == '-')
		buf[n++] = s[i++];
	for (; i < len && n < sizeof(buf) - 1; i++) {
		char c = s[i];
		size_t g;
		if (is_digit(c)) {
			buf[n++] = c;
			digits++;
		} else if ((c == '.' || c == ',') && marks == 0) {
			buf[n++] = '.';
			marks++;
		} else if ((g = group_sep(s + i, len - i)) && digits &&
			   !marks && i + g < len && is_digit(s[i + g])) {
			i += g - 1;
		} else if ((c == 'e' || c == 'E') && digits) {
			buf[n++] = 'e';
			i++;
			if (i < len && (s[i] == '+' || s[i] == '-'))
				buf[n++] = s[i++];
			size_t e0 = n;
			while (i < len && is_digit(s[i]) && n < sizeof(buf) - 1)
				buf[n++] = s[i++];
			if (n == e0 || i != len)
				return VG_EINVAL;
			break;
		} else {
			return VG_EINVAL;
		}
	}
	if (!digits || i < len)
		return VG_EINVAL;
	buf[n] = '\0';
	char *end;
	double v = strtod(buf, &end);
	if (*end || !isfinite(v))
		return VG_EINVAL;
	*out = v;
	return 0;
}

void vg_value_format(double v, char *buf, size_t n)
{
	if (isnan(v)) {
		if (n)
			buf[0] = '\0';
		return;
	}
	/* 15 digits reads back exactly for most data; 17 always does. */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}
