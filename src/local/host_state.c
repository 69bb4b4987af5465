/*
 * The host's state: one cJSON tree (see host.h), loaded from
 * DIR/state.json at start and written back atomically after every change,
 * and the append-only DIR/operations.log.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/util.h"
#include "local/host.h"

#define STATE_MAX (256u << 20)

void
host_json_set(cJSON *obj, const char *key, cJSON *val)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, key))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, key, val);
	else
		cJSON_AddItemToObject(obj, key, val);
}

void
host_json_set_str(cJSON *obj, const char *key, const char *val)
{
	host_json_set(
	    obj, key, val ? cJSON_CreateString(val) : cJSON_CreateNull());
}

const char *
host_json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *
host_json_strd(const cJSON *obj, const char *key, const char *def)
{
	const char *s = host_json_str(obj, key);

	return s ? s : def;
}

cJSON *
host_json_obj(cJSON *obj, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (cJSON_IsObject(v))
		return v;
	v = cJSON_CreateObject();
	host_json_set(obj, key, v);
	return v;
}

int
host_state_load(struct amlops_host *h)
{
	struct amlops_buf b = AMLOPS_BUF_INIT;
	char *path = amlops_xasprintf("%s/state.json", h->dir);
	cJSON *j = NULL;
	int error;

	error = amlops_file_read(&b, path, STATE_MAX);
	if (error == AMLOPS_ENOTFOUND) {
		amlops_err_clear();
		error = 0;
		j = cJSON_CreateObject();
		cJSON_AddNumberToObject(j, "version", 1);
	} else if (error < 0) {
		goto done;
	} else if (!(j = cJSON_ParseWithLength(b.ptr, b.len)) ||
	           !cJSON_IsObject(j)) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "'%s' is not a JSON object; the state is corrupt", path);
		goto done;
	}
	host_json_obj(j, "workspaces");
	host_json_obj(j, "operations");
	h->state = j;
	j = NULL;
done:
	cJSON_Delete(j);
	amlops_buf_release(&b);
	free(path);
	return error;
}

int
host_state_save(struct amlops_host *h)
{
	char *path = amlops_xasprintf("%s/state.json", h->dir);
	char *text = cJSON_Print(h->state);
	int error;

	error = amlops_file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	free(path);
	return error;
}

cJSON *
host_state_ws_new(const char *sub, const char *rg, const char *ws)
{
	cJSON *w = cJSON_CreateObject();

	cJSON_AddStringToObject(w, "subscription", sub);
	cJSON_AddStringToObject(w, "resourceGroup", rg);
	cJSON_AddStringToObject(w, "workspace", ws);
	cJSON_AddObjectToObject(w, "endpoints");
	cJSON_AddObjectToObject(w, "assets");
	return w;
}

cJSON *
host_state_ws(struct amlops_host *h, const char *sub, const char *rg,
    const char *ws, int create)
{
	cJSON *all = host_json_obj(h->state, "workspaces"), *w;
	char *key = amlops_xasprintf("%s/%s/%s", sub, rg, ws);
	char *p;

	for (p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	w = cJSON_GetObjectItemCaseSensitive(all, key);
	if (!w && create) {
		w = host_state_ws_new(sub, rg, ws);
		cJSON_AddItemToObject(all, key, w);
	}
	free(key);
	return w;
}

cJSON *
host_state_find_endpoint(
    struct amlops_host *h, const char *name, cJSON **ws_out)
{
	cJSON *ws, *ep;

	cJSON_ArrayForEach(ws, cJSON_GetObjectItem(h->state, "workspaces"))
	{
		/* endpoint names are case-insensitive, as in Azure */
		ep = cJSON_GetObjectItem(
		    cJSON_GetObjectItem(ws, "endpoints"), name);
		if (ep) {
			if (ws_out)
				*ws_out = ws;
			return ep;
		}
	}
	return NULL;
}

char *
host_ws_id(const cJSON *ws)
{
	return amlops_xasprintf("/subscriptions/%s/resourceGroups/%s/providers/"
	                        "Microsoft.MachineLearningServices/"
	                        "workspaces/%s",
	    host_json_str(ws, "subscription"),
	    host_json_str(ws, "resourceGroup"), host_json_str(ws, "workspace"));
}

