/*
 * The plan for people and programs: text for a terminal, the stable JSON
 * format, and a Markdown pull-request comment.
 */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/err.h"
#include "amlops/plan.h"
#include "amlops/util.h"
#include "plan/plan_int.h"

#define J amlops_plan_jnn
#define JOK AMLOPS_PLAN_JOK

#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_RED "\033[31m"
#define C_BOLDRED "\033[1;31m"
#define C_RESET "\033[0m"

int
amlops_plan_value_text(struct amlops_buf *b, const cJSON *v, int traffic)
{
	char *s;
	int error;

	if (!v || cJSON_IsNull(v))
		return amlops_buf_puts(b, "(none)");
	if (cJSON_IsString(v))
		return amlops_buf_puts(b, v->valuestring);
	if (cJSON_IsNumber(v))
		return amlops_buf_printf(b, "%g", v->valuedouble);
	if (traffic && cJSON_IsObject(v)) {
		const cJSON *e;
		int first = 1;

		if (!v->child)
			return amlops_buf_puts(b, "(none)");
		cJSON_ArrayForEach(e, v)
		{
			if ((error = amlops_buf_printf(b, "%s%s=%g",
			         first ? "" : ", ", e->string,
			         e->valuedouble)) < 0)
				return error;
			first = 0;
		}
		return 0;
	}
	s = cJSON_PrintUnformatted(v);
	if (!s)
		J(NULL);
	error = amlops_buf_puts(b, s);
	cJSON_free(s);
	return error;
}

cJSON *
amlops_plan_step_to_json(const struct amlops_step *s)
{
	cJSON *o = J(cJSON_CreateObject());

	J(cJSON_AddStringToObject(o, "endpoint", s->endpoint));
	if (s->deployment)
		J(cJSON_AddStringToObject(o, "deployment", s->deployment));
	else
		J(cJSON_AddNullToObject(o, "deployment"));
	J(cJSON_AddStringToObject(
	    o, "action", amlops_plan_action_name(s->action)));
	J(cJSON_AddStringToObject(
	    o, "aspect", amlops_plan_aspect_name(s->aspect)));
	JOK(cJSON_AddItemToObject(o, "before",
	    s->before ? J(cJSON_Duplicate(s->before, 1))
	              : J(cJSON_CreateNull())));
	JOK(cJSON_AddItemToObject(o, "after",
	    s->after ? J(cJSON_Duplicate(s->after, 1))
	             : J(cJSON_CreateNull())));
	J(cJSON_AddStringToObject(o, "reason", s->reason ? s->reason : ""));
	return o;
}

static cJSON *
msgs_json(const struct amlops_plan_msg *m, size_t n)
{
	cJSON *a = J(cJSON_CreateArray());
	size_t i;

	for (i = 0; i < n; i++) {
		cJSON *o = J(cJSON_CreateObject());

		J(cJSON_AddStringToObject(o, "endpoint", m[i].endpoint));
		if (m[i].deployment)
			J(cJSON_AddStringToObject(
			    o, "deployment", m[i].deployment));
		else
			J(cJSON_AddNullToObject(o, "deployment"));
		J(cJSON_AddStringToObject(o, "message", m[i].msg));
		if (m[i].file) {
			char *loc = amlops_xasprintf(
			    "%s:%u:%u", m[i].file, m[i].line, m[i].col);

			J(cJSON_AddStringToObject(o, "location", loc));
			free(loc);
		} else {
			J(cJSON_AddNullToObject(o, "location"));
		}
		JOK(cJSON_AddItemToArray(a, o));
	}
	return a;
}

