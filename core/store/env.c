/* The LMDB environment: open, schema check, transactions, map growth. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store/store_int.h"
#include "vigie/common.h"

#define DEFAULT_MAP (256ull << 20)
#define DEFAULT_READERS 254

/* Translate an LMDB/errno code into ours, with a message that says what
 * we were doing and what the user can do about it. */
int vg__mdb_err(vg_store *s, int rc, const char *what, vg_error *err)
{
	const char *dir = s ? s->dir : "";
	switch (rc) {
	case ENOSPC:
	case EFBIG:
	case EDQUOT:
		return vg_error_at(err, VG_EFULL, dir, 0, 0,
				   "%s: no space left on the device (or file "
				   "size limit reached); nothing was written",
				   what);
	case EACCES:
	case EROFS:
	case EPERM:
		return vg_error_at(err, VG_EREADONLY, dir, 0, 0,
				   "%s: permission denied (read-only "
				   "directory or file?)", what);
	case ENOMEM:
		return vg_error_at(err, VG_ENOMEM, dir, 0, 0,
				   "%s: out of memory", what);
	case EIO: {
		/* LMDB turns a short write into EIO: that is what a full
		 * disk or a file size limit look like from here. */
		struct statvfs vfs;
		struct rlimit rl;
		bool full = (statvfs(dir, &vfs) == 0 &&
			     (uint64_t)vfs.f_bavail * vfs.f_frsize < (16u << 20)) ||
			    (getrlimit(RLIMIT_FSIZE, &rl) == 0 &&
			     rl.rlim_cur != RLIM_INFINITY);
		if (full)
			return vg_error_at(err, VG_EFULL, dir, 0, 0,
					   "%s: no space left on the device "
					   "(or file size limit reached); "
					   "nothing was written", what);
		return vg_error_at(err, VG_EIO, dir, 0, 0,
				   "%s: I/O error (disk full or failing?); "
				   "nothing was written", what);
	}
	case MDB_READERS_FULL:
		return vg_error_at(err, VG_EBUSY, dir, 0, 0,
				   "%s: too many concurrent readers", what);
	case MDB_MAP_FULL:
		return vg_error_at(err, VG_EFULL, dir, 0, 0,
				   "%s: the store's map is full", what);
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		return vg_error_at(err, VG_ESTORE, dir, 0, 0,
				   "%s: the store is corrupted (%s); restore a "
				   "backup", what, mdb_strerror(rc));
	case MDB_VERSION_MISMATCH:
		return vg_error_at(err, VG_ESCHEMA, dir, 0, 0,
				   "%s: written by another LMDB version (%s)",
				   what, mdb_strerror(rc));
	default:
		return vg_error_at(err, VG_ESTORE, dir, 0, 0, "%s: %s", what,
				   mdb_strerror(rc));
	}
}

/* Begin a transaction, repairing what can be repaired on the way: a map
 * grown by another process (MDB_MAP_RESIZED) and reader slots left by dead
 * processes (MDB_READERS_FULL). The caller holds s->lock for reading. */
int vg__txn_begin(vg_store *s, unsigned flags, MDB_txn **txn, vg_error *err)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int rc = mdb_txn_begin(s->env, NULL, flags, txn);
		if (rc == 0)
			return 0;
		if (rc == MDB_MAP_RESIZED) {
			/* Adopting the new size needs no transaction open
			 * in this process: trade our read lock for the
			 * write lock for the moment it takes. */
			pthread_rwlock_unlock(&s->lock);
			pthread_rwlock_wrlock(&s->lock);
			mdb_env_set_mapsize(s->env, 0);
			MDB_envinfo info;
			if (mdb_env_info(s->env, &info) == 0)
				s->map_size = info.me_mapsize;
			pthread_rwlock_unlock(&s->lock);
			pthread_rwlock_rdlock(&s->lock);
			continue;
		}
		if (rc == MDB_READERS_FULL) {
			int dead = 0;
			mdb_reader_check(s->env, &dead);
			if (dead > 0)
				continue;
		}
		return vg__mdb_err(s, rc, "cannot start a transaction", err);
	}
	return vg_error_at(err, VG_ESTORE, s->dir, 0, 0,
			   "cannot start a transaction: map kept changing");
}

/* Double the map. Called with no transaction of ours open. */
int vg__grow_map(vg_store *s, vg_error *err)
{
	pthread_rwlock_wrlock(&s->lock);
	size_t want = s->map_size * 2;
	int rc = mdb_env_set_mapsize(s->env, want);
	if (rc == 0) {
		s->map_size = want;
		s->grows++;
	}
	pthread_rwlock_unlock(&s->lock);
	if (rc)
		return vg__mdb_err(s, rc, "cannot grow the map", err);
	return 0;
}

int vg__meta_get_u64(MDB_txn *txn, vg_store *s, const char *key,
		     uint64_t *out)
{
	MDB_val k = { strlen(key), (void *)key }, v;
	int rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rc)
		return rc;
	if (v.mv_size != 8)
		return MDB_CORRUPTED;
	memcpy(out, v.mv_data, 8);
	return 0;
}