void
host_oplog(struct amlops_host *h, const char *event, const char *method,
    const char *path, const char *resource, int result, const char *op_id,
    const char *status, const char *error, const cJSON *endpoint)
{
	char *file = amlops_xasprintf("%s/operations.log", h->dir);
	cJSON *j = cJSON_CreateObject(), *deps, *dep, *traffic;
	char now[32], *line;
	size_t len;
	int fd;

	amlops_time_rfc3339(now, amlops_wall_ms());
	cJSON_AddStringToObject(j, "time", now);
	cJSON_AddStringToObject(j, "event", event);
	if (method)
		cJSON_AddStringToObject(j, "method", method);
	if (path)
		cJSON_AddStringToObject(j, "path", path);
	if (resource)
		cJSON_AddStringToObject(j, "resource", resource);
	if (result)
		cJSON_AddNumberToObject(j, "result", result);
	if (op_id)
		cJSON_AddStringToObject(j, "operation", op_id);
	if (status)
		cJSON_AddStringToObject(j, "status", status);
	if (error)
		cJSON_AddStringToObject(j, "error", error);
	if (endpoint) {
		traffic = cJSON_GetObjectItem(
		    cJSON_GetObjectItem(
		        cJSON_GetObjectItem(endpoint, "resource"),
		        "properties"),
		    "traffic");
		cJSON_AddItemToObject(j, "traffic",
		    traffic ? cJSON_Duplicate(traffic, 1)
		            : cJSON_CreateObject());
		deps = cJSON_AddObjectToObject(j, "deployments");
		cJSON_ArrayForEach(
		    dep, cJSON_GetObjectItem(endpoint, "deployments"))
		{
			const char *ps = host_json_str(
			    cJSON_GetObjectItem(
			        cJSON_GetObjectItem(dep, "resource"),
			        "properties"),
			    "provisioningState");
			cJSON_AddStringToObject(
			    deps, dep->string, ps ? ps : "Unknown");
		}
	}
	line = cJSON_PrintUnformatted(j);
	len = strlen(line);
	line = amlops_xrealloc(line, len + 2);
	line[len++] = '\n';
	line[len] = '\0';
	fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, len) != (ssize_t)len)
		log_warn("oplog=write-failed file=%s", file);
	if (fd >= 0)
		close(fd);
	free(line);
	cJSON_Delete(j);
	free(file);
}

/* Reads one "<number>[.<fraction>]<unit>" piece. */
static int
duration_piece(const char **s, double *value, char *unit)
{
	char *end;

	if (!isdigit((unsigned char)**s))
		return -1;
	errno = 0;
	*value = strtod(*s, &end);
	if (errno || end == *s || !*end)
		return -1;
	*unit = *end;
	*s = end + 1;
	return 0;
}

int
host_parse_duration_ms(int64_t *out, const char *s)
{
	const char *p = s;
	double v, total = 0;
	int in_time = 0, any = 0;
	char unit;

	if (!s || *p++ != 'P')
		goto bad;
	while (*p) {
		if (*p == 'T') {
			if (in_time)
				goto bad;
			in_time = 1;
			p++;
			continue;
		}
		if (duration_piece(&p, &v, &unit) < 0)
			goto bad;
		if (!in_time && unit == 'D')
			total += v * 86400000.0;
		else if (!in_time && unit == 'W')
			total += v * 7 * 86400000.0;
		else if (in_time && unit == 'H')
			total += v * 3600000.0;
		else if (in_time && unit == 'M')
			total += v * 60000.0;
		else if (in_time && unit == 'S')
			total += v * 1000.0;
		else
			goto bad;
		any = 1;
	}
	if (!any || total > 1e15)
		goto bad;
	*out = (int64_t)(total + 0.5);
	return 0;
bad:
	return amlops_err_set(AMLOPS_EINVALID,
	    "'%s' is not an ISO 8601 duration (expected, for example, 'PT5S' "
	    "or 'PT0.5S')",
	    s ? s : "");
}