cJSON *
amlops_plan_to_json(
    const struct amlops_plan *plan, const char *base, const char *head)
{
	cJSON *o = J(cJSON_CreateObject());
	cJSON *steps, *sum;
	struct amlops_plan_summary n;
	size_t i;

	amlops_plan_summary(&n, plan);
	if (base)
		J(cJSON_AddStringToObject(o, "base", base));
	else
		J(cJSON_AddNullToObject(o, "base"));
	if (head)
		J(cJSON_AddStringToObject(o, "head", head));
	else
		J(cJSON_AddNullToObject(o, "head"));
	steps = J(cJSON_AddArrayToObject(o, "steps"));
	for (i = 0; i < plan->nsteps; i++)
		JOK(cJSON_AddItemToArray(
		    steps, amlops_plan_step_to_json(&plan->steps[i])));
	sum = J(cJSON_AddObjectToObject(o, "summary"));
	J(cJSON_AddNumberToObject(sum, "create", (double)n.create));
	J(cJSON_AddNumberToObject(sum, "update", (double)n.update));
	J(cJSON_AddNumberToObject(sum, "delete", (double)n.delete));
	JOK(cJSON_AddItemToObject(
	    o, "refused", msgs_json(plan->refusals, plan->nrefusals)));
	JOK(cJSON_AddItemToObject(
	    o, "notes", msgs_json(plan->notes, plan->nnotes)));
	return o;
}

/*
 * The json renderer writes straight into the buffer, byte for byte what
 * cJSON_Print(amlops_plan_to_json()) gives (tests/unit/test_plan.c
 * compares the two), without building and freeing a tree of the whole
 * plan: a full plan of 10,000 endpoints has 40,000 steps.
 */
struct jw {
	struct amlops_buf *b;
	int error; /* the first failure; later writes do nothing */
};

static void
jw_add(struct jw *w, const char *s, size_t len)
{
	struct amlops_buf *b = w->b;

	/* in place when it fits under both the allocation and the cap */
	if (w->error == 0 && b->len + len < b->cap &&
	    (!b->max || b->len + len <= b->max)) {
		memcpy(b->ptr + b->len, s, len);
		b->len += len;
		b->ptr[b->len] = '\0';
	} else if (w->error == 0) {
		w->error = amlops_buf_add(b, s, len);
	}
}

#define JW_LIT(w, lit) jw_add((w), (lit), sizeof(lit) - 1)

static void
jw_tabs(struct jw *w, size_t depth)
{
	static const char tabs[] = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t";

	while (depth > sizeof(tabs) - 1) {
		jw_add(w, tabs, sizeof(tabs) - 1);
		depth -= sizeof(tabs) - 1;
	}
	jw_add(w, tabs, depth);
}

/* The bytes a JSON string escapes (and NUL, its end), as cJSON does. */
static const unsigned char jw_escaped[256] = {
    [0 ... 31] = 1,
    ['"'] = 1,
    ['\\'] = 1,
};

/* A JSON string as cJSON escapes it: '"', '\\' and bytes below 32. */
static void
jw_str(struct jw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : ""), *run;
	char esc[8];

	JW_LIT(w, "\"");
	for (run = p;; p++) {
		if (!jw_escaped[*p])
			continue;
		jw_add(w, (const char *)run, (size_t)(p - run));
		if (*p == '\0')
			break;
		run = p + 1;
		switch (*p) {
		case '"':
			JW_LIT(w, "\\\"");
			break;
		case '\\':
			JW_LIT(w, "\\\\");
			break;
		case '\b':
			JW_LIT(w, "\\b");
			break;
		case '\f':
			JW_LIT(w, "\\f");
			break;
		case '\n':
			JW_LIT(w, "\\n");
			break;
		case '\r':
			JW_LIT(w, "\\r");
			break;
		case '\t':
			JW_LIT(w, "\\t");
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			jw_add(w, esc, 6);
			break;
		}
	}
	JW_LIT(w, "\"");
}

/* A number as cJSON prints it (print_number() in cJSON.c). */
static void
jw_num(struct jw *w, const cJSON *v)
{
	char num[32], *dot;
	double d = v->valuedouble, back;
	int n;

	if (isnan(d) || isinf(d)) {
		n = snprintf(num, sizeof(num), "null");
	} else if (d == floor(d) && fabs(d) < 1e15 && !signbit(d)) {
		/* what %1.15g gives for these, without the round trip */
		n = snprintf(num, sizeof(num), "%lld", (long long)d);
	} else {
		n = snprintf(num, sizeof(num), "%1.15g", d);
		if (sscanf(num, "%lg", &back) != 1 ||
		    fabs(back - d) >
		        (fabs(back) > fabs(d) ? fabs(back) : fabs(d)) *
		            DBL_EPSILON)
			n = snprintf(num, sizeof(num), "%1.17g", d);
	}
	if ((dot = strchr(num, localeconv()->decimal_point[0])) &&
	    localeconv()->decimal_point[0] != '.')
		*dot = '.';
	jw_add(w, num, (size_t)n);
}

