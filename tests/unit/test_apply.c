/*
 * Unit tests of the executor (amlops/apply.h): real git repositories in
 * temporary folders, and an in-memory backend through the vtable whose
 * live state is YAML parsed on every read, so that a test can change what
 * the target reports between two reads (another writer, a crash that
 * left an operation running, a deployment that failed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "amlops/apply.h"
#include "amlops/backend.h"
#include "amlops/err.h"
#include "amlops/plan.h"
#include "amlops/source.h"
#include "amlops/spec.h"
#include "amlops/status.h"
#include "amlops/util.h"

/* ------------------------------------------------------------------ */
/* A repository */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	struct amlops_buf b = AMLOPS_BUF_INIT;

	va_start(ap, fmt);
	amlops_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	cmd = amlops_buf_detach(&b);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
	free(cmd);
}

/* Repositories not removed yet: a failed test leaves its own behind. */
static char *repos[64];

/* A repository with one commit holding `files` ("path", "text", ...). */
static char *
make_repo(const char *const *files)
{
	char tmpl[] = "/tmp/amlops-test-apply.XXXXXX";
	char *dir;
	size_t i;

	assert_non_null(mkdtemp(tmpl));
	dir = amlops_xstrdup(tmpl);
	for (i = 0; i < AMLOPS_ARRAY_SIZE(repos) && repos[i]; i++)
		;
	assert_true(i < AMLOPS_ARRAY_SIZE(repos));
	repos[i] = dir;
	sh("cd '%s' && git init -q -b main && git config user.name t && "
	   "git config user.email t@example.com && "
	   "git config commit.gpgsign false",
	    dir);
	for (; files[0]; files += 2) {
		char *path = amlops_xasprintf("%s/%s", dir, files[0]);
		char *slash = strrchr(path, '/');

		*slash = '\0';
		sh("mkdir -p '%s'", path);
		*slash = '/';
		assert_int_equal(amlops_file_write_atomic(
		                     path, files[1], strlen(files[1]), 0644),
		    0);
		free(path);
	}
	sh("cd '%s' && git add -A && git commit -q -m one", dir);
	return dir;
}

static void
rm_repo(char *dir)
{
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(repos); i++)
		if (repos[i] == dir)
			repos[i] = NULL;
	sh("rm -rf '%s'", dir);
	free(dir);
}

