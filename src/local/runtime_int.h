/*
 * Private to the runtime (runtime.c: workers, supervisor, dispatch, logs;
 * runtime_front.c: the scoring front, endpoints, auth, metrics).
 *
 * Locks, always taken in this order: rt->mu (endpoints, deployments and
 * their reference counts), then dep->mu (a deployment's workers, queue and
 * pending requests), then w->wmu (writes to one worker's socket), and
 * rt->stats_mu / dep->logmu last and alone.
 */
#ifndef AMLOPS_LOCAL_RUNTIME_INT_H
#define AMLOPS_LOCAL_RUNTIME_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "local/runtime.h"

/* Frame types; see the top of worker.py for the layout. */
enum rt_frame {
	RT_FRAME_READY = 1,
	RT_FRAME_INIT_FAILED = 2,
	RT_FRAME_REQUEST = 3,
	RT_FRAME_RESPONSE = 4,
	RT_FRAME_ERROR = 5,
};

#define RT_HDR_LEN 12
/* The largest response a worker may send; larger ones get it killed. */
#define RT_MAX_RESPONSE (64u << 20)
/* Deaths within RT_DEATH_WINDOW_MS that make a deployment FAILED. */
#define RT_DEATHS_FAILED 5
#define RT_DEATH_WINDOW_MS 60000
#define RT_BACKOFF_MIN_MS 100
#define RT_BACKOFF_MAX_MS 10000

#define RT_NBUCKETS 14
extern const double rt_buckets[RT_NBUCKETS];

struct rt_hist {
	uint64_t bucket[RT_NBUCKETS]; /* not cumulative */
	uint64_t count;
	double sum;
};

#define RT_NCODES 16
struct rt_stats {
	int code[RT_NCODES];
	uint64_t count[RT_NCODES];
	int ncodes;
	struct rt_hist latency;
	struct rt_hist queue;
};

/* One request waiting for its worker's answer; lives on the caller's stack. */
struct rt_pending {
	struct rt_pending *next;
	uint32_t id;
	int done;
	int status; /* the worker's status, or RT_DIED */
	int error;  /* run() raised: body is the message */
	char *ctype;
	char *body;
	size_t len;
	pthread_cond_t cv;
};

enum rt_wstate {
	RT_W_STARTING = 0,
	RT_W_READY,
	RT_W_DEAD,
};

struct rt_worker {
	struct rt_dep *dep;
	int index;
	unsigned gen; /* the deployment generation it runs */
	pid_t pid;
	int sock;  /* host end, non-blocking */
	int logfd; /* read end of stdout/stderr */
	pthread_t reader;
	pthread_mutex_t wmu;
	/* Under dep->mu: */
	enum rt_wstate state;
	int reader_done;
	int reaped;
	int retiring;
	int killed; /* we signalled it: its death is expected */
	int64_t killed_ms;
	int init_failed;
	int inflight;
	int refs; /* requests holding it */
	uint32_t next_id;
	struct rt_pending *pending;
	int64_t dead_ms;
	int reading; /* a request thread reads the socket (the leader) */
	/* Only the leader: what it read past the last whole frame. */
	unsigned char *rbuf;
	size_t rlen;
	size_t rcap;
};

struct rt_dep {
	struct rt_dep *next;
	struct amlops_runtime *rt;
	char *endpoint;
	char *name;
	/* Under dep->mu: */
	char *code_dir;
	char *script;
	char *model_dir;
	char *log_dir;
	cJSON *env;
	int instances;
	int timeout_ms;
	int maxconc;
	int queue_ms;
	unsigned gen;
	int was_ready; /* every worker of this gen was ready once */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a worker got free, ready or died */
	struct rt_worker **w;
	size_t nw;
	size_t capw;
	int next_index;
	int waiting;
	int inflight;
	char *init_error;  /* init() raised: its last line */
	char *crash_error; /* workers keep dying */
	int64_t deaths[RT_DEATHS_FAILED];
	size_t ndeaths;
	int64_t backoff_ms;
	int64_t next_spawn_ms;
	uint64_t restarts;
	/* Under rt->mu: */
	int removed;
	int refs; /* atomic: taken under rt->mu, dropped anywhere */
	/* Under logmu: */
	pthread_mutex_t logmu;
	int logfd;
	char *logpath;
	off_t logsize;
	/* Under dep->mu: */
	struct rt_stats stats;
};

struct rt_route {
	char *deployment;
	int percent;
	int current;   /* smooth weighted round robin */
	uint64_t seen; /* mirror: requests considered */
};

struct rt_token {
	char *token;
	int64_t expires_wall_ms;
};

struct rt_ep {
	struct rt_ep *next;
	char *name;
	enum amlops_runtime_auth auth;
	char *key1;
	char *key2;
	struct rt_route *traffic;
	size_t ntraffic;
	struct rt_route *mirror;
	size_t nmirror;
	struct rt_token *tokens;
	size_t ntokens;
	struct rt_stats stats; /* requests no deployment took */
};

struct rt_mirror_job {
	struct rt_mirror_job *next;
	char *endpoint;
	char *deployment;
	char *ctype;
	char *body;
	size_t len;
};

struct amlops_runtime {
	char *python;
	char *bind;
	size_t max_body;
	size_t log_cap;
	struct MHD_Daemon *mhd;
	int port;
	char base_url[80];

	pthread_mutex_t mu;
	struct rt_ep *eps;
	struct rt_dep *deps;
	struct rt_dep *graveyard; /* removed, waiting for their workers */
	int stop;
	pthread_cond_t sup_cv;
	pthread_t sup;
	int sup_started;

	pthread_mutex_t stats_mu;

	pthread_mutex_t mirror_mu;
	pthread_cond_t mirror_cv;
	struct rt_mirror_job *mirror_head;
	struct rt_mirror_job *mirror_tail;
	size_t mirror_len;
	int mirror_stop;
	pthread_t mirror_thread;
	int mirror_started;
};

/* The answer of a dispatch, for the front. */
struct rt_result {
	int status;  /* HTTP status for the client */
	char *ctype; /* owned */
	char *body;  /* owned */
	size_t len;
	int model_status; /* 424: what the model answered */
	int64_t queue_ms;
};

void rt_result_release(struct rt_result *res);

/*
 * Sends one request to a ready worker of `d`, queueing per the request
 * settings, and fills `res` (which the caller releases).
 */
void rt_dispatch(struct rt_dep *d, const char *ctype, const char *body,
    size_t len, int64_t t_request, struct rt_result *res);

/* Finds a deployment and takes a reference; rt->mu must be held. */
struct rt_dep *rt_dep_find(
    struct amlops_runtime *rt, const char *endpoint, const char *name);
/* Drops a reference taken by rt_dep_find(); takes rt->mu. */
void rt_dep_unref(struct rt_dep *d);

void rt_stats_record(struct amlops_runtime *rt, struct rt_stats *s, int code,
    int64_t total_ms, int64_t queue_ms);
int rt_stats_print(struct amlops_buf *out, const struct rt_stats *s,
    const char *endpoint, const char *deployment, int which);

/* Front (runtime_front.c). */
int rt_front_start(
    struct amlops_runtime *rt, const struct amlops_runtime_opts *opts);
void rt_front_stop(struct amlops_runtime *rt);
void rt_ep_free(struct rt_ep *ep);

/* Core (runtime.c): stops and forgets every deployment of an endpoint. */
void rt_remove_endpoint_deps(struct amlops_runtime *rt, const char *endpoint);

#endif
