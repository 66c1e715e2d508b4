/* SHA-256 (FIPS 180-4), for the source checksums recorded in vintages. */
#ifndef VIGIE_UTIL_SHA256_H
#define VIGIE_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct vg_sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t nbuf;
} vg_sha256;

void vg_sha256_init(vg_sha256 *c);
void vg_sha256_update(vg_sha256 *c, const void *data, size_t n);
/* Writes "sha256:" and 64 hex digits plus NUL (72 bytes). */
void vg_sha256_hex(vg_sha256 *c, char out[72]);
/* Checksum of a whole file; returns 0 or VG_EIO. */
int vg_sha256_file(const char *path, char out[72]);

#endif
