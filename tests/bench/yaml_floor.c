/*
 * The floor for any YAML-based tool: libyaml's parser run over each
 * file, events only, nothing built. Prints the number of files and
 * events.
 *
 *	yaml_floor < paths          each file named on stdin (one path a
 *	                            line), read from disk
 *	yaml_floor REPO REV DIR     each *.yml / *.yaml blob under DIR/ in
 *	                            the tree of REV, read from the git object
 *	                            store as amlops reads its manifests
 *	                            (tree walk, git_blob_lookup, raw content)
 *
 *	cc -O2 -o yaml_floor yaml_floor.c -lyaml -lgit2
 *
 * The second form is the fair floor for `amlops plan`: the same bytes,
 * read the same way, so that the ratio measures what amlops adds on top
 * of reading and parsing. Both forms are single-threaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>
#include <yaml.h>

static unsigned long files, events;

static int
parse(const char *name, const unsigned char *data, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int done = 0;

	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, data, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			fprintf(stderr, "%s: %s\n", name,
			    parser.problem ? parser.problem : "error");
			yaml_parser_delete(&parser);
			return -1;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		events++;
	}
	yaml_parser_delete(&parser);
	files++;
	return 0;
}

static int
from_disk(void)
{
	static unsigned char data[1 << 20];
	char path[4096];

	while (fgets(path, sizeof(path), stdin)) {
		size_t len;
		FILE *f;

		path[strcspn(path, "\n")] = '\0';
		if (!(f = fopen(path, "rb"))) {
			perror(path);
			return -1;
		}
		len = fread(data, 1, sizeof(data), f);
		fclose(f);
		if (parse(path, data, len) < 0)
			return -1;
	}
	return 0;
}

struct walk {
	git_repository *repo;
	const char *dir;
	size_t dirlen;
	int error;
};

static int
is_yaml(const char *name)
{
	size_t n = strlen(name);

	return (n > 4 && !strcmp(name + n - 4, ".yml")) ||
	       (n > 5 && !strcmp(name + n - 5, ".yaml"));
}

static int
walk_cb(const char *root, const git_tree_entry *e, void *payload)
{
	struct walk *w = payload;
	git_blob *blob;

	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB ||
	    strncmp(root, w->dir, w->dirlen) ||
	    !is_yaml(git_tree_entry_name(e)))
		return 0;
	if (git_blob_lookup(&blob, w->repo, git_tree_entry_id(e)) < 0) {
		fprintf(stderr, "%s%s: %s\n", root, git_tree_entry_name(e),
		    git_error_last()->message);
		w->error = -1;
		return -1;
	}
	if (parse(git_tree_entry_name(e), git_blob_rawcontent(blob),
	        (size_t)git_blob_rawsize(blob)) < 0)
		w->error = -1;
	git_blob_free(blob);
	return w->error;
}

static int
from_git(const char *path, const char *rev, const char *dir)
{
	git_repository *repo = NULL;
	git_object *obj = NULL;
	git_tree *tree = NULL;
	struct walk w;
	int error = -1;

	git_libgit2_init();
	/* as amlops does (src/source/source.c): trust our own objects */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	if (git_repository_open(&repo, path) < 0 ||
	    git_revparse_single(&obj, repo, rev) < 0 ||
	    git_object_peel((git_object **)&tree, obj, GIT_OBJECT_TREE) < 0) {
		fprintf(stderr, "%s %s: %s\n", path, rev,
		    git_error_last()->message);
		goto done;
	}
	w.repo = repo;
	w.dir = dir;
	w.dirlen = strlen(dir);
	w.error = 0;
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, &w) < 0 || w.error)
		goto done;
	error = 0;
done:
	git_tree_free(tree);
	git_object_free(obj);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return error;
}

int
main(int argc, char **argv)
{
	int error;

	if (argc == 4)
		error = from_git(argv[1], argv[2], argv[3]);
	else if (argc == 1)
		error = from_disk();
	else {
		fputs("usage: yaml_floor < paths | yaml_floor REPO REV DIR\n",
		    stderr);
		return 2;
	}
	if (error < 0)
		return 1;
	printf("%lu files, %lu events\n", files, events);
	return 0;
}
