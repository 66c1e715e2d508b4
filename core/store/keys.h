/* Key and value encodings of the store (internal; tests include it).
 *
 * Keys are big-endian so LMDB's byte order is numeric order:
 *   points:  ind u32 | terr u32 | period u32             (12 bytes)
 *            -> a series is one contiguous range.
 *   history: ind u32 | terr u32 | period u32 | vint u32  (16 bytes)
 *            -> the revisions of one point, oldest first.
 *   blocks:  ind u32 | period u32 | level u16            (10 bytes)
 *            -> a dense cross-section (see block layout below).
 * Values are host-endian: an LMDB file is not portable across endianness
 * anyway. */
#ifndef VIGIE_STORE_KEYS_H
#define VIGIE_STORE_KEYS_H

#include <stdint.h>
#include <string.h>

#define VG_PKEY_LEN 12
#define VG_HKEY_LEN 16
#define VG_BKEY_LEN 10
#define VG_PVAL_LEN 13 /* value f64 | status u8 | vintage u32 */
#define VG_HVAL_LEN 9  /* value f64 | status u8 */

static inline void vg__put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t vg__get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void vg__pkey(uint8_t k[VG_PKEY_LEN], uint32_t ind,
			    uint32_t terr, uint32_t period)
{
	vg__put_be32(k, ind);
	vg__put_be32(k + 4, terr);
	vg__put_be32(k + 8, period);
}

static inline void vg__hkey(uint8_t k[VG_HKEY_LEN], uint32_t ind,
			    uint32_t terr, uint32_t period, uint32_t vint)
{
	vg__pkey(k, ind, terr, period);
	vg__put_be32(k + 12, vint);
}

static inline void vg__bkey(uint8_t k[VG_BKEY_LEN], uint32_t ind,
			    uint32_t period, uint16_t level)
{
	vg__put_be32(k, ind);
	vg__put_be32(k + 4, period);
	k[8] = (uint8_t)(level >> 8);
	k[9] = (uint8_t)level;
}

static inline void vg__pval(uint8_t v[VG_PVAL_LEN], double value,
			    uint8_t status, uint32_t vint)
{
	memcpy(v, &value, 8);
	v[8] = status;
	memcpy(v + 9, &vint, 4);
}

static inline void vg__pval_get(const uint8_t *v, double *value,
				uint8_t *status, uint32_t *vint)
{
	memcpy(value, v, 8);
	*status = v[8];
	memcpy(vint, v + 9, 4);
}

/* Block layout: a cross-section of one indicator, one period, one level,
 * indexed by the territory's rank within its level (fixed at creation):
 *   u32 magic | u32 n | f64 value[n] | u32 vintage[n] | u8 status[n]
 * vintage 0 marks an empty slot. The header is 8 bytes so value[] is
 * 8-aligned whenever LMDB hands us an 8-aligned value (overflow pages). */
#define VG_BLOCK_MAGIC 0x56474231u /* "VGB1" */
#define VG_BLOCK_HDR 8

static inline size_t vg__block_size(uint32_t n)
{
	return VG_BLOCK_HDR + (size_t)n * 13;
}

#endif
