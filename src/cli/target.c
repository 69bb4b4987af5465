/*
 * The target's backend from the global --target and a command's target
 * flags: the local `amlops host`, or Azure with its coordinates from the
 * flags, `.amlops.yml` or the environment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "amlops/backend.h"
#include "amlops/err.h"
#include "amlops/hostinfo.h"
#include "amlops/log.h"
#include "amlops/source.h"
#include "amlops/spec.h"
#include "amlops/util.h"
#include "cli/cli.h"
#include "cli/target.h"

int
cli_target_opt(struct cli_target *t, int ch, const char *arg)
{
	switch (ch) {
	case CLI_TARGET_OPT_HOST_DIR:
		t->host_dir = arg;
		return 1;
	case CLI_TARGET_OPT_SUBSCRIPTION:
		t->subscription_id = arg;
		return 1;
	case CLI_TARGET_OPT_RESOURCE_GROUP:
		t->resource_group = arg;
		return 1;
	case CLI_TARGET_OPT_WORKSPACE:
		t->workspace = arg;
		return 1;
	case CLI_TARGET_OPT_ARM_URL:
		t->arm_url = arg;
		return 1;
	default:
		return 0;
	}
}

/*
 * `.amlops.yml` at HEAD of `repo`; `*out` stays NULL when `repo` is not
 * a git repository or has no commit (the file is optional). A file that
 * does not parse is an error naming its first problem.
 */
static int
repo_config(struct amlops_source_config **out, const char *repo)
{
	struct amlops_source *src = NULL;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	char commit[41];
	int error;

	*out = NULL;
	if (amlops_source_open(&src, repo, NULL) < 0 ||
	    amlops_source_resolve(commit, src, "HEAD") < 0) {
		log_debug("%s: no .amlops.yml from '%s': %s", __func__, repo,
		    amlops_err_last());
		amlops_err_clear();
		error = 0;
		goto done;
	}
	error = amlops_source_config_load(out, &diags, src, commit);
	if (error < 0 && diags.n > 0) {
		char *line;

		amlops_diags_sort(&diags);
		line = amlops_diag_format(&diags.v[0]);
		error = amlops_err_set(error, "%s", line);
		free(line);
	}
done:
	amlops_diags_release(&diags);
	amlops_source_free(src);
	return error;
}

static const char *
first(const char *a, const char *b)
{
	return a && *a ? a : b;
}

int
cli_target_open(struct amlops_backend **out, const struct cli_ctx *ctx,
    const struct cli_target *t)
{
	struct amlops_source_config *cfg = NULL;
	struct amlops_azure_cfg ac;
	int error;

	if (ctx->target == NULL || strcmp(ctx->target, "azure") != 0)
		return amlops_local_new(out, t->host_dir, NULL);
	if ((error = repo_config(&cfg, ctx->repo ? ctx->repo : ".")) < 0)
		return error;
	memset(&ac, 0, sizeof(ac));
	ac.subscription_id =
	    first(t->subscription_id, cfg ? cfg->subscription_id : NULL);
	ac.resource_group =
	    first(t->resource_group, cfg ? cfg->resource_group : NULL);
	ac.workspace = first(t->workspace, cfg ? cfg->workspace : NULL);
	ac.arm_url = first(t->arm_url, cfg ? cfg->arm_url : NULL);
	error = amlops_azure_new(out, &ac);
	amlops_source_config_free(cfg);
	return error;
}

/* Runs `amlops host --detach` on `dir`; 0 when it came up. */
static int
start_host(const char *dir)
{
	char *argv[6];
	pid_t pid;
	int status, i = 0;

	argv[i++] = "amlops";
	argv[i++] = "host";
	argv[i++] = "--detach";
	argv[i++] = "--state-dir";
	argv[i++] = (char *)dir;
	argv[i] = NULL;
	fflush(NULL);
	if ((pid = fork()) < 0)
		return amlops_err_sys(AMLOPS_ERROR, "cannot fork");
	if (pid == 0) {
		/* its "ok URL" line is for people: send it to stderr */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return amlops_err_sys(AMLOPS_ERROR, "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return amlops_err_set(AMLOPS_ERROR,
		    "could not start a local host in '%s' (see %s/host.log)",
		    dir, dir);
	return 0;
}

int
cli_target_ensure_local_host(char **dir, const char *host_dir)
{
	struct amlops_hostinfo *info = NULL;
	const char *env = getenv("AMLOPS_HOST_DIR");
	char *d = NULL;
	int error;

	*dir = NULL;
	if (host_dir == NULL && env && *env)
		host_dir = env;
	if (host_dir)
		d = amlops_xstrdup(host_dir);
	else if ((error = amlops_hostinfo_default_dir(&d)) < 0)
		return error;
	error = amlops_hostinfo_read(&info, d);
	if (error == AMLOPS_ENOTFOUND) {
		amlops_err_clear();
		error = start_host(d);
		/*
		 * Another command may have started one there meanwhile: the
		 * second host refuses the dir, and the first is as good.
		 */
		if (error < 0) {
			char *m = amlops_xstrdup(amlops_err_last());

			if (amlops_hostinfo_read(&info, d) == 0)
				error = 0;
			else
				error = amlops_err_set(error, "%s", m);
			free(m);
		} else {
			error = 1;
		}
	}
	amlops_hostinfo_free(info);
	if (error < 0) {
		free(d);
		return error;
	}
	*dir = d;
	return error;
}
