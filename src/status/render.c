/*
 * A note for people: what `amlops status` prints.
 */
#include <stdlib.h>
#include <string.h>

#include "amlops/status.h"
#include "amlops/util.h"

static const char *
orv(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

static int
put_duration(struct amlops_buf *out, int64_t ms)
{
	if (ms < 0)
		return amlops_buf_puts(out, "-");
	if (ms < 1000)
		return amlops_buf_printf(out, "%lldms", (long long)ms);
	if (ms < 60000)
		return amlops_buf_printf(out, "%.1fs", (double)ms / 1000.0);
	return amlops_buf_printf(out, "%lldm%02llds", (long long)(ms / 60000),
	    (long long)(ms % 60000 / 1000));
}

static int
put_traffic(struct amlops_buf *out, const cJSON *traffic)
{
	const cJSON *c;
	int first = 1, error = 0;

	if (!traffic || !traffic->child)
		return amlops_buf_puts(out, "none");
	cJSON_ArrayForEach(c, traffic)
	{
		if (cJSON_IsNumber(c))
			error = amlops_buf_printf(out, "%s%s=%d",
			    first ? "" : " ", c->string, c->valueint);
		else
			error = amlops_buf_printf(
			    out, "%s%s=?", first ? "" : " ", c->string);
		if (error < 0)
			return error;
		first = 0;
	}
	return 0;
}

int
amlops_note_render_text(
    struct amlops_buf *out, const struct amlops_note *n, const char *summary)
{
	size_t i, ok = 0;
	int error;

	if ((error = amlops_buf_printf(out, "commit   %s%s%s\n", n->commit,
	         summary ? "  " : "", summary ? summary : "")) < 0)
		return error;
	if ((error = amlops_buf_printf(
	         out, "target   %s", orv(n->target.name, "?"))) < 0)
		return error;
	if (n->target.url &&
	    (error = amlops_buf_printf(out, " (%s)", n->target.url)) < 0)
		return error;
	if (n->target.workspace &&
	    (error = amlops_buf_printf(out, " workspace %s%s%s",
	         n->target.workspace, n->target.resource_group ? " in " : "",
	         orv(n->target.resource_group, ""))) < 0)
		return error;
	for (i = 0; i < n->nsteps; i++)
		if (n->steps[i].status == AMLOPS_STEP_SUCCEEDED)
			ok++;
	if ((error = amlops_buf_printf(out,
	         "\nresult   %s (%zu of %zu steps succeeded)\n"
	         "started  %s\nfinished %s\n",
	         amlops_note_result_name(n->result), ok, n->nsteps,
	         orv(n->started, "-"), orv(n->finished, "-"))) < 0)
		return error;
	if (n->attempts && cJSON_GetArraySize(n->attempts) > 0 &&
	    (error =
	            amlops_buf_printf(out, "attempts %d earlier, interrupted\n",
	                cJSON_GetArraySize(n->attempts))) < 0)
		return error;
	if (n->nsteps && (error = amlops_buf_puts(out, "\nsteps:\n")) < 0)
		return error;
	for (i = 0; i < n->nsteps; i++) {
		const struct amlops_note_step *s = &n->steps[i];

		if ((error = amlops_buf_printf(out,
		         "  %2d. %-9s  %s%s%s: %s %s  ", s->index,
		         amlops_note_step_status_name(s->status), s->endpoint,
		         s->deployment ? "/" : "",
		         s->deployment ? s->deployment : "", s->action,
		         s->aspect)) < 0 ||
		    (error = put_duration(out, s->ms)) < 0)
			return error;
		if (s->request_id && (error = amlops_buf_printf(out,
		                          "  request %s", s->request_id)) < 0)
			return error;
		if ((error = amlops_buf_putc(out, '\n')) < 0)
			return error;
		if ((s->error_code || s->error_message) &&
		    (error = amlops_buf_printf(out, "      error %s: %s\n",
		         orv(s->error_code, "?"),
		         orv(s->error_message, "(no message)"))) < 0)
			return error;
	}
	if (n->nendpoints &&
	    (error = amlops_buf_puts(out, "\nendpoints:\n")) < 0)
		return error;
	for (i = 0; i < n->nendpoints; i++) {
		const struct amlops_note_endpoint *e = &n->endpoints[i];

		if ((error = amlops_buf_printf(out, "  %s  %s  %s  traffic ",
		         e->name, orv(e->provisioning_state, "-"),
		         orv(e->scoring_uri, "-"))) < 0 ||
		    (error = put_traffic(out, e->traffic)) < 0 ||
		    (error = amlops_buf_putc(out, '\n')) < 0)
			return error;
	}
	return 0;
}
