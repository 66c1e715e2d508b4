/* Internals of core/api shared by its files. */
#ifndef VIGIE_API_INT_H
#define VIGIE_API_INT_H

#include "vigie/api.h"

/* Set the request's error code and message; returns -1. */
int vg__api_fail(vg_api_req *q, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
