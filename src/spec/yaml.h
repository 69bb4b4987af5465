/*
 * A compact YAML node tree for the spec loader, built straight from
 * libyaml's event stream into one arena per file.
 *
 * The parser refuses what a manifest never needs and an attacker likes:
 * inputs over AMLOPS_SPEC_MAX_FILE, binary bytes, nesting deeper than
 * SPEC_YAML_MAX_DEPTH, aliases that expand to more than
 * SPEC_YAML_MAX_NODES nodes, more than one document. It also reports
 * duplicate keys and keys that are not scalars. Every problem becomes a
 * located diagnostic.
 */
#ifndef AMLOPS_SPEC_YAML_H
#define AMLOPS_SPEC_YAML_H

#include <stddef.h>
#include <stdint.h>

#include "amlops/spec.h"

#define SPEC_YAML_MAX_DEPTH 64
#define SPEC_YAML_MAX_NODES 100000
#define SPEC_YAML_MAX_ANCHORS 1024

enum ynode_type {
	YN_SCALAR = 0,
	YN_MAP,
	YN_SEQ,
};

/*
 * A node. Maps hold 2*n kids: key, value, key, value. An alias is the
 * anchored node itself, so a node may have several parents: walk the
 * tree, never link it.
 */
struct ynode {
	uint8_t type;
	uint8_t plain;   /* scalar written without quotes */
	uint32_t line;   /* 1-based */
	uint32_t col;    /* 1-based */
	uint32_t weight; /* nodes in the subtree, aliases expanded */
	uint32_t n;      /* kids; for a map, pairs */
	union {
		struct {
			const char *str; /* NUL-terminated, in the arena */
			size_t len;
		} s;
		struct ynode **kids;
	} u;
};

struct yarena_chunk;

struct ydoc {
	struct yarena_chunk *chunks;
	size_t hint;        /* the first chunk's size */
	struct ynode *root; /* NULL when the file holds no document */
};

/*
 * Parses `len` bytes of `file` into `doc`. Problems that leave no usable
 * tree are added to `diags`; those of a usable tree (duplicate keys, keys
 * that are not scalars) to `soft`, so that the caller can drop them for a
 * file it skips. Returns 0 when the tree is usable, AMLOPS_EINVALID when
 * it is not; `doc` must be released with spec_ydoc_release() in both
 * cases.
 */
int spec_yaml_parse(struct ydoc *doc, struct amlops_diags *diags,
    struct amlops_diags *soft, const char *file, const char *data, size_t len);
void spec_ydoc_release(struct ydoc *doc);

/* The value of `key` in map `m`, or NULL; the key node into *keyp. */
const struct ynode *spec_ynode_get(
    const struct ynode *m, const char *key, const struct ynode **keyp);

/* "a mapping", "a list", "a string"... for messages. */
const char *spec_ynode_kind(const struct ynode *n);

/* A scalar that is YAML's null: empty and plain, "~", "null". */
int spec_ynode_is_null(const struct ynode *n);

#endif