/* `v` pretty-printed as cJSON_Print() does, its container at `depth`. */
static void
jw_value(struct jw *w, const cJSON *v, size_t depth)
{
	const cJSON *e;

	if (!v) {
		JW_LIT(w, "null");
		return;
	}
	switch (v->type & 0xff) {
	case cJSON_NULL:
		JW_LIT(w, "null");
		break;
	case cJSON_False:
		JW_LIT(w, "false");
		break;
	case cJSON_True:
		JW_LIT(w, "true");
		break;
	case cJSON_Number:
		jw_num(w, v);
		break;
	case cJSON_Raw:
		if (v->valuestring)
			jw_add(w, v->valuestring, strlen(v->valuestring));
		else if (w->error == 0)
			w->error = amlops_err_set(
			    AMLOPS_ERROR, "cannot render a raw JSON value");
		break;
	case cJSON_String:
		jw_str(w, v->valuestring);
		break;
	case cJSON_Array:
		JW_LIT(w, "[");
		for (e = v->child; e; e = e->next) {
			jw_value(w, e, depth + 1);
			if (e->next)
				JW_LIT(w, ", ");
		}
		JW_LIT(w, "]");
		break;
	case cJSON_Object:
		JW_LIT(w, "{\n");
		for (e = v->child; e; e = e->next) {
			jw_tabs(w, depth + 1);
			jw_str(w, e->string);
			JW_LIT(w, ":\t");
			jw_value(w, e, depth + 1);
			if (e->next)
				JW_LIT(w, ",\n");
			else
				JW_LIT(w, "\n");
		}
		jw_tabs(w, depth);
		JW_LIT(w, "}");
		break;
	default:
		if (w->error == 0)
			w->error = amlops_err_set(
			    AMLOPS_ERROR, "cannot render a JSON value");
		break;
	}
}

/* "key":\tvalue at `depth`, the value a string or null. */
static void
jw_key_str(struct jw *w, size_t depth, const char *key, const char *val)
{
	jw_tabs(w, depth);
	jw_str(w, key);
	JW_LIT(w, ":\t");
	if (val)
		jw_str(w, val);
	else
		JW_LIT(w, "null");
}

static void
jw_step(struct jw *w, const struct amlops_step *s)
{
	/* the step object sits in the steps array, itself at depth 1 */
	JW_LIT(w, "{\n");
	jw_key_str(w, 3, "endpoint", s->endpoint);
	JW_LIT(w, ",\n");
	jw_key_str(w, 3, "deployment", s->deployment);
	JW_LIT(w, ",\n");
	jw_key_str(w, 3, "action", amlops_plan_action_name(s->action));
	JW_LIT(w, ",\n");
	jw_key_str(w, 3, "aspect", amlops_plan_aspect_name(s->aspect));
	JW_LIT(w, ",\n\t\t\t\"before\":\t");
	jw_value(w, s->before, 3);
	JW_LIT(w, ",\n\t\t\t\"after\":\t");
	jw_value(w, s->after, 3);
	JW_LIT(w, ",\n");
	jw_key_str(w, 3, "reason", s->reason ? s->reason : "");
	JW_LIT(w, "\n\t\t}");
}

