/* Load test of vigied over loopback TCP, from a separate client process:
 * 32 connections, series queries pipelined (16 in flight per connection)
 * and not (one at a time), queries/s and p50/p99 latency; a France-wide
 * commune slice end to end; and the loopback round-trip floor measured
 * with a trivial echo server in this process.
 *
 *   bench_daemon VIGIED DATA_DIR [seconds-per-phase]
 *
 * DATA_DIR must hold the real sample data (make bench prepares it). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NCONN 32
#define DEPTH 16

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_port(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

typedef struct conn {
	int fd;
	double sent[DEPTH * 2]; /* send times, FIFO */
	unsigned head, tail;
	char buf[1 << 16];
	size_t len;
} conn;

static const char *REQ[] = {
	"{\"op\":\"series\",\"indicator\":\"population\",\"territory\":"
	"\"com:85146\"}\n",
	"{\"op\":\"series\",\"indicator\":\"population\",\"territory\":"
	"\"com:36044\"}\n",
	"{\"op\":\"series\",\"indicator\":\"population\",\"territory\":"
	"\"com:75056\"}\n",
};

/* Run the series load for `secs` with `depth` requests in flight per
 * connection; returns queries/s and fills p50/p99 (ms). */
static double load(int port, int depth, double secs, double *p50, double *p99)
{
	conn *cs = calloc(NCONN, sizeof(*cs));
	int ep = epoll_create1(0);
	size_t cap = 1 << 22, nlat = 0;
	double *lat = malloc(cap * sizeof(double));
	uint64_t done = 0, errors = 0, k = 0;
	for (int i = 0; i < NCONN; i++) {
		cs[i].fd = connect_port(port);
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &cs[i] };
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	double t0 = now(), end = t0 + secs;
	/* Fill the pipelines. */
	for (int i = 0; i < NCONN; i++)
		for (int d = 0; d < depth; d++) {
			const char *r = REQ[k++ % 3];
			if (write(cs[i].fd, r, strlen(r)) < 0)
				exit(1);
			cs[i].sent[cs[i].tail++ % (DEPTH * 2)] = now();
		}
	struct epoll_event evs[NCONN];
	while (now() < end) {
		int n = epoll_wait(ep, evs, NCONN, 100);
		for (int e = 0; e < n; e++) {
			conn *c = evs[e].data.ptr;
			ssize_t r = read(c->fd, c->buf + c->len,
					 sizeof(c->buf) - c->len);
			if (r <= 0) {
				fprintf(stderr, "daemon closed a connection\n");
				exit(1);
			}
			c->len += (size_t)r;
			char *p = c->buf, *nl;
			double t = now();
			char out[DEPTH * 128];
			size_t olen = 0;
			while ((nl = memchr(p, '\n', c->len - (size_t)(p - c->buf)))) {
				if (!memmem(p, (size_t)(nl - p), "\"ok\":true", 9))
					errors++;
				double st = c->sent[c->head++ % (DEPTH * 2)];
				if (nlat < cap)
					lat[nlat++] = t - st;
				done++;
				const char *q = REQ[k++ % 3];
				size_t ql = strlen(q);
				memcpy(out + olen, q, ql);
				olen += ql;
				c->sent[c->tail++ % (DEPTH * 2)] = t;
				p = nl + 1;
			}
			c->len -= (size_t)(p - c->buf);
			memmove(c->buf, p, c->len);
			if (olen && write(c->fd, out, olen) < 0)
				exit(1);
		}
	}
	double el = now() - t0;
	qsort(lat, nlat, sizeof(double), cmp_d);
	*p50 = nlat ? lat[nlat / 2] * 1e3 : 0;
	*p99 = nlat ? lat[(size_t)(nlat * 0.99)] * 1e3 : 0;
	for (int i = 0; i < NCONN; i++)
		close(cs[i].fd);
	close(ep);
	free(cs);
	free(lat);
	if (errors)
		fprintf(stderr, "%llu error answers\n",
			(unsigned long long)errors);
	return (double)done / el;
}