/* After all tests: the repositories of tests that failed half-way. */
static int
remove_left_repos(void **state)
{
	(void)state;
	for (size_t i = 0; i < AMLOPS_ARRAY_SIZE(repos); i++)
		if (repos[i])
			rm_repo(repos[i]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The in-memory backend */

struct fake {
	struct amlops_backend base;
	/*
	 * The live endpoint as 2021-shaped YAML: `yaml[0]` for the first
	 * `switch_after` reads, then `yaml[1]`. NULL: there is none.
	 */
	const char *yaml[2];
	int switch_after;
	const char *ep_state;
	const char *dep_state[4][2]; /* name, provisioning state */
	int op_runs_forever;
	int gets;
	int alone_gets; /* reads of the endpoint without its deployments */
	int dep_gets;   /* reads of the deployments' states alone */
	char calls[16][96];
	int ncalls;
	struct amlops_spec *specs[64]; /* kept: locations point into them */
	int nspecs;
};

static struct fake *
fake(struct amlops_backend *b)
{
	return (struct fake *)b;
}

static int
fake_get(struct amlops_backend *b, const char *name,
    struct amlops_endpoint **out, struct amlops_live **live)
{
	struct fake *f = fake(b);
	const char *y = f->yaml[f->gets >= f->switch_after ? 1 : 0];
	struct amlops_spec_file file;
	struct amlops_diags d = AMLOPS_DIAGS_INIT;
	struct amlops_spec *spec = NULL;
	struct amlops_endpoint *ep;
	struct amlops_live *l;
	int n = 0;

	f->gets++;
	if (y == NULL)
		return amlops_err_set(AMLOPS_ENOTFOUND,
		    "GET onlineEndpoints/%s: 404 Not Found", name);
	file.path = "live.yml";
	file.data = y;
	file.len = strlen(y);
	if (amlops_spec_load(&spec, &d, &file, 1, NULL) != 0) {
		char *m = amlops_diag_format(&d.v[0]);

		fail_msg("the fake's live YAML: %s", m);
	}
	amlops_diags_release(&d);
	assert_int_equal(spec->nendpoints, 1);
	assert_true(f->nspecs < 64);
	f->specs[f->nspecs++] = spec;
	ep = spec->endpoints[0];
	spec->endpoints[0] = amlops_endpoint_new("detached");
	*out = ep;
	if (live == NULL)
		return 0;
	l = amlops_xcalloc(1, sizeof(*l));
	l->provisioning_state = amlops_xstrdup(f->ep_state);
	l->deployments = amlops_xcalloc(4, sizeof(*l->deployments));
	for (int i = 0; i < 4 && f->dep_state[i][0]; i++) {
		l->deployments[n].name = amlops_xstrdup(f->dep_state[i][0]);
		l->deployments[n].provisioning_state =
		    amlops_xstrdup(f->dep_state[i][1]);
		n++;
	}
	l->ndeployments = (size_t)n;
	*live = l;
	return 0;
}

static int
fake_apply_step(struct amlops_backend *b, const struct amlops_step *s,
    struct amlops_op **out)
{
	struct fake *f = fake(b);
	struct amlops_op *op = amlops_xcalloc(1, sizeof(*op));

	assert_true(f->ncalls < 16);
	snprintf(f->calls[f->ncalls++], sizeof(f->calls[0]), "%s %s %s%s%s",
	    amlops_plan_action_name(s->action),
	    amlops_plan_aspect_name(s->aspect), s->endpoint,
	    s->deployment ? "/" : "", s->deployment ? s->deployment : "");
	op->state =
	    f->op_runs_forever ? AMLOPS_OP_RUNNING : AMLOPS_OP_SUCCEEDED;
	snprintf(op->request_id, sizeof(op->request_id),
	    "00000000-0000-0000-0000-%012d", f->ncalls);
	op->what = amlops_xasprintf("PUT onlineEndpoints/%s", s->endpoint);
	*out = op;
	return 0;
}

static int
fake_poll(struct amlops_backend *b, struct amlops_op *op)
{
	(void)b;
	return op->state == AMLOPS_OP_SUCCEEDED ? 0 : 1;
}

static void
fake_free(struct amlops_backend *b)
{
	struct fake *f = fake(b);

	for (int i = 0; i < f->nspecs; i++)
		amlops_spec_free(f->specs[i]);
	free(f);
}

static const struct amlops_backend_ops fake_ops = {
    .name = "fake",
    .get_endpoint = fake_get,
    .apply_step = fake_apply_step,
    .poll_op = fake_poll,
    .free = fake_free,
};

/* The endpoint without its deployments, as the azure/local backends. */
static int
fake_get_alone(struct amlops_backend *b, const char *name,
    struct amlops_endpoint **out, struct amlops_live **live)
{
	struct fake *f = fake(b);
	struct amlops_endpoint *ep;
	int error = fake_get(b, name, &ep, live);

	f->gets--;
	f->alone_gets++;
	if (error < 0)
		return error;
	for (size_t i = 0; i < ep->ndeployments; i++)
		amlops_deployment_free(ep->deployments[i]);
	free(ep->deployments);
	ep->deployments = NULL;
	ep->ndeployments = 0;
	if (live) {
		amlops_live_deployments_free(
		    (*live)->deployments, (*live)->ndeployments);
		(*live)->deployments = NULL;
		(*live)->ndeployments = 0;
	}
	*out = ep;
	return 0;
}

static int
fake_get_deployment_states(struct amlops_backend *b, const char *endpoint,
    struct amlops_live_deployment **out, size_t *n)
{
	struct fake *f = fake(b);
	size_t k = 0;

	(void)endpoint;
	f->dep_gets++;
	*out = amlops_xcalloc(4, sizeof(**out));
	for (int i = 0; i < 4 && f->dep_state[i][0]; i++) {
		(*out)[k].name = amlops_xstrdup(f->dep_state[i][0]);
		(*out)[k].provisioning_state =
		    amlops_xstrdup(f->dep_state[i][1]);
		k++;
	}
	*n = k;
	return 0;
}

/* The same backend, able to read an endpoint's two halves apart. */
static const struct amlops_backend_ops fake_split_ops = {
    .name = "fake",
    .get_endpoint = fake_get,
    .get_endpoint_only = fake_get_alone,
    .get_deployment_states = fake_get_deployment_states,
    .apply_step = fake_apply_step,
    .poll_op = fake_poll,
    .free = fake_free,
};

static struct fake *
fake_new(void)
{
	struct fake *f = amlops_xcalloc(1, sizeof(*f));

	f->base.ops = &fake_ops;
	f->ep_state = "Succeeded";
	f->switch_after = 1 << 30;
	return f;
}

/* ------------------------------------------------------------------ */
/* Fixtures */

#define TAGS                                                                   \
	"tags:\n"                                                              \
	"  managed-by: amlops\n"                                               \
	"  amlops-commit: c0ffee\n"

#define DEP(name, count)                                                       \
	"  - name: " name "\n"                                                 \
	"    model: azureml:m:1\n"                                             \
	"    code_configuration:\n"                                            \
	"      code: azureml:c:1\n"                                            \
	"      scoring_script: score.py\n"                                     \
	"    environment: azureml:e:1\n"                                       \
	"    instance_type: Standard_DS2_v2\n"                                 \
	"    instance_count: " #count "\n"

/* An endpoint file in the 2021 shape. */
#define EP(name, traffic, deps)                                                \
	"name: " name "\nauth_mode: key\n" TAGS "traffic:\n" traffic           \
	"deployments:\n" deps

struct ctx {
	char *dir;
	struct amlops_source *src;
	struct fake *f;
	struct amlops_apply *a;
	struct amlops_apply_opts opts;
	char commit[41];
};

static void
ctx_open(struct ctx *c, const char *const *files)
{
	struct amlops_apply_opts o = AMLOPS_APPLY_OPTS_INIT;

	memset(c, 0, sizeof(*c));
	c->dir = make_repo(files);
	assert_int_equal(amlops_source_open(&c->src, c->dir, NULL), 0);
	assert_int_equal(amlops_source_resolve(c->commit, c->src, "HEAD"), 0);
	c->f = fake_new();
	c->opts = o;
	c->opts.target = "fake";
	c->opts.busy_poll_ms = 20;
	c->opts.step_timeout_ms = 2000;
}

static void
ctx_close(struct ctx *c)
{
	amlops_apply_free(c->a);
	amlops_backend_free(&c->f->base);
	amlops_source_free(c->src);
	rm_repo(c->dir);
}

static struct amlops_note *
stored_note(struct ctx *c)
{
	struct amlops_note *n = NULL;

	assert_int_equal(
	    amlops_status_note_read(&n, c->src, NULL, c->commit), 0);
	return n;
}

/* ------------------------------------------------------------------ */
/* Tests */

static void
apply__failed_deployment_is_repaired_then_traffic_refused(void **state)
{
	static const char *const files[] = {"ep/endpoint.yml",
	    EP("ep-e", "  blue: 100\n", DEP("blue", 1)), NULL};
	struct ctx c;
	struct amlops_note *n;

	(void)state;
	ctx_open(&c, files);
	c.f->yaml[0] = c.f->yaml[1] = EP("ep-e", "", DEP("blue", 1));
	c.f->dep_state[0][0] = "blue";
	c.f->dep_state[0][1] = "Failed";

	assert_int_equal(
	    amlops_apply_prepare(&c.a, c.src, c.commit, &c.f->base, &c.opts),
	    0);
	assert_int_equal(c.a->plan->nsteps, 2);
	assert_int_equal(c.a->plan->steps[0].aspect, AMLOPS_ASPECT_DEPLOYMENT);
	assert_int_equal(c.a->plan->steps[0].action, AMLOPS_PLAN_UPDATE);
	assert_string_equal(c.a->plan->steps[0].reason,
	    "deployment 'blue' is Failed on the target: apply it again");
	assert_int_equal(c.a->plan->steps[1].aspect, AMLOPS_ASPECT_TRAFFIC);

	assert_int_equal(
	    amlops_apply_run(c.a, c.src, &c.f->base, &c.opts), AMLOPS_EBACKEND);
	assert_string_equal(amlops_err_last(),
	    "1 of 2 steps failed: endpoint 'ep-e' step 2 (update traffic): "
	    "refusing to route traffic to deployment 'blue': it is Failed, "
	    "not Succeeded");
	/* the repair ran; the traffic step sent nothing */
	assert_int_equal(c.f->ncalls, 1);
	assert_string_equal(c.f->calls[0], "update deployment ep-e/blue");

	n = stored_note(&c);
	assert_int_equal(n->result, AMLOPS_NOTE_FAILED);
	assert_int_equal(n->nsteps, 2);
	assert_int_equal(n->steps[0].status, AMLOPS_STEP_SUCCEEDED);
	assert_string_equal(
	    n->steps[0].request_id, "00000000-0000-0000-0000-000000000001");
	assert_int_equal(n->steps[1].status, AMLOPS_STEP_FAILED);
	assert_string_equal(n->steps[1].error_code, "NotReady");
	assert_non_null(n->finished);
	amlops_note_free(n);
	/* the applied ref does not move after a failure */
	{
		char out[41];

		assert_int_equal(amlops_source_applied_get(out, c.src, "fake"),
		    AMLOPS_ENOTFOUND);
		amlops_err_clear();
	}
	ctx_close(&c);
}

static void
apply__delete_refused_while_traffic_came_back(void **state)
{
	static const char *const files[] = {"ep/endpoint.yml",
	    EP("ep-e", "  green: 100\n", DEP("green", 1)), NULL};
	struct ctx c;
	struct amlops_note *n;

	(void)state;
	ctx_open(&c, files);
	/* planned with blue at 0 ... */
	c.f->yaml[0] =
	    EP("ep-e", "  green: 100\n", DEP("blue", 1) DEP("green", 1));
	/* ... but someone routed half the traffic back before the step */
	c.f->yaml[1] = EP("ep-e", "  blue: 50\n  green: 50\n",
	    DEP("blue", 1) DEP("green", 1));
	c.f->switch_after = 1;
	c.f->dep_state[0][0] = "blue";
	c.f->dep_state[0][1] = "Succeeded";
	c.f->dep_state[1][0] = "green";
	c.f->dep_state[1][1] = "Succeeded";

	assert_int_equal(
	    amlops_apply_prepare(&c.a, c.src, c.commit, &c.f->base, &c.opts),
	    0);
	assert_int_equal(c.a->plan->nsteps, 1);
	assert_int_equal(c.a->plan->steps[0].action, AMLOPS_PLAN_DELETE);
	assert_int_equal(
	    amlops_apply_run(c.a, c.src, &c.f->base, &c.opts), AMLOPS_EBACKEND);
	assert_int_equal(c.f->ncalls, 0);
	n = stored_note(&c);
	assert_string_equal(n->steps[0].error_code, "UnderTraffic");
	assert_string_equal(n->steps[0].error_message,
	    "refusing to delete deployment 'blue': it carries 50% of the "
	    "traffic and 0% of the mirror traffic");
	amlops_note_free(n);
	ctx_close(&c);
}

static void
apply__traffic_rereads_the_deployments_after_planning(void **state)
{
	static const char *const files[] = {"ep/endpoint.yml",
	    EP("ep-e", "  blue: 50\n  green: 50\n",
	        DEP("blue", 1) DEP("green", 1)),
	    NULL};
	struct ctx c;
	struct amlops_note *n;

	(void)state;
	ctx_open(&c, files);
	c.f->base.ops = &fake_split_ops;
	c.f->yaml[0] = c.f->yaml[1] =
	    EP("ep-e", "  blue: 100\n", DEP("blue", 1) DEP("green", 1));
	c.f->dep_state[0][0] = "blue";
	c.f->dep_state[0][1] = "Succeeded";
	c.f->dep_state[1][0] = "green";
	c.f->dep_state[1][1] = "Succeeded";
	assert_int_equal(
	    amlops_apply_prepare(&c.a, c.src, c.commit, &c.f->base, &c.opts),
	    0);
	assert_int_equal(c.a->plan->nsteps, 1);
	assert_int_equal(c.a->plan->steps[0].aspect, AMLOPS_ASPECT_TRAFFIC);
	/* planned with green Succeeded; it failed before the step */
	c.f->dep_state[1][1] = "Failed";
	assert_int_equal(
	    amlops_apply_run(c.a, c.src, &c.f->base, &c.opts), AMLOPS_EBACKEND);
	assert_string_equal(amlops_err_last(),
	    "1 of 1 step failed: endpoint 'ep-e' step 1 (update traffic): "
	    "refusing to route traffic to deployment 'green': it is Failed, "
	    "not Succeeded");
	assert_int_equal(c.f->ncalls, 0);
	/* the re-read: the deployments alone, right after planning */
	assert_int_equal(c.f->gets, 1);
	assert_int_equal(c.f->dep_gets, 1);
	n = stored_note(&c);
	assert_string_equal(n->steps[0].error_code, "NotReady");
	amlops_note_free(n);
	ctx_close(&c);
}

static void
apply__traffic_step_reads_deployments_then_endpoint_alone(void **state)
{
	static const char *const files[] = {"ep/endpoint.yml",
	    EP("ep-e", "  blue: 50\n  green: 50\n",
	        DEP("blue", 1) DEP("green", 1)),
	    NULL};
	struct ctx c;
	struct amlops_note *n;

	(void)state;
	ctx_open(&c, files);
	c.f->base.ops = &fake_split_ops;
	/* the fake's live endpoint, as planned and as the step left it */
	c.f->yaml[0] =
	    EP("ep-e", "  blue: 100\n", DEP("blue", 1) DEP("green", 1));
	c.f->yaml[1] = EP("ep-e", "  blue: 50\n  green: 50\n",
	    DEP("blue", 1) DEP("green", 1));
	c.f->switch_after = 1;
	c.f->dep_state[0][0] = "blue";
	c.f->dep_state[0][1] = "Succeeded";
	c.f->dep_state[1][0] = "green";
	c.f->dep_state[1][1] = "Succeeded";
	assert_int_equal(
	    amlops_apply_prepare(&c.a, c.src, c.commit, &c.f->base, &c.opts),
	    0);
	assert_int_equal(c.a->plan->nsteps, 1);
	assert_int_equal(amlops_apply_run(c.a, c.src, &c.f->base, &c.opts), 0);
	assert_int_equal(c.f->ncalls, 1);
	assert_string_equal(c.f->calls[0], "update traffic ep-e");
	/*
	 * Planning read it all; the step re-read the deployments; the final
	 * state is the endpoint alone.
	 */
	assert_int_equal(c.f->gets, 1);
	assert_int_equal(c.f->dep_gets, 1);
	assert_int_equal(c.f->alone_gets, 1);
	n = stored_note(&c);
	assert_int_equal(n->result, AMLOPS_NOTE_SUCCEEDED);
	assert_int_equal(n->nendpoints, 1);
	assert_string_equal(n->endpoints[0].provisioning_state, "Succeeded");
	/* the traffic the step set, from that last read */
	assert_int_equal(cJSON_GetArraySize(n->endpoints[0].traffic), 2);
	assert_int_equal(
	    cJSON_GetObjectItem(n->endpoints[0].traffic, "blue")->valueint, 50);
	assert_int_equal(
	    cJSON_GetObjectItem(n->endpoints[0].traffic, "green")->valueint,
	    50);
	amlops_note_free(n);
	ctx_close(&c);
}

static void
apply__step_timeout_fails_endpoint_others_go_on(void **state)
{
	static const char *const files[] = {"a/endpoint.yml",
	    EP("ep-a", "  blue: 100\n", DEP("blue", 1) DEP("green", 1)),
	    "b/endpoint.yml", EP("ep-b", "  blue: 100\n", DEP("blue", 2)),
	    NULL};
	struct ctx c;
	struct amlops_note *n;

	(void)state;
	ctx_open(&c, files);
	/* neither endpoint exists; no operation ever ends */
	c.f->op_runs_forever = 1;
	c.opts.step_timeout_ms = 300;
	c.opts.flags = AMLOPS_APPLY_ALL;
	assert_int_equal(
	    amlops_apply_prepare(&c.a, c.src, c.commit, &c.f->base, &c.opts),
	    0);
	/* a: create, blue, green, traffic; b: create, blue, traffic */
	assert_int_equal(c.a->plan->nsteps, 7);
	assert_int_equal(
	    amlops_apply_run(c.a, c.src, &c.f->base, &c.opts), AMLOPS_EBACKEND);
	/* the first step of each endpoint ran and timed out; no others */
	assert_int_equal(c.f->ncalls, 2);
	assert_string_equal(c.f->calls[0], "create endpoint ep-a");
	assert_string_equal(c.f->calls[1], "create endpoint ep-b");
	n = stored_note(&c);
	assert_int_equal(n->steps[0].status, AMLOPS_STEP_FAILED);
	assert_string_equal(n->steps[0].error_code, "timeout");
	assert_string_equal(n->steps[0].error_message,
	    "step timed out after 0 s: PUT onlineEndpoints/ep-a still running "
	    "(request id 00000000-0000-0000-0000-000000000001)");
	for (size_t i = 1; i < 4; i++)
		assert_int_equal(n->steps[i].status, AMLOPS_STEP_SKIPPED);
	assert_string_equal(n->steps[4].endpoint, "ep-b");
	assert_int_equal(n->steps[4].status, AMLOPS_STEP_FAILED);
	assert_int_equal(c.a->failed, 2);
	assert_int_equal(c.a->skipped, 5);
	amlops_note_free(n);
	ctx_close(&c);
}

static void
apply__busy_target_times_out_before_planning(void **state)
{
	static const char *const files[] = {"ep/endpoint.yml",
	    EP("ep-e", "  blue: 100\n", DEP("blue", 2)), NULL};
	struct ctx c;

	(void)state;
	ctx_open(&c, files);
	c.f->yaml[0] = c.f->yaml[1] =
	    EP("ep-e", "  blue: 100\n", DEP("blue", 1));
	c.f->dep_state[0][0] = "blue";
	c.f->dep_state[0][1] = "Updating";
	c.opts.step_timeout_ms = 200;
	assert_int_equal(
	    amlops_apply_prepare(&c.a, c.src, c.commit, &c.f->base, &c.opts),
	    AMLOPS_ETIMEOUT);
	assert_null(c.a);
	assert_string_equal(amlops_err_last(),
	    "timed out before planning: deployment 'ep-e/blue' is Updating");
	assert_true(c.f->gets >= 3);
	ctx_close(&c);
}

static void
apply__step_already_live_sends_nothing(void **state)
{
	static const char *const files[] = {"ep/endpoint.yml",
	    EP("ep-e", "  blue: 100\n", DEP("blue", 2)), NULL};
	struct ctx c;
	struct amlops_note *n;
	char applied[41];

	(void)state;
	ctx_open(&c, files);
	/* planned at 1 instance; by the step, another run had scaled it */
	c.f->yaml[0] = EP("ep-e", "  blue: 100\n", DEP("blue", 1));
	c.f->yaml[1] = EP("ep-e", "  blue: 100\n", DEP("blue", 2));
	c.f->switch_after = 1;
	c.f->dep_state[0][0] = "blue";
	c.f->dep_state[0][1] = "Succeeded";
	assert_int_equal(
	    amlops_apply_prepare(&c.a, c.src, c.commit, &c.f->base, &c.opts),
	    0);
	assert_int_equal(c.a->plan->nsteps, 1);
	assert_int_equal(c.a->plan->steps[0].aspect, AMLOPS_ASPECT_SCALE);
	/* older than a second, the planning read does not stand for the step's
	 */
	usleep(1200 * 1000);
	assert_int_equal(amlops_apply_run(c.a, c.src, &c.f->base, &c.opts), 0);
	assert_int_equal(c.f->ncalls, 0);
	assert_int_equal(c.a->already_live, 1);
	n = stored_note(&c);
	assert_int_equal(n->result, AMLOPS_NOTE_SUCCEEDED);
	assert_int_equal(n->steps[0].status, AMLOPS_STEP_SUCCEEDED);
	assert_int_equal(n->nendpoints, 1);
	assert_string_equal(n->endpoints[0].provisioning_state, "Succeeded");
	amlops_note_free(n);
	assert_int_equal(amlops_source_applied_get(applied, c.src, "fake"), 0);
	assert_string_equal(applied, c.commit);

	/* again: nothing to do, the note is left as it is */
	amlops_apply_free(c.a);
	c.a = NULL;
	assert_int_equal(
	    amlops_apply_prepare(&c.a, c.src, c.commit, &c.f->base, &c.opts),
	    0);
	assert_int_equal(c.a->plan->nsteps, 0);
	assert_int_equal(amlops_apply_run(c.a, c.src, &c.f->base, &c.opts), 0);
	n = stored_note(&c);
	assert_int_equal(n->result, AMLOPS_NOTE_SUCCEEDED);
	assert_int_equal(cJSON_GetArraySize(n->attempts), 0);
	amlops_note_free(n);
	ctx_close(&c);
}

static void
apply__interrupted_note_is_kept_in_attempts(void **state)
{
	static const char *const files[] = {"ep/endpoint.yml",
	    EP("ep-e", "  blue: 100\n", DEP("blue", 2)), NULL};
	struct ctx c;
	struct amlops_note *n, *old;

	(void)state;
	ctx_open(&c, files);
	/* a note left "running" by an apply that was killed */
	old = amlops_note_new(c.commit, "fake");
	amlops_note_add_step(old, "ep-e", "blue", "update", "scale")->status =
	    AMLOPS_STEP_RUNNING;
	assert_int_equal(amlops_status_note_write(c.src, NULL, old), 0);
	amlops_note_free(old);

	c.f->yaml[0] = c.f->yaml[1] =
	    EP("ep-e", "  blue: 100\n", DEP("blue", 1));
	c.f->dep_state[0][0] = "blue";
	c.f->dep_state[0][1] = "Succeeded";
	assert_int_equal(
	    amlops_apply_prepare(&c.a, c.src, c.commit, &c.f->base, &c.opts),
	    0);
	assert_int_equal(amlops_apply_run(c.a, c.src, &c.f->base, &c.opts), 0);
	assert_int_equal(c.f->ncalls, 1);
	assert_string_equal(c.f->calls[0], "update scale ep-e/blue");
	/*
	 * Two reads: planning (which, just made, stands for the step's own
	 * read) and the final state (the operation ended at once).
	 */
	assert_int_equal(c.f->gets, 2);
	n = stored_note(&c);
	assert_int_equal(n->result, AMLOPS_NOTE_SUCCEEDED);
	assert_int_equal(cJSON_GetArraySize(n->attempts), 1);
	assert_string_equal(
	    cJSON_GetObjectItem(cJSON_GetArrayItem(n->attempts, 0), "result")
	        ->valuestring,
	    "running");
	amlops_note_free(n);
	ctx_close(&c);
}

static void
apply__repairs_go_before_traffic_and_not_twice(void **state)
{
	static const char *const files[] = {"ep/endpoint.yml",
	    EP("ep-e", "  blue: 50\n  green: 50\n",
	        DEP("blue", 1) DEP("green", 1)),
	    NULL};
	struct ctx c;

	(void)state;
	ctx_open(&c, files);
	/* green failed; blue failed too but is being scaled anyway */
	c.f->yaml[0] = c.f->yaml[1] =
	    EP("ep-e", "  blue: 100\n", DEP("blue", 2) DEP("green", 1));
	c.f->ep_state = "Failed";
	c.f->dep_state[0][0] = "blue";
	c.f->dep_state[0][1] = "Failed";
	c.f->dep_state[1][0] = "green";
	c.f->dep_state[1][1] = "Failed";
	assert_int_equal(
	    amlops_apply_prepare(&c.a, c.src, c.commit, &c.f->base, &c.opts),
	    0);
	assert_int_equal(c.a->plan->nsteps, 4);
	/* endpoint first, then green's repair, then traffic, scale down */
	assert_int_equal(c.a->plan->steps[0].aspect, AMLOPS_ASPECT_ENDPOINT);
	assert_string_equal(c.a->plan->steps[0].reason,
	    "endpoint 'ep-e' is Failed on the target: apply it again");
	assert_string_equal(c.a->plan->steps[1].deployment, "green");
	assert_int_equal(c.a->plan->steps[1].aspect, AMLOPS_ASPECT_DEPLOYMENT);
	assert_int_equal(c.a->plan->steps[2].aspect, AMLOPS_ASPECT_TRAFFIC);
	assert_int_equal(c.a->plan->steps[3].aspect, AMLOPS_ASPECT_SCALE);
	ctx_close(&c);
}

int
main(void)
{
	static const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
	        apply__failed_deployment_is_repaired_then_traffic_refused),
	    cmocka_unit_test(apply__delete_refused_while_traffic_came_back),
	    cmocka_unit_test(
	        apply__traffic_rereads_the_deployments_after_planning),
	    cmocka_unit_test(
	        apply__traffic_step_reads_deployments_then_endpoint_alone),
	    cmocka_unit_test(apply__step_timeout_fails_endpoint_others_go_on),
	    cmocka_unit_test(apply__busy_target_times_out_before_planning),
	    cmocka_unit_test(apply__step_already_live_sends_nothing),
	    cmocka_unit_test(apply__interrupted_note_is_kept_in_attempts),
	    cmocka_unit_test(apply__repairs_go_before_traffic_and_not_twice),
	};

	return cmocka_run_group_tests(tests, NULL, remove_left_repos);
}
