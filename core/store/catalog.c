/* What the store holds for an indicator, without reading its values: the
 * (period, level) pairs of its dense blocks. The blocks' keys are
 * `ind · period · level`, so one indicator's are one contiguous range of
 * a few dozen keys: `period=latest` and the `indicators` listing read
 * them instead of scanning points. */
#include "store/store_int.h"

int vg_read_indicator_blocks(vg_read *r, uint32_t ind, vg_block_cb cb, void *ud)
{
	uint8_t lo[VG_BKEY_LEN];
	vg__bkey(lo, ind, 0, 0);
	MDB_cursor *c;
	MDB_val k = {VG_BKEY_LEN, lo}, v;
	if (mdb_cursor_open(r->txn, r->s->blocks, &c))
		return VG_ESTORE;
	int ret = 0;
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const uint8_t *kd = k.mv_data;
		if (k.mv_size != VG_BKEY_LEN || vg__get_be32(kd) != ind)
			break;
		uint16_t level = (uint16_t)(kd[8] << 8 | kd[9]);
		if ((ret = cb(ud, vg__get_be32(kd + 4), level)))
			break;
	}
	mdb_cursor_close(c);
	return ret;
}