static void
jw_msgs(struct jw *w, const struct amlops_plan_msg *m, size_t n)
{
	size_t i;

	JW_LIT(w, "[");
	for (i = 0; i < n; i++) {
		char *loc = m[i].file ? amlops_xasprintf("%s:%u:%u", m[i].file,
		                            m[i].line, m[i].col)
		                      : NULL;

		JW_LIT(w, "{\n");
		jw_key_str(w, 3, "endpoint", m[i].endpoint);
		JW_LIT(w, ",\n");
		jw_key_str(w, 3, "deployment", m[i].deployment);
		JW_LIT(w, ",\n");
		jw_key_str(w, 3, "message", m[i].msg);
		JW_LIT(w, ",\n");
		jw_key_str(w, 3, "location", loc);
		JW_LIT(w, "\n\t\t}");
		if (i + 1 < n)
			JW_LIT(w, ", ");
		free(loc);
	}
	JW_LIT(w, "]");
}

int
amlops_plan_render_json(struct amlops_buf *out, const struct amlops_plan *plan,
    const char *base, const char *head)
{
	struct jw w = {out, 0};
	struct amlops_plan_summary n;
	char num[96];
	size_t i;

	amlops_plan_summary(&n, plan);
	JW_LIT(&w, "{\n");
	jw_key_str(&w, 1, "base", base);
	JW_LIT(&w, ",\n");
	jw_key_str(&w, 1, "head", head);
	JW_LIT(&w, ",\n\t\"steps\":\t[");
	for (i = 0; i < plan->nsteps; i++) {
		jw_step(&w, &plan->steps[i]);
		if (i + 1 < plan->nsteps)
			JW_LIT(&w, ", ");
	}
	snprintf(num, sizeof(num),
	    "],\n\t\"summary\":\t{\n\t\t\"create\":\t%zu,\n\t\t"
	    "\"update\":\t%zu,\n\t\t\"delete\":\t%zu\n\t},\n\t\"refused\":\t",
	    n.create, n.update, n.delete);
	jw_add(&w, num, strlen(num));
	jw_msgs(&w, plan->refusals, plan->nrefusals);
	JW_LIT(&w, ",\n\t\"notes\":\t");
	jw_msgs(&w, plan->notes, plan->nnotes);
	JW_LIT(&w, "\n}\n");
	return w.error;
}

static int
is_map_aspect(enum amlops_plan_aspect a)
{
	return a == AMLOPS_ASPECT_TRAFFIC || a == AMLOPS_ASPECT_MIRROR_TRAFFIC;
}

/*
 * What a step changes, on one line: "1 -> 2", "blue=100 -> blue=90,
 * green=10", "requestSettings {...} -> {...}"; for a create or delete,
 * its reason.
 */
static int
change_text(struct amlops_buf *b, const struct amlops_step *s)
{
	const cJSON *e;
	int first = 1, error;

	if (s->action != AMLOPS_PLAN_UPDATE)
		return amlops_buf_puts(b, s->reason ? s->reason : "");
	if (!cJSON_IsObject(s->before) || !cJSON_IsObject(s->after) ||
	    is_map_aspect(s->aspect)) {
		if ((error = amlops_plan_value_text(
		         b, s->before, is_map_aspect(s->aspect))) < 0 ||
		    (error = amlops_buf_puts(b, " -> ")) < 0)
			return error;
		return amlops_plan_value_text(
		    b, s->after, is_map_aspect(s->aspect));
	}
	/* Objects: each key that differs, before -> after. */
	cJSON_ArrayForEach(e, s->after)
	{
		const cJSON *o =
		    cJSON_GetObjectItemCaseSensitive(s->before, e->string);

		if (o && cJSON_Compare(e, o, 1))
			continue;
		if ((error = amlops_buf_printf(
		         b, "%s%s ", first ? "" : "; ", e->string)) < 0 ||
		    (error = amlops_plan_value_text(b, o, 0)) < 0 ||
		    (error = amlops_buf_puts(b, " -> ")) < 0 ||
		    (error = amlops_plan_value_text(b, e, 0)) < 0)
			return error;
		first = 0;
	}
	cJSON_ArrayForEach(e, s->before)
	{
		if (cJSON_GetObjectItemCaseSensitive(s->after, e->string))
			continue;
		if ((error = amlops_buf_printf(
		         b, "%s%s ", first ? "" : "; ", e->string)) < 0 ||
		    (error = amlops_plan_value_text(b, e, 0)) < 0 ||
		    (error = amlops_buf_puts(b, " -> (none)")) < 0)
			return error;
		first = 0;
	}
	return 0;
}