int vg__meta_put_u64(MDB_txn *txn, vg_store *s, const char *key, uint64_t val)
{
	MDB_val k = { strlen(key), (void *)key }, v = { 8, &val };
	return mdb_put(txn, s->meta, &k, &v, 0);
}

static int open_dbis(vg_store *s, MDB_txn *txn, unsigned flags)
{
	struct {
		const char *name;
		MDB_dbi *dbi;
	} dbis[] = {
		{ "meta", &s->meta },	    { "ind_code", &s->ind_code },
		{ "ind", &s->ind },	    { "terr_code", &s->terr_code },
		{ "terr", &s->terr },	    { "level", &s->level },
		{ "points", &s->points },   { "blocks", &s->blocks },
		{ "history", &s->hist },    { "vintage", &s->vint },
	};
	for (size_t i = 0; i < VG_ARRAY_LEN(dbis); i++) {
		int rc = mdb_dbi_open(txn, dbis[i].name, flags, dbis[i].dbi);
		if (rc)
			return rc;
	}
	return 0;
}

/* Schema: a new store gets ours; an existing one must have exactly ours.
 * Refusing an older one too is deliberate until we ship migrations: reading
 * a layout we do not understand could return wrong numbers. */
static int check_schema(vg_store *s, vg_error *err)
{
	MDB_txn *txn;
	int rc = vg__txn_begin(s, s->read_only ? MDB_RDONLY : 0, &txn, err);
	if (rc)
		return rc;
	rc = mdb_dbi_open(txn, "meta", 0, &s->meta);
	if (rc == MDB_NOTFOUND) {
		if (s->read_only) {
			mdb_txn_abort(txn);
			return vg_error_at(err, VG_ENOTFOUND, s->dir, 0, 0,
					   "no Vigie store in this directory");
		}
		rc = open_dbis(s, txn, MDB_CREATE);
		if (!rc)
			rc = vg__meta_put_u64(txn, s, "schema",
					      VG_SCHEMA_VERSION);
		if (!rc)
			rc = vg__meta_put_u64(txn, s, "gen", 1);
		if (!rc)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		return rc ? vg__mdb_err(s, rc, "cannot create the store", err)
			  : 0;
	}
	if (rc) {
		mdb_txn_abort(txn);
		return vg__mdb_err(s, rc, "cannot read the store", err);
	}
	uint64_t ver = 0;
	rc = vg__meta_get_u64(txn, s, "schema", &ver);
	if (rc || ver != VG_SCHEMA_VERSION) {
		mdb_txn_abort(txn);
		if (rc)
			return vg__mdb_err(s, rc, "cannot read the schema", err);
		return vg_error_at(err, VG_ESCHEMA, s->dir, 0, 0,
				   "the store has schema version %" PRIu64
				   " but this Vigie reads version %d only; "
				   "%s", ver, VG_SCHEMA_VERSION,
				   ver > VG_SCHEMA_VERSION
					   ? "upgrade Vigie"
					   : "export with the older Vigie and "
					     "import again");
	}
	rc = open_dbis(s, txn, 0);
	if (rc) {
		mdb_txn_abort(txn);
		return vg__mdb_err(s, rc, "cannot open the store's tables",
				   err);
	}
	/* Handles opened in a transaction are only valid for others once it
	 * commits (even a read-only one). */
	rc = mdb_txn_commit(txn);
	return rc ? vg__mdb_err(s, rc, "cannot open the store", err) : 0;
}

