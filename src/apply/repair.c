/*
 * Repairs: the planner compares specs only, so a deployment whose last
 * operation ended Failed but whose spec matches the repository plans as
 * "no change". The executor adds a step that applies it again. See
 * amlops_apply_add_repairs() in amlops/apply.h.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "amlops/apply.h"
#include "amlops/util.h"

static int
in_scope(char *const *scope, size_t n, const char *name)
{
	if (scope == NULL)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(scope[i], name))
			return 1;
	return 0;
}

/* Whether the plan already has a step that PUTs this resource. */
static int
has_step(const struct amlops_plan *plan, const char *ep, const char *dep)
{
	for (size_t i = 0; i < plan->nsteps; i++) {
		const struct amlops_step *s = &plan->steps[i];

		if (strcmp(s->endpoint, ep))
			continue;
		if (dep == NULL && s->deployment == NULL &&
		    s->aspect == AMLOPS_ASPECT_ENDPOINT)
			return 1;
		if (dep && s->deployment && !strcmp(s->deployment, dep))
			return 1;
	}
	return 0;
}

/*
 * Where a repair of endpoint `ep` goes: before its first traffic,
 * delete or endpoint-metadata step, else after its last step, else where
 * its steps would be (endpoints are in name order).
 */
static size_t
repair_pos(const struct amlops_plan *plan, const char *ep, int endpoint_level)
{
	size_t i, last = (size_t)-1;

	for (i = 0; i < plan->nsteps; i++) {
		const struct amlops_step *s = &plan->steps[i];
		int c = strcmp(s->endpoint, ep);

		if (c < 0)
			continue;
		if (c > 0)
			return last != (size_t)-1 ? last + 1 : i;
		last = i;
		if (endpoint_level && !(s->aspect == AMLOPS_ASPECT_ENDPOINT &&
		                          s->action != AMLOPS_PLAN_DELETE))
			return i;
		if (s->aspect == AMLOPS_ASPECT_TRAFFIC ||
		    s->aspect == AMLOPS_ASPECT_MIRROR_TRAFFIC ||
		    s->action == AMLOPS_PLAN_DELETE ||
		    (s->deployment == NULL &&
		        s->aspect == AMLOPS_ASPECT_METADATA))
			return i;
	}
	return last != (size_t)-1 ? last + 1 : plan->nsteps;
}

static void
insert(struct amlops_plan *plan, size_t pos, const struct amlops_step *s)
{
	plan->steps = amlops_xrealloc(
	    plan->steps, (plan->nsteps + 1) * sizeof(*plan->steps));
	memmove(plan->steps + pos + 1, plan->steps + pos,
	    (plan->nsteps - pos) * sizeof(*plan->steps));
	plan->steps[pos] = *s;
	plan->nsteps++;
}

static cJSON *
state_json(const char *state)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "provisioning_state", state);
	return o;
}

void
amlops_apply_add_repairs(struct amlops_plan *plan,
    const struct amlops_spec *desired, const struct amlops_spec *live,
    struct amlops_live *const *lives, char *const *scope, size_t nscope)
{
	if (lives == NULL || desired == NULL)
		return;
	for (size_t i = 0; i < live->nendpoints; i++) {
		const struct amlops_endpoint *lep = live->endpoints[i];
		const struct amlops_endpoint *dep =
		    amlops_spec_endpoint(desired, lep->name);
		const struct amlops_live *l = lives[i];
		struct amlops_step s;

		if (dep == NULL || l == NULL ||
		    !in_scope(scope, nscope, lep->name))
			continue;
		if (l->provisioning_state &&
		    !strcmp(l->provisioning_state, "Failed") &&
		    !has_step(plan, lep->name, NULL)) {
			memset(&s, 0, sizeof(s));
			s.endpoint = amlops_xstrdup(lep->name);
			s.action = AMLOPS_PLAN_UPDATE;
			s.aspect = AMLOPS_ASPECT_ENDPOINT;
			s.before = state_json("Failed");
			s.after = state_json("Succeeded");
			s.reason =
			    amlops_xasprintf("endpoint '%s' is Failed on "
			                     "the target: apply it again",
			        lep->name);
			s.desired_endpoint = dep;
			s.live_endpoint = lep;
			insert(plan, repair_pos(plan, lep->name, 1), &s);
		}
		for (size_t k = 0; k < dep->ndeployments; k++) {
			const struct amlops_deployment *d = dep->deployments[k];
			const char *st =
			    amlops_live_deployment_state(l, d->name);

			if (st == NULL || strcmp(st, "Failed") ||
			    has_step(plan, lep->name, d->name))
				continue;
			memset(&s, 0, sizeof(s));
			s.endpoint = amlops_xstrdup(lep->name);
			s.deployment = amlops_xstrdup(d->name);
			s.action = AMLOPS_PLAN_UPDATE;
			s.aspect = AMLOPS_ASPECT_DEPLOYMENT;
			s.before = state_json("Failed");
			s.after = state_json("Succeeded");
			s.reason = amlops_xasprintf("deployment '%s' is Failed "
			                            "on the target: apply it "
			                            "again",
			    d->name);
			s.desired_endpoint = dep;
			s.desired_deployment = d;
			s.live_endpoint = lep;
			s.live_deployment =
			    amlops_endpoint_deployment(lep, d->name);
			insert(plan, repair_pos(plan, lep->name, 0), &s);
		}
	}
}
