/*
 * `.amlops.yml`: the repository's own settings for amlops. A small
 * reader on libyaml's document API; unknown keys are errors with a
 * "did you mean", as they are in endpoint YAML.
 */
#include <stdlib.h>
#include <string.h>

#include <git2.h>
#include <yaml.h>

#include "amlops/err.h"
#include "amlops/source.h"
#include "amlops/util.h"
#include "source/source_int.h"

struct cfg_reader {
	yaml_document_t *doc;
	struct amlops_diags *diags;
	const char *file;
};

static void
diag_at(struct cfg_reader *r, const yaml_node_t *n, const char *fmt,
    const char *a, const char *b)
{
	amlops_diags_add(r->diags, r->file, (unsigned)n->start_mark.line + 1,
	    (unsigned)n->start_mark.column + 1, fmt, a, b);
}

static const char *
scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE
	           ? (const char *)n->data.scalar.value
	           : NULL;
}

/* A string value, or a diag; NULL in both the error and the null case. */
static char *
get_string(struct cfg_reader *r, const char *key, const yaml_node_t *v)
{
	const char *s = scalar(v);

	if (!s || v->data.scalar.length == 0) {
		diag_at(r, v, "'%s' must be a string%s", key, "");
		return NULL;
	}
	return amlops_xstrdup(s);
}

static void
unknown_key(struct cfg_reader *r, const yaml_node_t *k, const char *name,
    const char *const *known, size_t nknown)
{
	const char *best = NULL;
	unsigned d, bestd = 3;
	size_t i;

	for (i = 0; i < nknown; i++) {
		d = amlops_levenshtein(name, known[i], 3);
		if (d < bestd) {
			bestd = d;
			best = known[i];
		}
	}
	if (best) {
		char *m = amlops_xasprintf(" (did you mean '%s'?)", best);

		diag_at(r, k, "unknown key '%s'%s", name, m);
		free(m);
	} else {
		diag_at(r, k, "unknown key '%s'%s", name, "");
	}
}

static void
read_paths(struct cfg_reader *r, struct amlops_source_config *cfg,
    const yaml_node_t *v)
{
	yaml_node_item_t *it;

	if (scalar(v) && v->data.scalar.length > 0) {
		cfg->paths = amlops_xcalloc(1, sizeof(*cfg->paths));
		cfg->paths[cfg->npaths++] = amlops_xstrdup(scalar(v));
		return;
	}
	if (v->type != YAML_SEQUENCE_NODE) {
		diag_at(r, v, "'%s' must be a list of paths%s", "paths", "");
		return;
	}
	cfg->paths = amlops_xcalloc((size_t)(v->data.sequence.items.top -
	                                     v->data.sequence.items.start) +
	                                1,
	    sizeof(*cfg->paths));
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		const yaml_node_t *e = yaml_document_get_node(r->doc, *it);
		const char *s = scalar(e);

		if (!s || !*s) {
			diag_at(
			    r, e, "'%s' entries must be paths%s", "paths", "");
			continue;
		}
		cfg->paths[cfg->npaths++] = amlops_xstrdup(s);
	}
}

static void
read_azure(struct cfg_reader *r, struct amlops_source_config *cfg,
    const yaml_node_t *v)
{
	static const char *const known[] = {
	    "subscription_id", "resource_group", "workspace", "arm_url"};
	yaml_node_pair_t *p;

	if (v->type != YAML_MAPPING_NODE) {
		diag_at(r, v, "'%s' must be a mapping%s", "azure", "");
		return;
	}
	for (p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
		const yaml_node_t *val =
		    yaml_document_get_node(r->doc, p->value);
		const char *name = scalar(k);
		char **slot = NULL;

		if (!name) {
			diag_at(r, k, "keys must be strings%s%s", "", "");
			continue;
		}
		if (!strcmp(name, "subscription_id"))
			slot = &cfg->subscription_id;
		else if (!strcmp(name, "resource_group"))
			slot = &cfg->resource_group;
		else if (!strcmp(name, "workspace"))
			slot = &cfg->workspace;
		else if (!strcmp(name, "arm_url"))
			slot = &cfg->arm_url;
		if (!slot) {
			unknown_key(
			    r, k, name, known, AMLOPS_ARRAY_SIZE(known));
			continue;
		}
		free(*slot);
		*slot = get_string(r, name, val);
	}
}

int
amlops_source_config_parse(struct amlops_source_config **out,
    struct amlops_diags *diags, const char *file, const char *data, size_t len)
{
	static const char *const known[] = {
	    "paths", "notes_ref", "target", "azure"};
	struct amlops_source_config *cfg;
	struct cfg_reader r = {NULL, diags, file};
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	yaml_node_pair_t *p;
	size_t n0 = diags->n;

