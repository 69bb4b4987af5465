/*
 * amlops endpoint: the day-two commands on a target's endpoints, for
 * either target: list, show, invoke, logs, credentials and delete.
 *
 * Errors are the service's own message with its request id (the REST
 * client writes them so); a wrong endpoint or deployment name adds the
 * nearest existing one. Keys and tokens are printed only when asked
 * for, and never logged.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "amlops/backend.h"
#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/rest.h"
#include "amlops/spec.h"
#include "amlops/util.h"
#include "cli/cli.h"
#include "cli/target.h"

#define ENDPOINT_SYNOPSIS                                                      \
	"usage: amlops endpoint list\n"                                        \
	"       amlops endpoint show NAME\n"                                   \
	"       amlops endpoint invoke NAME --request-file FILE "              \
	"[--deployment D]\n"                                                   \
	"       amlops endpoint logs NAME --deployment D [--tail N]\n"         \
	"       amlops endpoint credentials NAME [--show-secrets]\n"           \
	"       amlops endpoint delete NAME [--deployment D] [--yes]\n"

static const char endpoint_short[] =
    ENDPOINT_SYNOPSIS "Run 'amlops endpoint --help' for the flags.\n";

static const char endpoint_usage[] = ENDPOINT_SYNOPSIS
    "\n"
    "The endpoints of the target (global --target, default local: the\n"
    "`amlops host` of --host-dir). Every subcommand prints a table, or\n"
    "JSON with --output json (globally or after the subcommand).\n"
    "\n"
    "  list          every endpoint: auth mode, state, traffic, URI\n"
    "  show          one endpoint: provisioning state, scoring URI,\n"
    "                traffic, mirror traffic and its deployments\n"
    "  invoke        POSTs FILE to the scoring URI (with the endpoint's\n"
    "                key or token) and prints the answer; a status that\n"
    "                is not 2xx is an error showing status and body\n"
    "  logs          the deployment's inference server log\n"
    "  credentials   the endpoint's keys (or token); printed only when\n"
    "                stdout is a terminal or with --show-secrets, and\n"
    "                in JSON only with --show-secrets\n"
    "  delete        the endpoint with its deployments, or one\n"
    "                deployment; one that receives traffic is refused;\n"
    "                asks first on a terminal, else needs --yes\n"
    "\n"
    "  -f, --request-file FILE  invoke: the request body (JSON)\n"
    "  -d, --deployment D       invoke: score with D alone (the\n"
    "                           azureml-model-deployment header);\n"
    "                           logs, delete: the deployment\n"
    "  -n, --tail N             logs: the last N lines (default 100)\n"
    "      --show-secrets       credentials: print the keys or token\n"
    "  -y, --yes                delete: do not ask\n"
    "  -o, --output table|json  as the global flag\n"
    "\n" CLI_TARGET_USAGE;

/* Request bodies and answers are capped at this size. */
#define INVOKE_MAX (64u << 20)
#define TAIL_DEFAULT 100
#define TAIL_MAX 100000

enum sub {
	SUB_LIST,
	SUB_SHOW,
	SUB_INVOKE,
	SUB_LOGS,
	SUB_CREDENTIALS,
	SUB_DELETE,
};

/* Flags, as bits of which subcommand takes which. */
enum flag_bits {
	F_REQUEST_FILE = 1 << 0,
	F_DEPLOYMENT = 1 << 1,
	F_TAIL = 1 << 2,
	F_SHOW_SECRETS = 1 << 3,
	F_YES = 1 << 4,
};

static const struct {
	const char *name;
	enum sub sub;
	unsigned flags; /* enum flag_bits it takes */
	int nargs;      /* positional arguments: the endpoint's name */
} subs[] = {
    {"list", SUB_LIST, 0, 0},
    {"show", SUB_SHOW, 0, 1},
    {"invoke", SUB_INVOKE, F_REQUEST_FILE | F_DEPLOYMENT, 1},
    {"logs", SUB_LOGS, F_DEPLOYMENT | F_TAIL, 1},
    {"credentials", SUB_CREDENTIALS, F_SHOW_SECRETS, 1},
    {"delete", SUB_DELETE, F_DEPLOYMENT | F_YES, 1},
};

struct opts {
	const char *request_file;
	const char *deployment;
	int tail;
	int show_secrets;
	int yes;
	unsigned given; /* enum flag_bits */
};

/* ------------------------------------------------------------------ */
/* Output helpers */

