#include <stdio.h>
#include <stdlib.h>

#include "vigie/common.h"

void vg__assert_fail(const char *expr, const char *file, int line, bool fatal)
{
	fprintf(stderr, "vigie: assertion failed: %s (%s:%d)%s\n", expr, file,
		line, fatal ? "" : ", recovering");
	if (fatal)
		abort();
}