	*out = NULL;
	cfg = amlops_xcalloc(1, sizeof(*cfg));
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		amlops_diags_add(diags, file,
		    (unsigned)parser.problem_mark.line + 1,
		    (unsigned)parser.problem_mark.column + 1, "%s",
		    parser.problem ? parser.problem : "invalid YAML");
		yaml_parser_delete(&parser);
		goto done;
	}
	yaml_parser_delete(&parser);
	r.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (!root ||
	    (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)) {
		/* an empty file: all defaults */
	} else if (root->type != YAML_MAPPING_NODE) {
		diag_at(&r, root, "'%s' must be a mapping of settings%s",
		    AMLOPS_SOURCE_CONFIG_FILE, "");
	} else {
		for (p = root->data.mapping.pairs.start;
		     p < root->data.mapping.pairs.top; p++) {
			const yaml_node_t *k =
			    yaml_document_get_node(&doc, p->key);
			const yaml_node_t *v =
			    yaml_document_get_node(&doc, p->value);
			const char *name = scalar(k);

			if (!name) {
				diag_at(
				    &r, k, "keys must be strings%s%s", "", "");
			} else if (!strcmp(name, "paths")) {
				if (!cfg->paths)
					read_paths(&r, cfg, v);
			} else if (!strcmp(name, "notes_ref")) {
				free(cfg->notes_ref);
				cfg->notes_ref = get_string(&r, name, v);
				if (cfg->notes_ref &&
				    (strncmp(
				         cfg->notes_ref, "refs/notes/", 11) ||
				        !git_reference_is_valid_name(
				            cfg->notes_ref)))
					diag_at(&r, v,
					    "'%s' must be a ref under "
					    "refs/notes/, not '%s'",
					    name, cfg->notes_ref);
			} else if (!strcmp(name, "target")) {
				free(cfg->target);
				cfg->target = get_string(&r, name, v);
				if (cfg->target &&
				    strcmp(cfg->target, "local") &&
				    strcmp(cfg->target, "azure"))
					diag_at(&r, v,
					    "unknown target '%s'%s "
					    "(expected 'local' or 'azure')",
					    cfg->target, "");
			} else if (!strcmp(name, "azure")) {
				read_azure(&r, cfg, v);
			} else {
				unknown_key(&r, k, name, known,
				    AMLOPS_ARRAY_SIZE(known));
			}
		}
	}
	yaml_document_delete(&doc);
done:
	if (diags->n > n0) {
		amlops_source_config_free(cfg);
		return AMLOPS_EINVALID;
	}
	*out = cfg;
	return 0;
}

int
amlops_source_config_load(struct amlops_source_config **out,
    struct amlops_diags *diags, struct amlops_source *src, const char *commit)
{
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	git_blob *blob = NULL;
	int error;

	*out = NULL;
	if ((error = amlops_source_lookup_tree(&tree, src, commit)) < 0)
		return error;
	if (!tree ||
	    git_tree_entry_bypath(&e, tree, AMLOPS_SOURCE_CONFIG_FILE) < 0) {
		git_error_clear();
		*out = amlops_xcalloc(1, sizeof(**out));
		goto done;
	}
	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB ||
	    git_blob_lookup(
	        &blob, amlops_source_repo(src), git_tree_entry_id(e)) < 0) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "'%s' at %.12s is not a file", AMLOPS_SOURCE_CONFIG_FILE,
		    commit);
		goto done;
	}
	if (git_blob_rawsize(blob) > AMLOPS_SPEC_MAX_FILE) {
		error = amlops_err_set(AMLOPS_EINVALID,
		    "'%s' is larger than %u bytes", AMLOPS_SOURCE_CONFIG_FILE,
		    AMLOPS_SPEC_MAX_FILE);
		goto done;
	}
	error =
	    amlops_source_config_parse(out, diags, AMLOPS_SOURCE_CONFIG_FILE,
	        git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
done:
	git_blob_free(blob);
	git_tree_entry_free(e);
	git_tree_free(tree);
	return error;
}

void
amlops_source_config_free(struct amlops_source_config *cfg)
{
	if (!cfg)
		return;
	amlops_source_paths_free(cfg->paths, cfg->npaths);
	free(cfg->notes_ref);
	free(cfg->target);
	free(cfg->subscription_id);
	free(cfg->resource_group);
	free(cfg->workspace);
	free(cfg->arm_url);
	free(cfg);
}
