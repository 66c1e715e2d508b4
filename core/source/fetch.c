/* ctx:fetch: local files under the configured roots, file:// URLs, and
 * http(s) downloads through libcurl with a conditional-request cache.
 *
 * Local reads are confined to the roots after resolving symlinks
 * (realpath), so "../../etc/passwd" or a link pointing out is refused. A
 * download with a cache directory goes to <cache>/<sha256(url)>.data with
 * its ETag and Last-Modified in a .meta file; the next fetch sends
 * If-None-Match / If-Modified-Since and a 304 reuses the file, which is
 * what makes a re-run on an unchanged source cheap (and, with the same
 * checksum, write nothing new). */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>

#include "util/sha256.h"
#include "vigie/source.h"

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void vg_source_clear(vg_source *s)
{
	free(s->name);
	free(s->path);
	free(s->data);
	memset(s, 0, sizeof(*s));
}

/* True when `path` (resolved) is `root` (resolved) or below it. */
static bool under(const char *path, const char *root)
{
	size_t n = strlen(root);
	if (n > 1 && root[n - 1] == '/')
		n--;
	return !strncmp(path, root, n) && (path[n] == '/' || path[n] == '\0');
}

static int local_file(const vg_source_opts *p, const char *what, vg_source *out,
		      vg_error *err)
{
	const char *rel = what;
	if (!strncmp(rel, "file://", 7))
		rel = what + 7;
	if (!p->nroots)
		return vg_error_set(err, VG_ESANDBOX,
				    "fetch '%s': no local root is configured, "
				    "the plugin may not read local files",
				    what);
	char real[PATH_MAX];
	bool found = false, outside = false;
	for (size_t i = 0; i < p->nroots && !found; i++) {
		char cand[PATH_MAX], root[PATH_MAX];
		if (!realpath(p->roots[i], root))
			continue;
		if (rel[0] == '/')
			snprintf(cand, sizeof(cand), "%s", rel);
		else if ((size_t)snprintf(cand, sizeof(cand), "%s/%s", root,
					  rel) >= sizeof(cand))
			continue;
		if (!realpath(cand, real))
			continue;
		if (under(real, root))
			found = true;
		else
			outside = true;
	}
	if (!found && outside)
		return vg_error_set(err, VG_ESANDBOX,
				    "fetch '%s': the file is outside the "
				    "directories plugins may read", what);
	if (!found) {
		char roots[512] = "";
		for (size_t i = 0; i < p->nroots; i++) {
			size_t l = strlen(roots);
			snprintf(roots + l, sizeof(roots) - l, "%s%s",
				 i ? ", " : "", p->roots[i]);
		}
		return vg_error_set(err, VG_ENOTFOUND,
				    "fetch '%s': no such file under the roots "
				    "(%s)", what, roots);
	}
	struct stat st;
	if (stat(real, &st) || !S_ISREG(st.st_mode))
		return vg_error_set(err, VG_EIO, "fetch '%s': %s is not a "
				    "regular file", what, real);
	if ((uint64_t)st.st_size > p->max)
		return vg_error_set(err, VG_ETOOBIG,
				    "fetch '%s': %lld bytes, more than the "
				    "limit of %zu", what,
				    (long long)st.st_size, p->max);
	out->name = strdup(what);
	out->path = strdup(real);
	if (!out->name || !out->path)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	out->len = (size_t)st.st_size;
	if (vg_sha256_file(real, out->checksum))
		return vg_error_set(err, VG_EIO, "fetch '%s': cannot read %s: "
				    "%s", what, real, strerror(errno));
	return 0;
}

/* ---- http -------------------------------------------------------------- */

typedef struct dl {
	unsigned char *buf;
	size_t len, cap, max;
	bool too_big;
	FILE *file; /* cache: write here instead of buf */
	char etag[256], modified[128];
	double deadline;
	const volatile int *cancel;
} dl;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	dl *d = ud;
	size_t n = size * nmemb;
	if (d->len + n > d->max) {
		d->too_big = true;
		return 0;
	}
	if (d->file) {
		if (fwrite(ptr, 1, n, d->file) != n)
			return 0;
		d->len += n;
		return n;
	}
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 65536;
		while (cap < d->len + n)
			cap *= 2;
		unsigned char *nb = realloc(d->buf, cap);
		if (!nb)
			return 0;
		d->buf = nb;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, ptr, n);
	d->len += n;
	return n;
}