/* A table: a header row, then rows, each of `ncols` owned strings. */
struct table {
	size_t ncols;
	size_t nrows;
	char **cells; /* row-major */
};

static void
table_row(struct table *t, const char *const *cols)
{
	size_t i;

	t->cells = amlops_xrealloc(
	    t->cells, (t->nrows + 1) * t->ncols * sizeof(*t->cells));
	for (i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] =
		    amlops_xstrdup(cols[i] && *cols[i] ? cols[i] : "-");
	t->nrows++;
}

/* Prints the rows in columns two spaces apart; frees the cells. */
static void
table_print(struct table *t, const char *indent)
{
	size_t *w = amlops_xcalloc(t->ncols, sizeof(*w));
	size_t r, c;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);

			if (n > w[c])
				w[c] = n;
		}
	for (r = 0; r < t->nrows; r++) {
		fputs(indent, stdout);
		for (c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];

			if (c + 1 == t->ncols)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)w[c], s);
		}
	}
	for (r = 0; r < t->nrows * t->ncols; r++)
		free(t->cells[r]);
	free(t->cells);
	free(w);
	t->cells = NULL;
	t->nrows = 0;
}

static void
print_json(cJSON *j)
{
	char *s = cJSON_Print(j);

	printf("%s\n", s);
	free(s);
}

/* Writes `len` bytes and a newline unless they end with one. */
static void
print_text(const char *s, size_t len)
{
	fwrite(s, 1, len, stdout);
	if (len == 0 || s[len - 1] != '\n')
		fputc('\n', stdout);
}

/* "blue=90 green=10", or "" for none; malloc'd. */
static char *
traffic_text(const struct amlops_traffic *t, size_t n)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	size_t i;

	amlops_buf_puts(&b, "");
	for (i = 0; i < n; i++)
		amlops_buf_printf(
		    &b, "%s%s=%d", i ? " " : "", t[i].deployment, t[i].percent);
	return amlops_buf_detach(&b);
}

static cJSON *
traffic_json(const struct amlops_traffic *t, size_t n)
{
	cJSON *o = cJSON_CreateObject();
	size_t i;

	for (i = 0; i < n; i++)
		cJSON_AddNumberToObject(o, t[i].deployment, t[i].percent);
	return o;
}

static int
traffic_of(const struct amlops_endpoint *ep, const char *dep, int mirror)
{
	const struct amlops_traffic *t = mirror ? ep->mirror : ep->traffic;
	size_t i, n = mirror ? ep->nmirror : ep->ntraffic;

	for (i = 0; i < n; i++)
		if (strcmp(t[i].deployment, dep) == 0)
			return t[i].percent;
	return 0;
}

static const char *
auth_name(enum amlops_auth_mode m)
{
	return amlops_auth_mode_name(m);
}

static const char *
asset_text(const struct amlops_asset *a)
{
	if (a->kind == AMLOPS_ASSET_NONE)
		return NULL;
	if (a->ref)
		return a->ref;
	return a->path;
}

/* ------------------------------------------------------------------ */
/* Names and hints */

/*
 * Appends " (did you mean 'x'?)" to the current message when one of
 * `names` is close to `name`. Returns `code`.
 */
