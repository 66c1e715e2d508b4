/* A string -> uint32 hash map (open addressing, linear probing).
 *
 * Keys are copied into the map (it owns them). Used for the in-memory
 * dictionaries (codes -> ids) that every query and import hits. */
#ifndef VIGIE_UTIL_STRMAP_H
#define VIGIE_UTIL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct vg_strmap {
	size_t cap;  /* power of two, 0 when empty */
	size_t len;
	char **keys; /* owned, NULL = free slot */
	uint32_t *vals;
} vg_strmap;

void vg_strmap_init(vg_strmap *m);
void vg_strmap_free(vg_strmap *m);
/* Insert or replace. Returns 0 or VG_ENOMEM. */
int vg_strmap_put(vg_strmap *m, const char *key, uint32_t val);
/* Returns 1 and sets *val when found, else 0. */
int vg_strmap_get(const vg_strmap *m, const char *key, uint32_t *val);

#endif