static void header_value(const char *line, size_t n, const char *name,
			 char *out, size_t outn)
{
	size_t k = strlen(name);
	if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
		return;
	const char *v = line + k + 1;
	const char *end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
			   end[-1] == ' '))
		end--;
	snprintf(out, outn, "%.*s", (int)(end - v), v);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	dl *d = ud;
	size_t n = size * nmemb;
	header_value(ptr, n, "etag", d->etag, sizeof(d->etag));
	header_value(ptr, n, "last-modified", d->modified, sizeof(d->modified));
	return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c,
		       curl_off_t e)
{
	dl *d = ud;
	return (d->cancel && *d->cancel) ? 1 : 0;
}

static void read_meta(const char *path, char *etag, size_t en, char *mod,
		      size_t mn)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		header_value(line, n, "etag", etag, en);
		header_value(line, n, "last-modified", mod, mn);
	}
	fclose(f);
}

/* curl_global_init is not thread-safe: once, before the first easy
 * handle, whatever thread runs the first download. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int http(const vg_source_opts *p, const char *url, vg_source *out,
		vg_error *err)
{
	pthread_once(&curl_once, curl_init);
	dl d = { .max = p->max, .deadline = p->deadline, .cancel = p->cancel };
	char data_path[PATH_MAX] = "", meta_path[PATH_MAX] = "",
	     tmp_path[PATH_MAX] = "";
	char old_etag[256] = "", old_mod[128] = "";
	if (p->cache_dir) {
		vg_sha256 h;
		char hex[72];
		vg_sha256_init(&h);
		vg_sha256_update(&h, url, strlen(url));
		vg_sha256_hex(&h, hex);
		mkdir(p->cache_dir, 0755);
		snprintf(data_path, sizeof(data_path), "%s/%s.data",
			 p->cache_dir, hex + 7);
		snprintf(meta_path, sizeof(meta_path), "%s/%s.meta",
			 p->cache_dir, hex + 7);
		/* Unique per process and per download: two runs on two
		 * threads may fetch the same URL at once. */
		static atomic_ulong seq;
		snprintf(tmp_path, sizeof(tmp_path), "%s/%s.%ld.%lu.tmp",
			 p->cache_dir, hex + 7, (long)getpid(),
			 (unsigned long)atomic_fetch_add(&seq, 1));
		if (access(data_path, R_OK) == 0)
			read_meta(meta_path, old_etag, sizeof(old_etag),
				  old_mod, sizeof(old_mod));
		d.file = fopen(tmp_path, "wb");
		if (!d.file)
			return vg_error_set(err, VG_EIO,
					    "fetch '%s': cannot write to the "
					    "cache %s: %s", url, tmp_path,
					    strerror(errno));
	}
	CURL *c = curl_easy_init();
	if (!c) {
		if (d.file)
			fclose(d.file), unlink(tmp_path);
		return vg_error_set(err, VG_ENOMEM, "cannot start libcurl");
	}
	struct curl_slist *hdrs = NULL;
	char hbuf[400];
	if (old_etag[0]) {
		snprintf(hbuf, sizeof(hbuf), "If-None-Match: %s", old_etag);
		hdrs = curl_slist_append(hdrs, hbuf);
	}
	if (old_mod[0]) {
		snprintf(hbuf, sizeof(hbuf), "If-Modified-Since: %s", old_mod);
		hdrs = curl_slist_append(hdrs, hbuf);
	}
	double left = p->deadline > 0 ? p->deadline - now_mono() : 86400.0;
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "vigie");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
			 (long)(left > 0.001 ? left * 1000 : 1));
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)d.max);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &d);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &d);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	if (d.file && fclose(d.file) && cc == CURLE_OK)
		cc = CURLE_WRITE_ERROR;
	int rc = 0;
	if (cc == CURLE_ABORTED_BY_CALLBACK)
		rc = vg_error_set(err, VG_ECANCELED, "fetch '%s': canceled",
				  url);
	else if (d.too_big || cc == CURLE_FILESIZE_EXCEEDED)
		rc = vg_error_set(err, VG_ETOOBIG, "fetch '%s': more than the "
				  "limit of %zu bytes", url, d.max);
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		rc = vg_error_set(err, VG_ETIMEOUT, "fetch '%s': deadline "
				  "reached during the download", url);
	else if (cc != CURLE_OK)
		rc = vg_error_set(err, VG_EIO, "fetch '%s': %s", url,
				  errbuf[0] ? errbuf : curl_easy_strerror(cc));
	else if (status == 304 && p->cache_dir)
		; /* not modified: the cached file is current */
	else if (status < 200 || status >= 300)
		rc = vg_error_set(err, VG_EIO, "fetch '%s': HTTP status %ld",
				  url, status);
	if (rc) {
		if (p->cache_dir)
			unlink(tmp_path);
		free(d.buf);
		return rc;
	}
	out->name = strdup(url);
	if (!out->name) {
		free(d.buf);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	if (!p->cache_dir) {
		out->data = d.buf;
		out->len = d.len;
		vg_sha256 h;
		vg_sha256_init(&h);
		vg_sha256_update(&h, d.buf, d.len);
		vg_sha256_hex(&h, out->checksum);
		return 0;
	}
	if (status == 304) {
		unlink(tmp_path);
	} else {
		if (rename(tmp_path, data_path))
			return vg_error_set(err, VG_EIO, "fetch '%s': cannot "
					    "store %s: %s", url, data_path,
					    strerror(errno));
		FILE *m = fopen(meta_path, "w");
		if (m) {
			fprintf(m, "url: %s\n", url);
			if (d.etag[0])
				fprintf(m, "etag: %s\n", d.etag);
			if (d.modified[0])
				fprintf(m, "last-modified: %s\n", d.modified);
			fclose(m);
		}
	}
	struct stat st;
	if (stat(data_path, &st))
		return vg_error_set(err, VG_EIO, "fetch '%s': cache file %s: "
				    "%s", url, data_path, strerror(errno));
	out->path = strdup(data_path);
	out->len = (size_t)st.st_size;
	if (!out->path)
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	if (vg_sha256_file(data_path, out->checksum))
		return vg_error_set(err, VG_EIO, "fetch '%s': cannot read %s",
				    url, data_path);
	return 0;
}