static const char *
action_sym(enum amlops_plan_action a)
{
	return a == AMLOPS_PLAN_CREATE   ? "+"
	       : a == AMLOPS_PLAN_UPDATE ? "~"
	                                 : "-";
}

static const char *
action_color(enum amlops_plan_action a)
{
	return a == AMLOPS_PLAN_CREATE   ? C_GREEN
	       : a == AMLOPS_PLAN_UPDATE ? C_YELLOW
	                                 : C_RED;
}

/* "deployment blue" or "endpoint my-endpoint", then the aspect if it adds. */
static int
subject_text(struct amlops_buf *b, const struct amlops_step *s)
{
	int error;

	if (s->deployment)
		error = amlops_buf_printf(b, "deployment %s", s->deployment);
	else
		error = amlops_buf_printf(b, "endpoint %s", s->endpoint);
	if (error < 0)
		return error;
	if (s->aspect != AMLOPS_ASPECT_ENDPOINT &&
	    s->aspect != AMLOPS_ASPECT_DEPLOYMENT)
		error = amlops_buf_printf(
		    b, " %s", amlops_plan_aspect_name(s->aspect));
	return error;
}

/* Every endpoint the plan mentions, in order of first mention. */
static const char **
plan_endpoints(const struct amlops_plan *plan, size_t *n)
{
	size_t cap = plan->nsteps + plan->nrefusals + plan->nnotes;
	const char **v = amlops_xcalloc(cap ? cap : 1, sizeof(*v));
	const char *all;
	size_t i, j, k;

	*n = 0;
	for (k = 0; k < 3; k++) {
		size_t m = k == 0   ? plan->nsteps
		           : k == 1 ? plan->nrefusals
		                    : plan->nnotes;

		for (i = 0; i < m; i++) {
			all = k == 0   ? plan->steps[i].endpoint
			      : k == 1 ? plan->refusals[i].endpoint
			               : plan->notes[i].endpoint;
			for (j = 0; j < *n; j++)
				if (strcmp(v[j], all) == 0)
					break;
			if (j == *n)
				v[(*n)++] = all;
		}
	}
	return v;
}

static int
cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static size_t
count_refused_endpoints(const struct amlops_plan *plan)
{
	size_t i, n = 0;

	for (i = 0; i < plan->nrefusals; i++)
		if (i == 0 || strcmp(plan->refusals[i].endpoint,
		                  plan->refusals[i - 1].endpoint) != 0)
			n++;
	return n;
}

static int
summary_line(struct amlops_buf *b, const struct amlops_plan *plan)
{
	struct amlops_plan_summary n;

	amlops_plan_summary(&n, plan);
	if (plan->nsteps == 0)
		return amlops_buf_puts(b, "No changes.");
	return amlops_buf_printf(b,
	    "Plan: %zu to create, %zu to update, %zu to delete.", n.create,
	    n.update, n.delete);
}

static int md_escape(struct amlops_buf *b, const char *s);

/* "FILE:LINE:COL: " of a refusal, when it has one. */
static int
msg_loc(struct amlops_buf *b, const struct amlops_plan_msg *m, int md)
{
	int error;

	if (!m->file)
		return 0;
	if (!md)
		return amlops_buf_printf(
		    b, "%s:%u:%u: ", m->file, m->line, m->col);
	if ((error = md_escape(b, m->file)) < 0)
		return error;
	return amlops_buf_printf(b, ":%u:%u: ", m->line, m->col);
}

int
amlops_plan_render_text(
    struct amlops_buf *out, const struct amlops_plan *plan, unsigned flags)
{
	int color = (flags & AMLOPS_PLAN_COLOR) != 0;
	const char **eps;
	size_t neps, e, i;
	int error = 0;

