/* vigied: the daemon. Its socket API, scheduler and plugin runtime are not
 * in this build yet (issues 4 and 6); until then it says so plainly
 * rather than pretending to serve. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr,
		"vigied: the socket API is not part of this build yet; query "
		"the store offline with 'vigie --data DIR' (see README)\n");
	return 2;
}
