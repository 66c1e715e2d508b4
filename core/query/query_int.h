/* Internals of core/query shared by its files. */
#ifndef VIGIE_QUERY_INT_H
#define VIGIE_QUERY_INT_H

#include "vigie/query.h"

/* vg_agg_value_list without its checks and size limit, for the members of
 * a stored perimeter version: they were checked when it was written (no
 * overlap, no perimeter), and a perimeter may be larger than an ad hoc
 * list. An empty version gives no value. `ids` are borrowed. */
int vg__agg_value_members(vg_read *r, uint32_t ind, vg_period period,
			  int64_t as_of, const uint32_t *ids, size_t n,
			  vg_agg_value *out, vg_error *err);

#endif