	eps = plan_endpoints(plan, &neps);
	qsort(eps, neps, sizeof(*eps), cmp_strp);
	for (e = 0; e < neps; e++) {
		if ((error = amlops_buf_printf(out, "%s\n", eps[e])) < 0)
			goto done;
		for (i = 0; i < plan->nsteps; i++) {
			const struct amlops_step *s = &plan->steps[i];

			if (strcmp(s->endpoint, eps[e]) != 0)
				continue;
			if ((error = amlops_buf_printf(out, "  %s%s%s ",
			         color ? action_color(s->action) : "",
			         action_sym(s->action), color ? C_RESET : "")) <
			        0 ||
			    (error = subject_text(out, s)) < 0 ||
			    (error = amlops_buf_puts(out, ": ")) < 0 ||
			    (error = change_text(out, s)) < 0 ||
			    (error = amlops_buf_putc(out, '\n')) < 0)
				goto done;
		}
		for (i = 0; i < plan->nrefusals; i++) {
			if (strcmp(plan->refusals[i].endpoint, eps[e]) != 0)
				continue;
			if ((error = amlops_buf_printf(out,
			         "  %s!%s refused: ", color ? C_BOLDRED : "",
			         color ? C_RESET : "")) < 0 ||
			    (error = msg_loc(out, &plan->refusals[i], 0)) < 0 ||
			    (error = amlops_buf_printf(
			         out, "%s\n", plan->refusals[i].msg)) < 0)
				goto done;
		}
		for (i = 0; i < plan->nnotes; i++) {
			if (strcmp(plan->notes[i].endpoint, eps[e]) != 0)
				continue;
			if ((error = amlops_buf_printf(
			         out, "  note: %s\n", plan->notes[i].msg)) < 0)
				goto done;
		}
		if ((error = amlops_buf_putc(out, '\n')) < 0)
			goto done;
	}
	if ((error = summary_line(out, plan)) < 0 ||
	    (error = amlops_buf_putc(out, '\n')) < 0)
		goto done;
	if (plan->nrefusals)
		error = amlops_buf_printf(out,
		    "Refused: %zu endpoint%s left as %s (see '!' above).\n",
		    count_refused_endpoints(plan),
		    count_refused_endpoints(plan) == 1 ? "" : "s",
		    count_refused_endpoints(plan) == 1 ? "it is" : "they are");
done:
	free(eps);
	return error;
}

/*
 * Text for a Markdown table cell or list item: no line breaks, and
 * nothing a user's string could use to change the comment's markup.
 */
static int
md_escape(struct amlops_buf *b, const char *s)
{
	int error = 0;

	for (; *s && error == 0; s++) {
		switch (*s) {
		case '|':
			error = amlops_buf_puts(b, "\\|");
			break;
		case '<':
			error = amlops_buf_puts(b, "&lt;");
			break;
		case '>':
			error = amlops_buf_puts(b, "&gt;");
			break;
		case '&':
			error = amlops_buf_puts(b, "&amp;");
			break;
		case '\\':
		case '`':
		case '*':
		case '_':
		case '[':
		case ']':
			error = amlops_buf_printf(b, "\\%c", *s);
			break;
		case '\n':
		case '\r':
			error = amlops_buf_putc(b, ' ');
			break;
		default:
			error = amlops_buf_putc(b, *s);
		}
	}
	return error;
}

/* A code fence longer than any run of backticks in `s`. */
static size_t
fence_len(const char *s)
{
	size_t run = 0, max = 0;

	for (; *s; s++) {
		run = *s == '`' ? run + 1 : 0;
		if (run > max)
			max = run;
	}
	return max < 3 ? 3 : max + 1;
}

static int
md_fence(struct amlops_buf *b, size_t n)
{
	int error = 0;

	while (n-- > 0 && error == 0)
		error = amlops_buf_putc(b, '`');
	return error;
}