int vg_source_fetch(const char *what, const vg_source_opts *p,
		    vg_source *out, vg_error *err)
{
	memset(out, 0, sizeof(*out));
	int rc;
	if (!p->max)
		return vg_error_set(err, VG_EINVAL, "fetch '%s': no size limit "
				    "given", what);
	if (!strncmp(what, "http://", 7) || !strncmp(what, "https://", 8))
		rc = http(p, what, out, err);
	else if (strstr(what, "://") && strncmp(what, "file://", 7))
		rc = vg_error_set(err, VG_ESANDBOX, "fetch '%s': only http, "
				  "https, file:// and local paths are "
				  "allowed", what);
	else
		rc = local_file(p, what, out, err);
	if (rc)
		vg_source_clear(out);
	return rc;
}

int vg_source_bytes(const vg_source *s, size_t max, unsigned char **data,
		     size_t *len, bool *owned, vg_error *err)
{
	*owned = false;
	if (!s->path) {
		*data = s->data;
		*len = s->len;
		return 0;
	}
	FILE *f = fopen(s->path, "rb");
	if (!f)
		return vg_error_set(err, VG_EIO, "%s: %s", s->path,
				    strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) || (uint64_t)st.st_size > max) {
		fclose(f);
		return vg_error_set(err, VG_ETOOBIG, "%s: larger than %zu "
				    "bytes", s->path, max);
	}
	unsigned char *b = malloc((size_t)st.st_size + 1);
	if (!b) {
		fclose(f);
		return vg_error_set(err, VG_ENOMEM, "out of memory");
	}
	size_t got = fread(b, 1, (size_t)st.st_size, f);
	fclose(f);
	if (got != (size_t)st.st_size) {
		free(b);
		return vg_error_set(err, VG_EIO, "%s: short read", s->path);
	}
	b[got] = '\0';
	*data = b;
	*len = got;
	*owned = true;
	return 0;
}