static int
hint(int code, const char *name, char *const *names, size_t n)
{
	const char *best = NULL;
	/* at most 3 edits, and fewer than a third of the name */
	unsigned cap = strlen(name) / 3 < 3 ? (unsigned)strlen(name) / 3 : 3;
	unsigned bestd = cap + 1, d;
	size_t i;
	char *msg;

	for (i = 0; i < n; i++) {
		d = amlops_levenshtein(name, names[i], cap);
		if (d < bestd) {
			bestd = d;
			best = names[i];
		}
	}
	if (!best)
		return code;
	msg = amlops_xstrdup(amlops_err_last());
	amlops_err_set(code, "%s (did you mean '%s'?)", msg, best);
	free(msg);
	return code;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
free_names(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/*
 * After a 404 on `endpoint` (NULL `deployment`), or on `endpoint` or its
 * `deployment`: names the nearest endpoint, or the nearest deployment
 * when the endpoint exists. The message of the 404 stays; returns
 * `code`.
 */
static int
not_found_hint(int code, struct amlops_backend *b, const char *endpoint,
    const char *deployment)
{
	struct amlops_endpoint *ep = NULL;
	char *msg = amlops_xstrdup(amlops_err_last());
	char **names = NULL;
	size_t n = 0, i;

	if (deployment &&
	    amlops_backend_get_endpoint(b, endpoint, &ep, NULL) == 0) {
		amlops_err_set(code, "%s", msg);
		names = amlops_xcalloc(ep->ndeployments + 1, sizeof(*names));
		for (i = 0; i < ep->ndeployments; i++)
			names[n++] = amlops_xstrdup(ep->deployments[i]->name);
		hint(code, deployment, names, n);
	} else if (amlops_backend_list_endpoints(b, &names, &n) == 0) {
		amlops_err_set(code, "%s", msg);
		hint(code, endpoint, names, n);
	} else {
		amlops_err_set(code, "%s", msg);
	}
	free_names(names, n);
	amlops_endpoint_free(ep);
	free(msg);
	return code;
}

static int
get_endpoint(struct amlops_endpoint **ep, struct amlops_live **live,
    struct amlops_backend *b, const char *name)
{
	int error = amlops_backend_get_endpoint(b, name, ep, live);

	if (error == AMLOPS_ENOTFOUND)
		not_found_hint(error, b, name, NULL);
	return error;
}

/* ------------------------------------------------------------------ */
/* list */

static int
do_list(struct amlops_backend *b, struct cli_ctx *ctx)
{
	struct table t = {5, 0, NULL};
	cJSON *arr = cJSON_CreateArray();
	char **names = NULL;
	size_t n = 0, i;
	int error, rc = EXIT_ERROR;

	if ((error = amlops_backend_list_endpoints(b, &names, &n)) < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_name);
	{
		const char *hdr[] = {
		    "NAME", "AUTH", "STATE", "TRAFFIC", "SCORING URI"};

		table_row(&t, hdr);
	}
	for (i = 0; i < n; i++) {
		struct amlops_endpoint *ep = NULL;
		struct amlops_live *live = NULL;
		char *traffic;
		cJSON *o;

		error = amlops_backend_get_endpoint(b, names[i], &ep, &live);
		if (error == AMLOPS_ENOTFOUND) {
			/* deleted since the list was taken */
			amlops_err_clear();
			continue;
		}
		if (error < 0) {
			rc = cli_error("%s", amlops_err_last());
			goto done;
		}
		traffic = traffic_text(ep->traffic, ep->ntraffic);
		{
			const char *row[] = {ep->name, auth_name(ep->auth_mode),
			    live->provisioning_state, traffic,
			    live->scoring_uri};

			table_row(&t, row);
		}
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", ep->name);
		cJSON_AddStringToObject(
		    o, "authMode", auth_name(ep->auth_mode));
		cJSON_AddStringToObject(o, "provisioningState",
		    live->provisioning_state ? live->provisioning_state : "");
		cJSON_AddStringToObject(o, "scoringUri",
		    live->scoring_uri ? live->scoring_uri : "");
		cJSON_AddItemToObject(
		    o, "traffic", traffic_json(ep->traffic, ep->ntraffic));
		cJSON_AddItemToObject(
		    o, "mirrorTraffic", traffic_json(ep->mirror, ep->nmirror));
		cJSON_AddItemToArray(arr, o);
		free(traffic);
		amlops_endpoint_free(ep);
		amlops_live_free(live);
	}
	if (ctx->output == CLI_OUTPUT_JSON)
		print_json(arr);
	else if (t.nrows == 1)
		printf("no endpoints on target '%s'\n", ctx->target);
	else
		table_print(&t, "");
	rc = EXIT_OK;
done:
	if (t.cells) {
		for (i = 0; i < t.nrows * t.ncols; i++)
			free(t.cells[i]);
		free(t.cells);
	}
	cJSON_Delete(arr);
	free_names(names, n);
	return rc;
}

/* ------------------------------------------------------------------ */
/* show */

static cJSON *
deployment_json(const struct amlops_endpoint *ep,
    const struct amlops_deployment *d, const char *state)
{
	cJSON *o = cJSON_CreateObject();
	const char *s;

	cJSON_AddStringToObject(o, "name", d->name);
	cJSON_AddStringToObject(o, "provisioningState", state ? state : "");
	cJSON_AddNumberToObject(o, "traffic", traffic_of(ep, d->name, 0));
	cJSON_AddNumberToObject(o, "mirrorTraffic", traffic_of(ep, d->name, 1));
	if (d->instance_type)
		cJSON_AddStringToObject(o, "instanceType", d->instance_type);
	cJSON_AddNumberToObject(o, "instanceCount", d->instance_count);
	if ((s = asset_text(&d->model)))
		cJSON_AddStringToObject(o, "model", s);
	if ((s = asset_text(&d->code)))
		cJSON_AddStringToObject(o, "code", s);
	if (d->scoring_script)
		cJSON_AddStringToObject(o, "scoringScript", d->scoring_script);
	if ((s = asset_text(&d->environment.asset)))
		cJSON_AddStringToObject(o, "environment", s);
	return o;
}

static void
print_field(const char *name, const char *value)
{
	printf("%-20s%s\n", name, value && *value ? value : "-");
}

static int
do_show(struct amlops_backend *b, struct cli_ctx *ctx, const char *name)
{
	struct amlops_endpoint *ep = NULL;
	struct amlops_live *live = NULL;
	char *traffic = NULL, *mirror = NULL;
	cJSON *o = NULL, *deps;
	size_t i;
	int rc;

	if (get_endpoint(&ep, &live, b, name) < 0)
		return cli_error("%s", amlops_err_last());
	if (ctx->output == CLI_OUTPUT_JSON) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", ep->name);
		cJSON_AddStringToObject(
		    o, "authMode", auth_name(ep->auth_mode));
		cJSON_AddStringToObject(o, "provisioningState",
		    live->provisioning_state ? live->provisioning_state : "");
		cJSON_AddStringToObject(o, "scoringUri",
		    live->scoring_uri ? live->scoring_uri : "");
		if (live->id)
			cJSON_AddStringToObject(o, "id", live->id);
		if (ep->description)
			cJSON_AddStringToObject(
			    o, "description", ep->description);
		cJSON_AddItemToObject(o, "tags", cJSON_Duplicate(ep->tags, 1));
		cJSON_AddItemToObject(
		    o, "traffic", traffic_json(ep->traffic, ep->ntraffic));
		cJSON_AddItemToObject(
		    o, "mirrorTraffic", traffic_json(ep->mirror, ep->nmirror));
		deps = cJSON_AddArrayToObject(o, "deployments");
		for (i = 0; i < ep->ndeployments; i++)
			cJSON_AddItemToArray(
			    deps, deployment_json(ep, ep->deployments[i],
			              amlops_live_deployment_state(
			                  live, ep->deployments[i]->name)));
		print_json(o);
		rc = EXIT_OK;
		goto done;
	}
	traffic = traffic_text(ep->traffic, ep->ntraffic);
	mirror = traffic_text(ep->mirror, ep->nmirror);
	print_field("name:", ep->name);
	print_field("auth mode:", auth_name(ep->auth_mode));
	print_field("provisioning state:", live->provisioning_state);
	print_field("scoring uri:", live->scoring_uri);
	print_field("traffic:", traffic);
	print_field("mirror traffic:", mirror);
	if (ep->description)
		print_field("description:", ep->description);
	if (cJSON_GetArraySize(ep->tags) > 0) {
		const cJSON *tag;

		printf("%-20s", "tags:");
		cJSON_ArrayForEach(tag, ep->tags)
		{
			printf("%s%s=%s", tag == ep->tags->child ? "" : " ",
			    tag->string,
			    cJSON_IsString(tag) ? tag->valuestring : "?");
		}
		printf("\n");
	}
	if (ep->ndeployments == 0) {
		print_field("deployments:", "none");
	} else {
		struct table t = {8, 0, NULL};
		const char *hdr[] = {"NAME", "STATE", "TRAFFIC", "INSTANCES",
		    "INSTANCE TYPE", "MODEL", "CODE", "ENVIRONMENT"};

		printf("deployments:\n");
		table_row(&t, hdr);
		for (i = 0; i < ep->ndeployments; i++) {
			const struct amlops_deployment *d = ep->deployments[i];
			int tr = traffic_of(ep, d->name, 0);
			int mi = traffic_of(ep, d->name, 1);
			char pct[48], count[16];
			const char *row[8];

			if (mi > 0)
				snprintf(pct, sizeof(pct), "%d%% (mirror %d%%)",
				    tr, mi);
			else
				snprintf(pct, sizeof(pct), "%d%%", tr);
			snprintf(count, sizeof(count), "%d", d->instance_count);
			row[0] = d->name;
			row[1] = amlops_live_deployment_state(live, d->name);
			row[2] = pct;
			row[3] = count;
			row[4] = d->instance_type;
			row[5] = asset_text(&d->model);
			row[6] = asset_text(&d->code);
			row[7] = asset_text(&d->environment.asset);
			table_row(&t, row);
		}
		table_print(&t, "  ");
	}
	rc = EXIT_OK;
done:
	cJSON_Delete(o);
	free(traffic);
	free(mirror);
	amlops_endpoint_free(ep);
	amlops_live_free(live);
	return rc;
}

/* ------------------------------------------------------------------ */
/* invoke */

static int
do_invoke(struct amlops_backend *b, struct cli_ctx *ctx, const char *name,
    const struct opts *o, const struct amlops_buf *body)
{
	struct amlops_buf out = AMLOPS_BUF_INIT;
	long status = 0;
	int error, rc = EXIT_ERROR;
	char *text = NULL;

	amlops_buf_init(&out, INVOKE_MAX);
	error = amlops_backend_invoke(b, name, o->deployment,
	    body->ptr ? body->ptr : "", body->len, &out, &status);
	if (error == AMLOPS_ENOTFOUND)
		not_found_hint(error, b, name, NULL);
	if (error < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	log_debug("%s: endpoint=%s status=%ld bytes=%zu", __func__, name,
	    status, out.len);
	if (status < 200 || status > 299) {
		const char *reason = amlops_http_reason(status);

		text = amlops_rest_error_text(amlops_buf_cstr(&out), out.len);
		rc = cli_error("invoke '%s'%s%s%s: the scoring URI answered "
		               "%ld%s%s: %s",
		    name, o->deployment ? " (deployment '" : "",
		    o->deployment ? o->deployment : "",
		    o->deployment ? "')" : "", status, *reason ? " " : "",
		    reason, *text ? text : "(empty body)");
		goto done;
	}
	if (ctx->output == CLI_OUTPUT_JSON) {
		cJSON *j =
		    cJSON_ParseWithLength(out.ptr ? out.ptr : "", out.len);

		if (j == NULL)
			j = cJSON_CreateString(amlops_buf_cstr(&out));
		print_json(j);
		cJSON_Delete(j);
	} else {
		print_text(amlops_buf_cstr(&out), out.len);
	}
	rc = EXIT_OK;
done:
	free(text);
	amlops_buf_release(&out);
	return rc;
}

/* ------------------------------------------------------------------ */
/* logs */

static int
do_logs(struct amlops_backend *b, struct cli_ctx *ctx, const char *name,
    const struct opts *o)
{
	char *text = NULL;
	int error;

	error = amlops_backend_logs(b, name, o->deployment, o->tail, &text);
	if (error == AMLOPS_ENOTFOUND)
		not_found_hint(error, b, name, o->deployment);
	if (error < 0)
		return cli_error("%s", amlops_err_last());
	if (ctx->output == CLI_OUTPUT_JSON) {
		cJSON *j = cJSON_CreateObject();

		cJSON_AddStringToObject(j, "endpoint", name);
		cJSON_AddStringToObject(j, "deployment", o->deployment);
		cJSON_AddStringToObject(j, "content", text);
		print_json(j);
		cJSON_Delete(j);
	} else if (*text) {
		print_text(text, strlen(text));
	}
	free(text);
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* credentials */

static void
wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int
do_credentials(struct amlops_backend *b, struct cli_ctx *ctx, const char *name,
    const struct opts *o)
{
	struct amlops_endpoint *ep = NULL;
	char *primary = NULL, *secondary = NULL, *token = NULL;
	int64_t expiry = 0;
	int json = ctx->output == CLI_OUTPUT_JSON, show, error;
	int rc = EXIT_ERROR;
	cJSON *j = NULL;
	enum amlops_auth_mode mode;

	if (get_endpoint(&ep, NULL, b, name) < 0)
		return cli_error("%s", amlops_err_last());
	mode = ep->auth_mode;
	/* JSON carries secrets only when asked; a table on a terminal */
	show = o->show_secrets || (!json && isatty(STDOUT_FILENO));
	if (mode == AMLOPS_AUTH_AAD_TOKEN) {
		static const char aad[] = "az account get-access-token "
		                          "--resource https://ml.azure.com";

		if (json) {
			j = cJSON_CreateObject();
			cJSON_AddStringToObject(j, "name", name);
			cJSON_AddStringToObject(j, "authMode", auth_name(mode));
			cJSON_AddStringToObject(j, "howTo", aad);
			print_json(j);
		} else {
			printf("endpoint '%s' takes Microsoft Entra (Azure AD) "
			       "tokens, not keys: get one with '%s'\n",
			    name, aad);
		}
		rc = EXIT_OK;
		goto done;
	}
	if (!show) {
		const char *what =
		    mode == AMLOPS_AUTH_KEY ? "keys are" : "token is";

		if (json) {
			j = cJSON_CreateObject();
			cJSON_AddStringToObject(j, "name", name);
			cJSON_AddStringToObject(j, "authMode", auth_name(mode));
			cJSON_AddBoolToObject(j, "secretsShown", 0);
			print_json(j);
		} else {
			printf("endpoint '%s' uses %s authentication; its %s "
			       "printed on a terminal or with "
			       "'amlops endpoint credentials %s "
			       "--show-secrets'\n",
			    name, auth_name(mode), what, name);
		}
		rc = EXIT_OK;
		goto done;
	}
	if (mode == AMLOPS_AUTH_KEY)
		error = amlops_backend_keys(b, name, &primary, &secondary);
	else
		error = amlops_backend_token(b, name, &token, &expiry);
	if (error < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	if (json) {
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "name", name);
		cJSON_AddStringToObject(j, "authMode", auth_name(mode));
		cJSON_AddBoolToObject(j, "secretsShown", 1);
		if (mode == AMLOPS_AUTH_KEY) {
			cJSON_AddStringToObject(
			    j, "primaryKey", primary ? primary : "");
			cJSON_AddStringToObject(
			    j, "secondaryKey", secondary ? secondary : "");
		} else {
			char when[32];

			amlops_time_rfc3339(when, expiry);
			cJSON_AddStringToObject(j, "accessToken", token);
			cJSON_AddStringToObject(
			    j, "expiryTimeUtc", expiry > 0 ? when : "");
		}
		{
			char *s = cJSON_Print(j);

			printf("%s\n", s);
			explicit_bzero(s, strlen(s));
			free(s);
		}
	} else if (mode == AMLOPS_AUTH_KEY) {
		print_field("primary key:", primary);
		print_field("secondary key:", secondary);
	} else {
		char when[32];

		amlops_time_rfc3339(when, expiry);
		print_field("access token:", token);
		print_field("expires:", expiry > 0 ? when : NULL);
	}
	rc = EXIT_OK;
done:
	if (j && (primary || token)) {
		/* the printed copy is gone; wipe the tree's strings too */
		cJSON *v;

		cJSON_ArrayForEach(v, j)
		{
			if (cJSON_IsString(v))
				explicit_bzero(
				    v->valuestring, strlen(v->valuestring));
		}
	}
	cJSON_Delete(j);
	wipe(primary);
	wipe(secondary);
	wipe(token);
	amlops_endpoint_free(ep);
	return rc;
}

/* ------------------------------------------------------------------ */
/* delete */

/*
 * Asks on the terminal; 1 for yes. Without a terminal (and without
 * --yes) nothing is deleted.
 */
static int
confirm(const char *question)
{
	char *line = NULL;
	size_t cap = 0;
	int yes = 0;

	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (getline(&line, &cap, stdin) > 0)
		yes = strcmp(line, "y\n") == 0 || strcmp(line, "yes\n") == 0 ||
		      strcmp(line, "Y\n") == 0;
	free(line);
	return yes;
}

static int
do_delete(struct amlops_backend *b, struct cli_ctx *ctx, const char *name,
    const struct opts *o)
{
	struct amlops_endpoint *ep = NULL;
	struct amlops_op *op = NULL;
	char *what = NULL, *question = NULL;
	int error, rc = EXIT_ERROR;

	if (get_endpoint(&ep, NULL, b, name) < 0)
		return cli_error("%s", amlops_err_last());
	if (o->deployment) {
		int tr, mi;

		if (!amlops_endpoint_deployment(ep, o->deployment)) {
			char **names = amlops_xcalloc(
			    ep->ndeployments + 1, sizeof(*names));
			struct amlops_buf list = AMLOPS_BUF_INIT;
			size_t i;

			for (i = 0; i < ep->ndeployments; i++) {
				names[i] =
				    amlops_xstrdup(ep->deployments[i]->name);
				amlops_buf_printf(
				    &list, "%s'%s'", i ? ", " : "", names[i]);
			}
			amlops_err_set(AMLOPS_ENOTFOUND,
			    "endpoint '%s' has no deployment '%s' (it has %s)",
			    name, o->deployment,
			    ep->ndeployments ? amlops_buf_cstr(&list) : "none");
			hint(AMLOPS_ENOTFOUND, o->deployment, names,
			    ep->ndeployments);
			free_names(names, ep->ndeployments);
			amlops_buf_release(&list);
			rc =
			    cli_error("%s; nothing deleted", amlops_err_last());
			goto done;
		}
		tr = traffic_of(ep, o->deployment, 0);
		mi = traffic_of(ep, o->deployment, 1);
		if (tr > 0 || mi > 0) {
			rc = cli_error("deployment '%s' receives %d%% of "
			               "endpoint '%s''s %s; move it to another "
			               "deployment first; nothing deleted",
			    o->deployment, tr > 0 ? tr : mi, name,
			    tr > 0 ? "traffic" : "mirror traffic");
			goto done;
		}
		what = amlops_xasprintf(
		    "deployment '%s' of endpoint '%s'", o->deployment, name);
	} else if (ep->ndeployments) {
		what = amlops_xasprintf(
		    "endpoint '%s' and its %zu deployment%s", name,
		    ep->ndeployments, ep->ndeployments == 1 ? "" : "s");
	} else {
		what = amlops_xasprintf("endpoint '%s'", name);
	}
	if (!o->yes) {
		if (!isatty(STDIN_FILENO)) {
			rc = cli_error("refusing to delete %s without "
			               "confirmation: stdin is not a terminal "
			               "(pass --yes)",
			    what);
			goto done;
		}
		question = amlops_xasprintf("delete %s?", what);
		if (!confirm(question)) {
			rc = cli_error("nothing deleted");
			goto done;
		}
	}
	if (o->deployment)
		error = amlops_backend_delete_deployment(
		    b, name, o->deployment, &op);
	else
		error = amlops_backend_delete_endpoint(b, name, &op);
	if (error == 0 && op)
		error = amlops_backend_wait_op(b, op);
	if (error < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	log_debug("%s: deleted=\"%s\" request_id=%s", __func__, what,
	    op ? op->request_id : "");
	if (ctx->output == CLI_OUTPUT_JSON) {
		cJSON *j = cJSON_CreateObject();

		cJSON_AddStringToObject(j, "endpoint", name);
		if (o->deployment)
			cJSON_AddStringToObject(j, "deployment", o->deployment);
		cJSON_AddBoolToObject(j, "deleted", 1);
		cJSON_AddStringToObject(
		    j, "requestId", op ? op->request_id : "");
		print_json(j);
		cJSON_Delete(j);
	} else {
		printf("deleted %s\n", what);
	}
	rc = EXIT_OK;
done:
	amlops_op_free(op);
	free(what);
	free(question);
	amlops_endpoint_free(ep);
	return rc;
}

/* ------------------------------------------------------------------ */

static int
parse_tail(int *out, const char *s)
{
	char *end;
	long v;

	v = strtol(s, &end, 10);
	if (!*s || *end || v < 1 || v > TAIL_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

static const char *
flag_name(unsigned bit)
{
	switch (bit) {
	case F_REQUEST_FILE:
		return "--request-file";
	case F_DEPLOYMENT:
		return "--deployment";
	case F_TAIL:
		return "--tail";
	case F_SHOW_SECRETS:
		return "--show-secrets";
	default:
		return "--yes";
	}
}

int
cmd_endpoint(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option longopts[] = {
	    {"request-file", required_argument, NULL, 'f'},
	    {"deployment", required_argument, NULL, 'd'},
	    {"tail", required_argument, NULL, 'n'},
	    {"show-secrets", no_argument, NULL, 'S'},
	    {"yes", no_argument, NULL, 'y'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    CLI_TARGET_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	struct cli_target target = CLI_TARGET_INIT;
	struct opts o = {NULL, NULL, TAIL_DEFAULT, 0, 0, 0};
	struct amlops_backend *b = NULL;
	struct amlops_buf body = AMLOPS_BUF_INIT;
	const char *name = NULL;
	char why[160];
	size_t s, i;
	int ch, rc = EXIT_ERROR;

	if (argc < 2) {
		fputs(endpoint_short, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		fputs(endpoint_usage, stdout);
		return EXIT_OK;
	}
	for (s = 0; s < AMLOPS_ARRAY_SIZE(subs); s++)
		if (!strcmp(subs[s].name, argv[1]))
			break;
	if (s == AMLOPS_ARRAY_SIZE(subs))
		return cli_usage_error(endpoint_short,
		    "endpoint: unknown subcommand '%s' (expected list, show, "
		    "invoke, logs, credentials or delete)",
		    argv[1]);

	argc--;
	argv++;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":f:d:n:yo:h", longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'f':
			o.request_file = optarg;
			o.given |= F_REQUEST_FILE;
			break;
		case 'd':
			o.deployment = optarg;
			o.given |= F_DEPLOYMENT;
			break;
		case 'n':
			if (parse_tail(&o.tail, optarg) < 0)
				return cli_usage_error(endpoint_short,
				    "endpoint logs: --tail '%s' is not a "
				    "number from 1 to %d",
				    optarg, TAIL_MAX);
			o.given |= F_TAIL;
			break;
		case 'S':
			o.show_secrets = 1;
			o.given |= F_SHOW_SECRETS;
			break;
		case 'y':
			o.yes = 1;
			o.given |= F_YES;
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				ctx->output = CLI_OUTPUT_JSON;
			else if (!strcmp(optarg, "table"))
				ctx->output = CLI_OUTPUT_TABLE;
			else
				return cli_usage_error(endpoint_short,
				    "endpoint %s: unknown output '%s' "
				    "(expected 'table' or 'json')",
				    subs[s].name, optarg);
			break;
		case 'h':
			fputs(endpoint_usage, stdout);
			return EXIT_OK;
		case ':':
			return cli_usage_error(endpoint_short,
			    "endpoint %s: '%s' needs a value", subs[s].name,
			    argv[optind - 1]);
		case '?':
			return cli_usage_error(endpoint_short,
			    "endpoint %s: unknown flag '%s'", subs[s].name,
			    argv[optind - 1]);
		default:
			if (cli_target_opt(&target, ch, optarg))
				break;
			return cli_usage_error(endpoint_short,
			    "endpoint %s: unknown flag '%s'", subs[s].name,
			    argv[optind - 1]);
		}
	}
	for (i = 0; i < 5; i++) {
		unsigned bit = 1u << i;

		if ((o.given & bit) && !(subs[s].flags & bit))
			return cli_usage_error(endpoint_short,
			    "endpoint %s: %s is not a flag of '%s'",
			    subs[s].name, flag_name(bit), subs[s].name);
	}
	if (argc - optind < subs[s].nargs)
		return cli_usage_error(endpoint_short,
		    "endpoint %s: the endpoint's NAME is missing",
		    subs[s].name);
	if (argc - optind > subs[s].nargs)
		return cli_usage_error(endpoint_short,
		    "endpoint %s: unexpected argument '%s'", subs[s].name,
		    argv[optind + subs[s].nargs]);
	if (subs[s].nargs) {
		name = argv[optind];
		if (!amlops_spec_endpoint_name_ok(name, why, sizeof(why)))
			return cli_usage_error(endpoint_short,
			    "endpoint %s: endpoint name '%s' breaks Azure's "
			    "naming rules: %s",
			    subs[s].name, name, why);
	}
	if (o.deployment &&
	    !amlops_spec_deployment_name_ok(o.deployment, why, sizeof(why)))
		return cli_usage_error(endpoint_short,
		    "endpoint %s: deployment name '%s' breaks Azure's naming "
		    "rules: %s",
		    subs[s].name, o.deployment, why);
	if (subs[s].sub == SUB_INVOKE && !o.request_file)
		return cli_usage_error(endpoint_short,
		    "endpoint invoke: --request-file FILE is required");
	if (subs[s].sub == SUB_LOGS && !o.deployment)
		return cli_usage_error(endpoint_short,
		    "endpoint logs: --deployment D is required");

	/* The request is read first: a file that is not there sends nothing */
	if (o.request_file &&
	    amlops_file_read(&body, o.request_file, INVOKE_MAX) < 0) {
		rc = cli_error("request file: %s", amlops_err_last());
		goto done;
	}
	if (cli_target_open(&b, ctx, &target) < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	switch (subs[s].sub) {
	case SUB_LIST:
		rc = do_list(b, ctx);
		break;
	case SUB_SHOW:
		rc = do_show(b, ctx, name);
		break;
	case SUB_INVOKE:
		rc = do_invoke(b, ctx, name, &o, &body);
		break;
	case SUB_LOGS:
		rc = do_logs(b, ctx, name, &o);
		break;
	case SUB_CREDENTIALS:
		rc = do_credentials(b, ctx, name, &o);
		break;
	case SUB_DELETE:
		rc = do_delete(b, ctx, name, &o);
		break;
	}
done:
	amlops_buf_release(&body);
	amlops_backend_free(b);
	return rc;
}
