/*
 * YAML bytes -> struct ynode tree, through libyaml's event API. One arena
 * per file holds every node, child array and string: no per-key malloc,
 * one free per chunk.
 */
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "amlops/err.h"
#include "amlops/util.h"
#include "spec/yaml.h"

#define ARENA_CHUNK (64u * 1024) /* the largest chunk */

struct yarena_chunk {
	struct yarena_chunk *next;
	size_t used;
	size_t cap;
	/* then `cap` bytes, aligned for pointers */
	max_align_t data[];
};

static void *
arena_alloc(struct ydoc *doc, size_t n)
{
	struct yarena_chunk *c = doc->chunks;
	size_t align = sizeof(max_align_t);
	void *p;

	n = (n + align - 1) & ~(align - 1);
	if (!c || c->cap - c->used < n) {
		/* the first chunk fits a small file; then they double */
		size_t cap = c ? c->cap * 2 : doc->hint;

		if (cap > ARENA_CHUNK)
			cap = ARENA_CHUNK;
		if (cap < n)
			cap = n;

		c = amlops_xmalloc(sizeof(*c) + cap);
		c->cap = cap;
		c->used = 0;
		c->next = doc->chunks;
		doc->chunks = c;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

void
spec_ydoc_release(struct ydoc *doc)
{
	struct yarena_chunk *c, *next;

	if (!doc)
		return;
	for (c = doc->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	doc->chunks = NULL;
	doc->root = NULL;
}

struct frame {
	struct ynode *node;
	size_t base;  /* index in the kid stack where its kids start */
	char *anchor; /* registered when the node is complete */
};

struct anchor {
	char *name;
	struct ynode *node;
};

struct pstate {
	struct ydoc *doc;
	struct amlops_diags *diags;
	struct amlops_diags *soft; /* problems of a usable tree */
	const char *file;
	const char *data;
	size_t len;
	struct ynode **kids; /* kids of the open containers, in order */
	size_t nkids;
	size_t capkids;
	struct frame frames[SPEC_YAML_MAX_DEPTH + 1];
	int depth;
	struct anchor *anchors;
	size_t nanchors;
	size_t capanchors;
	int ndocs;
};

/* Line and (character) column of a byte offset, 1-based. */
static void
offset_loc(
    const char *data, size_t len, size_t off, unsigned *line, unsigned *col)
{
	size_t i;
	unsigned l = 1, c = 1;

	if (off > len)
		off = len;
	for (i = 0; i < off; i++) {
		unsigned char ch = (unsigned char)data[i];

		if (ch == '\n') {
			l++;
			c = 1;
		} else if ((ch & 0xc0) != 0x80)
			c++;
	}
	*line = l;
	*col = c;
}

static void
push_kid(struct pstate *ps, struct ynode *n)
{
	if (ps->nkids == ps->capkids) {
		ps->capkids = ps->capkids ? ps->capkids * 2 : 64;
		ps->kids =
		    amlops_xrealloc(ps->kids, ps->capkids * sizeof(*ps->kids));
	}
	ps->kids[ps->nkids++] = n;
}

static int
register_anchor(struct pstate *ps, const char *name, struct ynode *n)
{
	if (ps->nanchors == SPEC_YAML_MAX_ANCHORS) {
		amlops_diags_add(ps->diags, ps->file, n->line, n->col,
		    "more than %d anchors in one file; manifests need none",
		    SPEC_YAML_MAX_ANCHORS);
		return AMLOPS_EINVALID;
	}
	if (ps->nanchors == ps->capanchors) {
		ps->capanchors = ps->capanchors ? ps->capanchors * 2 : 8;
		ps->anchors = amlops_xrealloc(
		    ps->anchors, ps->capanchors * sizeof(*ps->anchors));
	}
	ps->anchors[ps->nanchors].name = amlops_xstrdup(name);
	ps->anchors[ps->nanchors].node = n;
	ps->nanchors++;
	return 0;
}

/* Places a finished node in its parent, or as the document's root. */
static int
add_node(struct pstate *ps, struct ynode *n)
{
	if (ps->depth == 0) {
		if (ps->doc->root) {
			amlops_diags_add(ps->diags, ps->file, n->line, n->col,
			    "a second YAML document in one file; put each "
			    "endpoint or deployment in a file of its own");
			return AMLOPS_EINVALID;
		}
		ps->doc->root = n;
		return 0;
	}
	push_kid(ps, n);
	return 0;
}

static struct ynode *
new_node(struct pstate *ps, enum ynode_type type, const yaml_mark_t *m)
{
	struct ynode *n = arena_alloc(ps->doc, sizeof(*n));

	memset(n, 0, sizeof(*n));
	n->type = (uint8_t)type;
	n->line = (uint32_t)m->line + 1;
	n->col = (uint32_t)m->column + 1;
	n->weight = 1;
	return n;
}

static int
keys_cmp(const void *a, const void *b)
{
	const struct ynode *const *x = a, *const *y = b;
	size_t lx = (*x)->u.s.len, ly = (*y)->u.s.len;
	int c = memcmp((*x)->u.s.str, (*y)->u.s.str, lx < ly ? lx : ly);

	if (c)
		return c;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	/* equal keys: in the order they were written */
	if ((*x)->line != (*y)->line)
		return (*x)->line < (*y)->line ? -1 : 1;
	return (*x)->col < (*y)->col ? -1 : (*x)->col > (*y)->col;
}

static int
same_key(const struct ynode *a, const struct ynode *b)
{
	return a->u.s.len == b->u.s.len &&
	       !memcmp(a->u.s.str, b->u.s.str, a->u.s.len);
}

static void
dup_key(struct pstate *ps, const struct ynode *first, const struct ynode *again)
{
	amlops_diags_add(ps->soft, ps->file, again->line, again->col,
	    "duplicate key '%s' (first given on line %u)", again->u.s.str,
	    first->line);
}

/* Keys must be scalars and appear once. */
static void
check_map_keys(struct pstate *ps, struct ynode *m)
{
	size_t i, j, n = m->n;
	int allscalar = 1;

	for (i = 0; i < n; i++) {
		struct ynode *k = m->u.kids[2 * i];

		if (k->type != YN_SCALAR) {
			amlops_diags_add(ps->soft, ps->file, k->line, k->col,
			    "a key must be a plain value, not %s (is a "
			    "'{{...}}' template placeholder left unquoted?)",
			    spec_ynode_kind(k));
			allscalar = 0;
		}
	}
	if (!allscalar || n < 2)
		return;
	if (n <= 16) {
		for (i = 1; i < n; i++)
			for (j = 0; j < i; j++)
				if (same_key(
				        m->u.kids[2 * j], m->u.kids[2 * i])) {
					dup_key(ps, m->u.kids[2 * j],
					    m->u.kids[2 * i]);
					break;
				}
		return;
	}
	{
		struct ynode **keys = amlops_xmalloc(n * sizeof(*keys));
		size_t first = 0;

		for (i = 0; i < n; i++)
			keys[i] = m->u.kids[2 * i];
		qsort(keys, n, sizeof(*keys), keys_cmp);
		for (i = 1; i < n; i++) {
			if (same_key(keys[first], keys[i]))
				dup_key(ps, keys[first], keys[i]);
			else
				first = i;
		}
		free(keys);
	}
}

static int
start_container(struct pstate *ps, enum ynode_type type, const yaml_mark_t *m,
    const char *anchor)
{
	struct ynode *n;

	if (ps->depth >= SPEC_YAML_MAX_DEPTH) {
		amlops_diags_add(ps->diags, ps->file, (unsigned)m->line + 1,
		    (unsigned)m->column + 1,
		    "nesting is deeper than %d levels; manifests need a few",
		    SPEC_YAML_MAX_DEPTH);
		return AMLOPS_EINVALID;
	}
	n = new_node(ps, type, m);
	ps->frames[ps->depth].node = n;
	ps->frames[ps->depth].base = ps->nkids;
	ps->frames[ps->depth].anchor = anchor ? amlops_xstrdup(anchor) : NULL;
	ps->depth++;
	return 0;
}

static int
end_container(struct pstate *ps)
{
	struct frame *f = &ps->frames[--ps->depth];
	struct ynode *n = f->node;
	size_t nk = ps->nkids - f->base, i;
	uint64_t w = 1;
	int error = 0;

	n->u.kids = arena_alloc(ps->doc, (nk ? nk : 1) * sizeof(*n->u.kids));
	if (nk)
		memcpy(n->u.kids, ps->kids + f->base, nk * sizeof(*n->u.kids));
	ps->nkids = f->base;
	for (i = 0; i < nk; i++)
		w += n->u.kids[i]->weight;
	n->weight = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
	n->n = (uint32_t)(n->type == YN_MAP ? nk / 2 : nk);
	if (w > SPEC_YAML_MAX_NODES) {
		amlops_diags_add(ps->diags, ps->file, n->line, n->col,
		    "this %s expands to more than %d nodes (aliases "
		    "counted in full); manifests are far smaller",
		    n->type == YN_MAP ? "mapping" : "list",
		    SPEC_YAML_MAX_NODES);
		error = AMLOPS_EINVALID;
	}
	if (!error && n->type == YN_MAP)
		check_map_keys(ps, n);
	if (!error && f->anchor)
		error = register_anchor(ps, f->anchor, n);
	free(f->anchor);
	f->anchor = NULL;
	if (error)
		return error;
	return add_node(ps, n);
}

static int
on_alias(struct pstate *ps, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	size_t i;

	for (i = ps->nanchors; i-- > 0;)
		if (!strcmp(ps->anchors[i].name, name))
			return add_node(ps, ps->anchors[i].node);
	amlops_diags_add(ps->diags, ps->file, (unsigned)ev->start_mark.line + 1,
	    (unsigned)ev->start_mark.column + 1,
	    "alias '*%s' names no anchor that is complete before it", name);
	return AMLOPS_EINVALID;
}

static int
on_scalar(struct pstate *ps, const yaml_event_t *ev)
{
	struct ynode *n = new_node(ps, YN_SCALAR, &ev->start_mark);
	size_t len = ev->data.scalar.length;
	char *s = arena_alloc(ps->doc, len + 1);
	int error;

	memcpy(s, ev->data.scalar.value, len);
	s[len] = '\0';
	n->u.s.str = s;
	n->u.s.len = len;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (ev->data.scalar.anchor &&
	    (error = register_anchor(
	         ps, (const char *)ev->data.scalar.anchor, n)) < 0)
		return error;
	return add_node(ps, n);
}

/* libyaml's error, in words a person can act on. */
static void
parser_error(struct pstate *ps, const yaml_parser_t *p)
{
	unsigned line, col;
	const char *problem = p->problem ? p->problem : "unknown error";

	if (p->error == YAML_READER_ERROR) {
		offset_loc(ps->data, ps->len, p->problem_offset, &line, &col);
		if (p->problem_value != -1 && strstr(problem, "UTF-8"))
			amlops_diags_add(ps->diags, ps->file, line, col,
			    "invalid YAML: %s (byte 0x%02x); expected UTF-8 "
			    "text",
			    problem, (unsigned)p->problem_value & 0xff);
		else if (strstr(problem, "UTF-8"))
			amlops_diags_add(ps->diags, ps->file, line, col,
			    "invalid YAML: %s; expected UTF-8 text", problem);
		else
			amlops_diags_add(ps->diags, ps->file, line, col,
			    "invalid YAML: %s", problem);
		return;
	}
	line = (unsigned)p->problem_mark.line + 1;
	col = (unsigned)p->problem_mark.column + 1;
	if (p->problem_mark.index < ps->len &&
	    ps->data[p->problem_mark.index] == '\t') {
		amlops_diags_add(ps->diags, ps->file, line, col,
		    "invalid YAML: a tab character where YAML expects "
		    "spaces; indent with spaces only");
		return;
	}
	if (p->context)
		amlops_diags_add(ps->diags, ps->file, line, col,
		    "invalid YAML: %s %s (started on line %u)", problem,
		    p->context, (unsigned)p->context_mark.line + 1);
	else
		amlops_diags_add(ps->diags, ps->file, line, col,
		    "invalid YAML: %s", problem);
}

/* NUL and other control bytes never belong in a manifest. */
static int
check_bytes(struct pstate *ps)
{
	size_t i;

	for (i = 0; i < ps->len; i++) {
		unsigned char c = (unsigned char)ps->data[i];

		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
		    c == 0x7f) {
			unsigned line, col;

			offset_loc(ps->data, ps->len, i, &line, &col);
			amlops_diags_add(ps->diags, ps->file, line, col,
			    "binary byte 0x%02x in a YAML file; expected "
			    "text",
			    c);
			return AMLOPS_EINVALID;
		}
	}
	return 0;
}

int
spec_yaml_parse(struct ydoc *doc, struct amlops_diags *diags,
    struct amlops_diags *soft, const char *file, const char *data, size_t len)
{
	struct pstate ps;
	yaml_parser_t parser;
	yaml_event_t ev;
	int error = 0, done = 0;
	size_t i;

	doc->chunks = NULL;
	doc->root = NULL;
	doc->hint = 1024 + 4 * len;
	if (len > AMLOPS_SPEC_MAX_FILE) {
		amlops_diags_add(diags, file, 1, 1,
		    "file is %zu bytes, larger than the %u bytes (1 MiB) "
		    "a manifest may have",
		    len, AMLOPS_SPEC_MAX_FILE);
		return AMLOPS_EINVALID;
	}
	memset(&ps, 0, sizeof(ps));
	ps.doc = doc;
	ps.diags = diags;
	ps.soft = soft;
	ps.file = file;
	ps.data = data;
	ps.len = len;
	if ((error = check_bytes(&ps)) < 0)
		return error;

	if (!yaml_parser_initialize(&parser))
		return amlops_err_set(AMLOPS_ERROR, "cannot set up libyaml");
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (!done && !error) {
		if (!yaml_parser_parse(&parser, &ev)) {
			parser_error(&ps, &parser);
			error = AMLOPS_EINVALID;
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++ps.ndocs > 1 && doc->root) {
				amlops_diags_add(diags, file,
				    (unsigned)ev.start_mark.line + 1,
				    (unsigned)ev.start_mark.column + 1,
				    "a second YAML document in one file; put "
				    "each endpoint or deployment in a file of "
				    "its own");
				error = AMLOPS_EINVALID;
			}
			break;
		case YAML_SCALAR_EVENT:
			error = on_scalar(&ps, &ev);
			break;
		case YAML_ALIAS_EVENT:
			error = on_alias(&ps, &ev);
			break;
		case YAML_MAPPING_START_EVENT:
			error = start_container(&ps, YN_MAP, &ev.start_mark,
			    (const char *)ev.data.mapping_start.anchor);
			break;
		case YAML_SEQUENCE_START_EVENT:
			error = start_container(&ps, YN_SEQ, &ev.start_mark,
			    (const char *)ev.data.sequence_start.anchor);
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			error = end_container(&ps);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	while (ps.depth > 0)
		free(ps.frames[--ps.depth].anchor);
	for (i = 0; i < ps.nanchors; i++)
		free(ps.anchors[i].name);
	free(ps.anchors);
	free(ps.kids);
	if (error)
		doc->root = NULL;
	return error;
}

const struct ynode *
spec_ynode_get(
    const struct ynode *m, const char *key, const struct ynode **keyp)
{
	size_t i, len = strlen(key);

	if (!m || m->type != YN_MAP)
		return NULL;
	for (i = 0; i < m->n; i++) {
		const struct ynode *k = m->u.kids[2 * i];

		if (k->type == YN_SCALAR && k->u.s.len == len &&
		    !memcmp(k->u.s.str, key, len)) {
			if (keyp)
				*keyp = k;
			return m->u.kids[2 * i + 1];
		}
	}
	return NULL;
}

const char *
spec_ynode_kind(const struct ynode *n)
{
	if (n->type == YN_MAP)
		return "a mapping";
	if (n->type == YN_SEQ)
		return "a list";
	if (spec_ynode_is_null(n))
		return "empty";
	return "a string";
}

int
spec_ynode_is_null(const struct ynode *n)
{
	if (n->type != YN_SCALAR || !n->plain)
		return 0;
	switch (n->u.s.len) {
	case 0:
		return 1;
	case 1:
		return n->u.s.str[0] == '~';
	case 4:
		return !strcmp(n->u.s.str, "null") ||
		       !strcmp(n->u.s.str, "Null") ||
		       !strcmp(n->u.s.str, "NULL");
	default:
		return 0;
	}
}