int vg_store_open(vg_store **out, const char *dir, const vg_store_opts *opts,
		  vg_error *err)
{
	vg_store_opts o = { 0 };
	if (opts)
		o = *opts;
	*out = NULL;
	struct stat st;
	if (stat(dir, &st) != 0) {
		if (errno != ENOENT || o.read_only)
			return vg_error_at(err, errno == ENOENT ? VG_ENOTFOUND
								 : VG_EIO,
					   dir, 0, 0,
					   "cannot open data directory: %s",
					   strerror(errno));
		if (mkdir(dir, 0750) != 0)
			return vg_error_at(err,
					   errno == EACCES || errno == EROFS
						   ? VG_EREADONLY
						   : VG_EIO,
					   dir, 0, 0,
					   "cannot create data directory: %s",
					   strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		return vg_error_at(err, VG_EINVAL, dir, 0, 0,
				   "not a directory");
	}
	if (!o.read_only && access(dir, W_OK) != 0)
		return vg_error_at(err, VG_EREADONLY, dir, 0, 0,
				   "data directory is not writable (%s); open "
				   "it read-only or fix its permissions",
				   strerror(errno));

	if (o.read_only) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/data.mdb", dir);
		if (access(path, F_OK) != 0)
			return vg_error_at(err, VG_ENOTFOUND, dir, 0, 0,
					   "no Vigie store in this directory");
	}
	vg_store *s = calloc(1, sizeof(*s));
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	s->read_only = o.read_only;
	s->map_size = o.map_size ? o.map_size : DEFAULT_MAP;
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->write_mu, NULL);
	pthread_mutex_init(&s->vt_mu, NULL);
	vg_strmap_init(&s->dict.ind_map);
	vg_strmap_init(&s->dict.terr_map);
	vg_strmap_init(&s->dict.level_map);

	int rc = mdb_env_create(&s->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(s->env, 16);
	if (!rc)
		rc = mdb_env_set_maxreaders(
			s->env, o.max_readers ? o.max_readers : DEFAULT_READERS);
	/* The file may already be larger than asked (grown earlier): LMDB
	 * keeps the larger of the two. */
	if (!rc)
		rc = mdb_env_set_mapsize(s->env, s->map_size);
	if (rc) {
		vg__mdb_err(s, rc, "cannot set up the store", err);
		vg_store_close(s);
		return err ? err->code : VG_ESTORE;
	}
	/* MDB_NOTLS: read transactions are not tied to threads (the daemon
	 * hands requests between threads). */
	unsigned flags = MDB_NOTLS | (o.read_only ? MDB_RDONLY : 0);
	rc = mdb_env_open(s->env, dir, flags, 0640);
	if (rc) {
		int code = vg__mdb_err(s, rc, "cannot open the store", err);
		vg_store_close(s);
		return code;
	}
	MDB_envinfo info;
	if (mdb_env_info(s->env, &info) == 0)
		s->map_size = info.me_mapsize;
	int dead = 0;
	mdb_reader_check(s->env, &dead); /* slots of crashed processes */

	pthread_rwlock_rdlock(&s->lock);
	int crc = check_schema(s, err);
	pthread_rwlock_unlock(&s->lock);
	if (!crc)
		crc = vg__dict_refresh(s, err);
	if (crc) {
		vg_store_close(s);
		return crc;
	}
	*out = s;
	return 0;
}

void vg_store_close(vg_store *s)
{
	if (!s)
		return;
	if (s->env)
		mdb_env_close(s->env);
	vg__dict_free(&s->dict);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->write_mu);
	pthread_mutex_destroy(&s->vt_mu);
	free(s->vint_time);
	free(s->dir);
	free(s);
}

static uint64_t dbi_entries(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_stat st;
	return mdb_stat(txn, dbi, &st) == 0 ? st.ms_entries : 0;
}

int vg_store_stat_get(vg_store *s, vg_store_stat *out, vg_error *err)
{
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&s->lock);
	MDB_txn *txn;
	int rc = vg__txn_begin(s, MDB_RDONLY, &txn, err);
	if (rc) {
		pthread_rwlock_unlock(&s->lock);
		return rc;
	}
	MDB_envinfo info;
	MDB_stat est;
	mdb_env_info(s->env, &info);
	mdb_env_stat(s->env, &est);
	out->map_size = info.me_mapsize;
	out->used = (uint64_t)(info.me_last_pgno + 1) * est.ms_psize;
	out->points = dbi_entries(txn, s->points);
	out->history = dbi_entries(txn, s->hist);
	out->blocks = dbi_entries(txn, s->blocks);
	out->indicators = dbi_entries(txn, s->ind);
	out->territories = dbi_entries(txn, s->terr);
	out->vintages = dbi_entries(txn, s->vint);
	out->map_grows = s->grows;
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&s->lock);
	char path[4096];
	snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
	struct stat st;
	if (stat(path, &st) == 0)
		out->file_size = (uint64_t)st.st_size;
	return 0;
}

int vg_store_backup(vg_store *s, const char *dir, vg_error *err)
{
	char path[4096];
	struct stat st;
	if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >=
	    (int)sizeof(path))
		return vg_error_set(err, VG_EINVAL, "backup path too long");
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		return vg_error_set(err, VG_ENOTFOUND,
				    "backup directory %s does not exist", dir);
	if (stat(path, &st) == 0)
		return vg_error_set(err, VG_EEXIST,
				    "%s already holds a backup (data.mdb): "
				    "choose an empty directory", dir);
	/* mdb_env_copy2 opens its own read transaction: hold the read side
	 * of our lock so a map resize cannot happen underneath. */
	pthread_rwlock_rdlock(&s->lock);
	int rc = mdb_env_copy2(s->env, dir, MDB_CP_COMPACT);
	pthread_rwlock_unlock(&s->lock);
	if (rc == ENOSPC || rc == EDQUOT) {
		unlink(path);
		return vg_error_set(err, VG_EFULL,
				    "backup to %s: disk full (the partial copy "
				    "was removed)", dir);
	}
	if (rc) {
		unlink(path);
		return vg_error_set(err, VG_EIO, "backup to %s failed: %s", dir,
				    mdb_strerror(rc));
	}
	return 0;
}
