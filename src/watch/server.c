/*
 * /healthz and /metrics for amlops watch: libmicrohttpd with its own
 * polling thread, so that a scrape never waits for the loop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "amlops/err.h"
#include "amlops/util.h"
#include "amlops/watch.h"

struct amlops_watch_server {
	struct MHD_Daemon *mhd;
	struct amlops_watch_metrics *m;
	int64_t unhealthy_after_ms;
	int port;
};

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *type, char *body)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	/* takes `body` */
	resp = MHD_create_response_from_buffer(
	    strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct amlops_watch_server *s = cls;
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char why[512];

	(void)version;
	(void)upload_data;
	if (*con_cls == NULL) {
		*con_cls = s; /* the headers: wait for the (empty) body */
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0; /* a body we ignore */
		return MHD_YES;
	}
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
		    amlops_xstrdup("method not allowed\n"));
	if (!strcmp(url, "/healthz")) {
		if (amlops_watch_metrics_healthy(
		        s->m, s->unhealthy_after_ms, why, sizeof(why)))
			return reply(c, MHD_HTTP_OK, "text/plain",
			    amlops_xstrdup("ok\n"));
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
		    amlops_xasprintf("unhealthy: %s\n", why));
	}
	if (!strcmp(url, "/metrics")) {
		if (amlops_watch_metrics_render(&b, s->m) < 0) {
			amlops_buf_release(&b);
			return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "text/plain", amlops_xstrdup("error\n"));
		}
		return reply(c, MHD_HTTP_OK,
		    "text/plain; version=0.0.4; charset=utf-8",
		    amlops_buf_detach(&b));
	}
	return reply(c, MHD_HTTP_NOT_FOUND, "text/plain",
	    amlops_xstrdup("not found: try /healthz or /metrics\n"));
}

/* "HOST:PORT", "[V6]:PORT", ":PORT" into a socket address. */
static int
parse_listen(struct sockaddr_storage *ss, const char *listen)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char host[64];
	const char *colon, *h = listen;
	char *end;
	long port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	colon = strrchr(listen, ':');
	if (colon == NULL)
		goto bad;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end || port < 0 || port > 65535)
		goto bad;
	hl = (size_t)(colon - listen);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
		if (hl >= sizeof(host))
			goto bad;
		memcpy(host, h, hl);
		host[hl] = '\0';
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			goto bad;
		return 0;
	}
	if (hl >= sizeof(host))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	in4->sin_family = AF_INET;
	in4->sin_port = htons((uint16_t)port);
	if (hl == 0) {
		in4->sin_addr.s_addr = htonl(INADDR_ANY);
		return 0;
	}
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
		goto bad;
	return 0;
bad:
	return amlops_err_set(AMLOPS_EINVALID,
	    "bad listen address '%s' (expected HOST:PORT, [IPV6]:PORT or "
	    ":PORT, e.g. 127.0.0.1:9464)",
	    listen);
}

static int
start(struct amlops_watch_server **out, const char *listen,
    struct amlops_watch_metrics *m, int64_t unhealthy_after_ms, unsigned flags)
{
	struct amlops_watch_server *s;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	int error;

	*out = NULL;
	if ((error = parse_listen(&ss, listen)) < 0)
		return error;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s = amlops_xcalloc(1, sizeof(*s));
	s->m = m;
	s->unhealthy_after_ms = unhealthy_after_ms;
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	if (s->mhd == NULL) {
		free(s);
		return amlops_err_sys(
		    AMLOPS_ERROR, "cannot listen on '%s'", listen);
	}
	info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? (int)info->port : 0;
	*out = s;
	return 0;
}

int
amlops_watch_server_start(struct amlops_watch_server **out, const char *listen,
    struct amlops_watch_metrics *m, int64_t unhealthy_after_ms)
{
	return start(out, listen, m, unhealthy_after_ms,
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL);
}

int
amlops_watch_server_start_polled(struct amlops_watch_server **out,
    const char *listen, struct amlops_watch_metrics *m,
    int64_t unhealthy_after_ms)
{
	/* no thread: the process can fork safely (amlops_watch_child_run) */
	return start(out, listen, m, unhealthy_after_ms, MHD_USE_EPOLL);
}

int
amlops_watch_server_fd(const struct amlops_watch_server *s)
{
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);

	return info ? info->epoll_fd : -1;
}

void
amlops_watch_server_run(void *s)
{
	struct amlops_watch_server *sv = s;

	MHD_run(sv->mhd);
}

int
amlops_watch_server_port(const struct amlops_watch_server *s)
{
	return s->port;
}

void
amlops_watch_server_stop(struct amlops_watch_server *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->mhd);
	free(s);
}