/* The floor: a ping-pong over loopback with a trivial echo thread. */
static int echo_port;
static void *echo_main(void *ud)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(ls, (struct sockaddr *)&a, sizeof(a));
	socklen_t l = sizeof(a);
	getsockname(ls, (struct sockaddr *)&a, &l);
	echo_port = ntohs(a.sin_port);
	listen(ls, 1);
	*(volatile int *)ud = 1;
	int fd = accept(ls, NULL, NULL);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	char b[256];
	ssize_t r;
	while ((r = read(fd, b, sizeof(b))) > 0)
		if (write(fd, b, (size_t)r) < 0)
			break;
	close(fd);
	close(ls);
	return NULL;
}

static double rtt_floor_us(void)
{
	volatile int ready = 0;
	pthread_t th;
	pthread_create(&th, NULL, echo_main, (void *)&ready);
	while (!ready)
		usleep(1000);
	int fd = connect_port(echo_port);
	enum { N = 20000 };
	double t0 = now();
	char b[64];
	for (int i = 0; i < N; i++) {
		if (write(fd, "ping\n", 5) != 5 || read(fd, b, sizeof(b)) <= 0)
			break;
	}
	double us = (now() - t0) / N * 1e6;
	close(fd);
	pthread_join(th, NULL);
	return us;
}

static double slice_ms(int port, size_t *bytes)
{
	int fd = connect_port(port);
	const char *q = "{\"op\":\"slice\",\"indicator\":\"population\","
			"\"level\":\"com\",\"period\":\"2022\",\"limit\":40000}\n";
	double best[15];
	size_t cap = 16 << 20;
	char *buf = malloc(cap);
	for (int i = 0; i < 15; i++) {
		double t0 = now();
		if (write(fd, q, strlen(q)) < 0)
			exit(1);
		size_t len = 0;
		for (;;) {
			ssize_t r = read(fd, buf + len, cap - len);
			if (r <= 0)
				exit(1);
			len += (size_t)r;
			if (buf[len - 1] == '\n')
				break;
		}
		best[i] = (now() - t0) * 1e3;
		*bytes = len;
	}
	free(buf);
	close(fd);
	qsort(best, 15, sizeof(double), cmp_d);
	return best[7];
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_daemon VIGIED DATA_DIR [secs]\n");
		return 2;
	}
	double secs = argc > 3 ? atof(argv[3]) : 5;
	char addr[1024];
	snprintf(addr, sizeof(addr), "%s/bench.addr", argv[2]);
	unlink(addr);
	pid_t pid = fork();
	if (pid == 0) {
		execl(argv[1], argv[1], "--foreground", "--data", argv[2],
		      "--listen", "tcp:127.0.0.1:0", "--addr-file", addr,
		      "--log-format", "json", "--plugins", "/nonexistent",
		      (char *)NULL);
		_exit(127);
	}
	int port = 0;
	for (int i = 0; i < 3000 && !port; i++) {
		FILE *f = fopen(addr, "r");
		char line[256];
		if (f && fgets(line, sizeof(line), f))
			port = atoi(strrchr(line, ':') + 1);
		if (f)
			fclose(f);
		if (!port)
			usleep(10000);
	}
	if (!port) {
		fprintf(stderr, "vigied did not start\n");
		return 1;
	}
	double floor = rtt_floor_us();
	double p50u, p99u, p50p, p99p;
	double qu = load(port, 1, secs, &p50u, &p99u);
	double qp = load(port, DEPTH, secs, &p50p, &p99p);
	size_t bytes = 0;
	double sl = slice_ms(port, &bytes);
	printf("\n| daemon over loopback TCP (32 connections, separate client "
	       "process) | result | target |\n|---|---|---|\n");
	printf("| loopback round trip floor (echo thread) | %.1f µs | — |\n",
	       floor);
	printf("| series, unpipelined | %.0f q/s, p50 %.3f ms, p99 %.3f ms | "
	       "≥ 30 000 q/s, p99 < 2 ms |\n",
	       qu, p50u, p99u);
	printf("| series, pipelined ×%d | %.0f q/s, p50 %.3f ms, p99 %.3f ms | "
	       "≥ 100 000 q/s |\n",
	       DEPTH, qp, p50p, p99p);
	printf("| France-wide commune slice (every commune, %.1f MB JSON), "
	       "median of 15 | %.1f ms | < 20 ms |\n",
	       bytes / 1e6, sl);
	kill(pid, SIGTERM);
	int st;
	waitpid(pid, &st, 0);
	return 0;
}