int
amlops_plan_render_markdown(struct amlops_buf *out,
    const struct amlops_plan *plan, const char *base, const char *head)
{
	struct amlops_buf json = AMLOPS_BUF_INIT;
	size_t i, fence;
	int error;

	if ((error = amlops_buf_puts(out, "### amlops plan\n\n")) < 0)
		goto done;
	if (base || head) {
		if ((error = amlops_buf_puts(out, "Base ")) < 0 ||
		    (error = md_escape(out, base ? base : "(none)")) < 0 ||
		    (error = amlops_buf_puts(out, ", head ")) < 0 ||
		    (error = md_escape(out, head ? head : "(none)")) < 0 ||
		    (error = amlops_buf_puts(out, ".\n\n")) < 0)
			goto done;
	}
	if ((error = amlops_buf_puts(out, "**")) < 0 ||
	    (error = summary_line(out, plan)) < 0 ||
	    (error = amlops_buf_puts(out, "**\n\n")) < 0)
		goto done;
	if (plan->nsteps) {
		if ((error = amlops_buf_puts(out,
		         "| # | endpoint | deployment | action | aspect | "
		         "change |\n"
		         "|---|---|---|---|---|---|\n")) < 0)
			goto done;
		for (i = 0; i < plan->nsteps; i++) {
			const struct amlops_step *s = &plan->steps[i];
			struct amlops_buf ch = AMLOPS_BUF_INIT;

			change_text(&ch, s);
			if ((error = amlops_buf_printf(
			         out, "| %zu | ", i + 1)) < 0 ||
			    (error = md_escape(out, s->endpoint)) < 0 ||
			    (error = amlops_buf_puts(out, " | ")) < 0 ||
			    (error = md_escape(out,
			         s->deployment ? s->deployment : "")) < 0 ||
			    (error = amlops_buf_printf(out, " | %s %s | %s | ",
			         action_sym(s->action),
			         amlops_plan_action_name(s->action),
			         amlops_plan_aspect_name(s->aspect))) < 0 ||
			    (error = md_escape(out, amlops_buf_cstr(&ch))) <
			        0 ||
			    (error = amlops_buf_puts(out, " |\n")) < 0) {
				amlops_buf_release(&ch);
				goto done;
			}
			amlops_buf_release(&ch);
		}
		if ((error = amlops_buf_putc(out, '\n')) < 0)
			goto done;
	}
	if (plan->nrefusals) {
		if ((error = amlops_buf_puts(out,
		         "**Refused** (these endpoints are left as they "
		         "are):\n\n")) < 0)
			goto done;
		for (i = 0; i < plan->nrefusals; i++)
			if ((error = amlops_buf_puts(out, "- ")) < 0 ||
			    (error = md_escape(
			         out, plan->refusals[i].endpoint)) < 0 ||
			    (error = amlops_buf_puts(out, ": ")) < 0 ||
			    (error = msg_loc(out, &plan->refusals[i], 1)) < 0 ||
			    (error = md_escape(out, plan->refusals[i].msg)) <
			        0 ||
			    (error = amlops_buf_putc(out, '\n')) < 0)
				goto done;
		if ((error = amlops_buf_putc(out, '\n')) < 0)
			goto done;
	}
	if (plan->nnotes) {
		for (i = 0; i < plan->nnotes; i++)
			if ((error = amlops_buf_puts(out, "- Note: ")) < 0 ||
			    (error = md_escape(out, plan->notes[i].msg)) < 0 ||
			    (error = amlops_buf_putc(out, '\n')) < 0)
				goto done;
		if ((error = amlops_buf_putc(out, '\n')) < 0)
			goto done;
	}
	if ((error = amlops_plan_render_json(&json, plan, base, head)) < 0)
		goto done;
	fence = fence_len(amlops_buf_cstr(&json));
	if ((error = amlops_buf_puts(
	         out, "<details>\n<summary>Plan as JSON</summary>\n\n")) < 0 ||
	    (error = md_fence(out, fence)) < 0 ||
	    (error = amlops_buf_puts(out, "json\n")) < 0 ||
	    (error = amlops_buf_puts(out, amlops_buf_cstr(&json))) < 0 ||
	    (error = md_fence(out, fence)) < 0 ||
	    (error = amlops_buf_puts(out, "\n\n</details>\n")) < 0)
		goto done;
done:
	amlops_buf_release(&json);
	return error;
}
