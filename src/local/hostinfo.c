/*
 * Reading DIR/host.json, for clients of `amlops host`.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "amlops/err.h"
#include "amlops/hostinfo.h"
#include "amlops/util.h"

int
amlops_hostinfo_default_dir(char **out)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (xdg && *xdg == '/') {
		*out = amlops_xasprintf("%s/amlops", xdg);
		return 0;
	}
	if (!home || !*home)
		return amlops_err_set(AMLOPS_EINVALID,
		    "cannot find the state dir: neither XDG_STATE_HOME nor "
		    "HOME is set");
	*out = amlops_xasprintf("%s/.local/state/amlops", home);
	return 0;
}

static char *
dup_field(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsString(v) ? amlops_xstrdup(v->valuestring) : NULL;
}

int
amlops_hostinfo_read(struct amlops_hostinfo **out, const char *dir)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	struct amlops_hostinfo *info = NULL;
	char *def = NULL, *path = NULL;
	cJSON *j = NULL;
	int error;

	if (!dir) {
		if ((error = amlops_hostinfo_default_dir(&def)) < 0)
			goto done;
		dir = def;
	}
	path = amlops_xasprintf("%s/host.json", dir);
	if ((error = amlops_file_read(&b, path, 1 << 16)) < 0) {
		if (error == AMLOPS_ENOTFOUND)
			error = amlops_err_set(AMLOPS_ENOTFOUND,
			    "no amlops host is running on state dir '%s' "
			    "(start one with 'amlops host --state-dir %s')",
			    dir, dir);
		goto done;
	}
	if (!(j = cJSON_ParseWithLength(b.ptr, b.len)) || !cJSON_IsObject(j)) {
		error = amlops_err_set(
		    AMLOPS_EINVALID, "'%s' is not a JSON object", path);
		goto done;
	}
	info = amlops_xcalloc(1, sizeof(*info));
	info->url = dup_field(j, "url");
	info->token = dup_field(j, "token");
	info->scoring_url = dup_field(j, "scoring_url");
	info->state_dir = dup_field(j, "state_dir");
	info->subscription = dup_field(j, "subscription");
	info->resource_group = dup_field(j, "resource_group");
	info->workspace = dup_field(j, "workspace");
	info->pid = (long)cJSON_GetNumberValue(
	    cJSON_GetObjectItemCaseSensitive(j, "pid"));
	if (!info->url || !info->token || info->pid <= 0) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "'%s' lacks 'url', 'token' or 'pid'", path);
		goto done;
	}
	if (kill((pid_t)info->pid, 0) < 0 && errno == ESRCH) {
		error = amlops_err_set(AMLOPS_ENOTFOUND,
		    "the amlops host of state dir '%s' (pid %ld) is not "
		    "running",
		    dir, info->pid);
		goto done;
	}
	*out = info;
	info = NULL;
done:
	amlops_hostinfo_free(info);
	cJSON_Delete(j);
	amlops_buf_release(&b);
	free(path);
	free(def);
	return error;
}

void
amlops_hostinfo_free(struct amlops_hostinfo *info)
{
	if (!info)
		return;
	free(info->url);
	if (info->token)
		memset(info->token, 0, strlen(info->token));
	free(info->token);
	free(info->scoring_url);
	free(info->state_dir);
	free(info->subscription);
	free(info->resource_group);
	free(info->workspace);
	free(info);
}
