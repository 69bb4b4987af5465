/*
 * amlops validate [--alone] [-v] [--output table|json] [PATH...]
 *
 * Reads endpoint and deployment YAML from disk and checks it with the
 * spec loader. A directory is a repository tree, checked as a whole; its
 * path checks are relative to that directory, and its `.amlops.yml`
 * `paths:` select the files, as for plan. Plain files are checked
 * together with the current directory as the repository root, or each on
 * its own with --alone.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "amlops/err.h"
#include "amlops/log.h"
#include "amlops/source.h"
#include "amlops/spec.h"
#include "amlops/util.h"
#include "cli/cli.h"

static const char usage_text[] =
    "usage: amlops validate [--alone] [-v] [--output table|json] "
    "[PATH...]\n"
    "\n"
    "Checks endpoint and deployment YAML. A directory (default: --repo,\n"
    "or '.') is a repository tree checked as a whole; files are checked\n"
    "together, with the current directory as the repository root.\n"
    "A directory with a .amlops.yml is checked as plan reads it: only\n"
    "the files its paths: select.\n"
    "\n"
    "  --alone          check each file on its own (no cross-file rules,\n"
    "                   no check that local paths exist)\n"
    "  -v, --verbose    also say which files were skipped and why\n"
    "  --output FORMAT  'table' (errors as FILE:LINE:COL: message on\n"
    "                   stderr) or 'json' (a list of objects on stdout)\n";

/* One file read from disk: its repository path and what to print. */
struct vfile {
	char *rel;  /* repository-relative, what the loader sees */
	char *disp; /* the path as the user would write it */
	struct amlops_buf data;
	size_t len; /* the file's size (may exceed what was read) */
};

struct vset {
	char *root; /* the repository root, real path */
	struct vfile *v;
	size_t n;
	size_t cap;
};

struct vstate {
	int alone;
	int verbose;
	int json;
	cJSON *out; /* json: the list of problems */
	size_t nerrors;
	size_t nendpoints;
	size_t ndeployments;
	size_t nskipped;
	size_t nfiles;
};

static void
vset_release(struct vset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->v[i].rel);
		free(s->v[i].disp);
		amlops_buf_release(&s->v[i].data);
	}
	free(s->v);
	free(s->root);
	memset(s, 0, sizeof(*s));
}

static int
has_yaml_ext(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot && (!strcasecmp(dot, ".yml") || !strcasecmp(dot, ".yaml"));
}

/* Reads `path` into a new entry of `s`. */
static int
vset_add(struct vset *s, const char *path, const char *rel, const char *disp)
{
	struct vfile *f;
	struct stat st;
	int error;

	if (stat(path, &st) < 0)
		return amlops_err_sys(
		    AMLOPS_ENOTFOUND, "cannot read '%s'", disp);
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = amlops_xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	f = &s->v[s->n];
	memset(f, 0, sizeof(*f));
	amlops_buf_init(&f->data, 0);
	if ((size_t)st.st_size > AMLOPS_SPEC_MAX_FILE) {
		/* the loader refuses it by its size alone */
		f->len = (size_t)st.st_size;
	} else {
		if ((error = amlops_file_read(
		         &f->data, path, AMLOPS_SPEC_MAX_FILE)) < 0) {
			amlops_buf_release(&f->data);
			return error;
		}
		f->len = f->data.len;
	}
	f->rel = amlops_xstrdup(rel);
	f->disp = amlops_xstrdup(disp);
	s->n++;
	return 0;
}

static int
vfile_cmp(const void *a, const void *b)
{
	const struct vfile *x = a, *y = b;

	return strcmp(x->rel, y->rel);
}

/* Adds every YAML file under `dir` (rel: its repository path). */
static int
walk(struct vset *s, const char *dir, const char *rel, const char *disp)
{
	DIR *d;
	struct dirent *e;
	int error = 0;

	if (!(d = opendir(dir)))
		return amlops_err_sys(
		    AMLOPS_ERROR, "cannot read folder '%s'", disp);
	while (!error && (e = readdir(d))) {
		char *path, *r, *dp;
		struct stat st;

		if (e->d_name[0] == '.')
			continue; /* ., .., .git, hidden folders */
		path = amlops_xasprintf("%s/%s", dir, e->d_name);
		r = *rel ? amlops_xasprintf("%s/%s", rel, e->d_name)
		         : amlops_xstrdup(e->d_name);
		dp = !strcmp(disp, ".")
		         ? amlops_xstrdup(r)
		         : amlops_xasprintf("%s/%s", disp, e->d_name);
		if (lstat(path, &st) < 0)
			error = amlops_err_sys(
			    AMLOPS_ERROR, "cannot read '%s'", dp);
		else if (S_ISDIR(st.st_mode))
			error = walk(s, path, r, dp);
		else if (S_ISREG(st.st_mode) && has_yaml_ext(e->d_name))
			error = vset_add(s, path, r, dp);
		else if (S_ISLNK(st.st_mode) && has_yaml_ext(e->d_name))
			log_debug(
			    "%s: not following the symlink '%s'", __func__, dp);
		free(path);
		free(r);
		free(dp);
	}
	closedir(d);
	return error;
}

/* What a repository path is, on disk under the root in `ctx`. */
static enum amlops_path_kind
disk_path_kind(void *ctx, const char *rel)
{
	const char *root = ctx;
	char *full, *real;
	struct stat st;
	size_t rl = strlen(root);
	enum amlops_path_kind kind = AMLOPS_PATH_MISSING;

	full =
	    *rel ? amlops_xasprintf("%s/%s", root, rel) : amlops_xstrdup(root);
	if (lstat(full, &st) < 0) {
		free(full);
		return AMLOPS_PATH_MISSING;
	}
	if (!(real = realpath(full, NULL))) {
		/* a dangling symlink */
		free(full);
		return AMLOPS_PATH_MISSING;
	}
	if (strcmp(real, root) && !(!strncmp(real, root, rl) &&
	                              (real[rl] == '/' || !strcmp(root, "/"))))
		kind = AMLOPS_PATH_SYMLINK_OUT;
	else if (stat(real, &st) == 0)
		kind = S_ISDIR(st.st_mode) ? AMLOPS_PATH_DIR : AMLOPS_PATH_FILE;
	free(real);
	free(full);
	return kind;
}

static const char *
disp_of(const struct vset *s, const char *rel)
{
	struct vfile key = {(char *)rel, NULL, AMLOPS_BUF_INIT, 0};
	const struct vfile *f =
	    bsearch(&key, s->v, s->n, sizeof(*s->v), vfile_cmp);

	return f ? f->disp : rel;
}

static void
report(struct vstate *st, const struct vset *s, struct amlops_diags *d,
    const struct amlops_spec *spec)
{
	size_t i;

	amlops_diags_sort(d);
	for (i = 0; i < d->n; i++) {
		const char *file = disp_of(s, d->v[i].file);

		if (st->json) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "file", file);
			cJSON_AddNumberToObject(o, "line", d->v[i].line);
			cJSON_AddNumberToObject(o, "column", d->v[i].col);
			cJSON_AddStringToObject(o, "message", d->v[i].msg);
			cJSON_AddItemToArray(st->out, o);
		} else
			fprintf(stderr, "%s:%u:%u: %s\n", file, d->v[i].line,
			    d->v[i].col, d->v[i].msg);
	}
	st->nerrors += d->n;
	if (!spec)
		return;
	for (i = 0; i < spec->nskipped; i++)
		if (st->verbose)
			fprintf(st->json ? stderr : stdout, "%s: skipped: %s\n",
			    disp_of(s, spec->skipped[i]), spec->skipped_why[i]);
	st->nskipped += spec->nskipped;
	for (i = 0; i < spec->nendpoints; i++) {
		/* ALONE: a deployment file's endpoint is not counted */
		if (spec->endpoints[i]->file)
			st->nendpoints++;
		st->ndeployments += spec->endpoints[i]->ndeployments;
	}
	st->nfiles += spec->nfiles;
}

static void
load_set(struct vstate *st, struct vset *s, size_t from, size_t to)
{
	struct amlops_spec_opts opts = {0, disk_path_kind, s->root};
	struct amlops_spec_file *files;
	struct amlops_spec *spec = NULL;
	struct amlops_diags d = AMLOPS_DIAGS_INIT;
	size_t i;

	if (st->alone)
		opts.flags |= AMLOPS_SPEC_ALONE;
	files = amlops_xcalloc(to - from + 1, sizeof(*files));
	for (i = from; i < to; i++) {
		files[i - from].path = s->v[i].rel;
		files[i - from].data = amlops_buf_cstr(&s->v[i].data);
		files[i - from].len = s->v[i].len;
	}
	if (amlops_spec_load(&spec, &d, files, to - from, &opts) < 0 && !d.n)
		fprintf(stderr, "amlops: error: %s\n", amlops_err_last());
	report(st, s, &d, spec);
	amlops_spec_free(spec);
	amlops_diags_release(&d);
	free(files);
}

/* Checks one set: together, or each file alone. */
static void
check_set(struct vstate *st, struct vset *s)
{
	size_t i;

	qsort(s->v, s->n, sizeof(*s->v), vfile_cmp);
	if (!st->alone) {
		load_set(st, s, 0, s->n);
		return;
	}
	for (i = 0; i < s->n; i++)
		load_set(st, s, i, i + 1);
}

/*
 * A directory with a `.amlops.yml` at its root is checked as `plan`
 * would load it: only the manifests its `paths:` select. 0 when there
 * is no such file or it parses (the files it leaves out are dropped
 * from `repo`); 1 when it has problems, reported with file:line:col; a
 * negative code with the message set when it cannot be read.
 */
static int
apply_config(struct vstate *st, struct vset *repo, const char *disp)
{
	struct amlops_source_config *cfg = NULL;
	struct amlops_diags d = AMLOPS_DIAGS_INIT;
	struct amlops_buf data = AMLOPS_BUF_INIT;
	char *path, *name;
	struct stat sb;
	size_t i, kept = 0;
	int error = 0;

	path = amlops_xasprintf("%s/%s", repo->root, AMLOPS_SOURCE_CONFIG_FILE);
	name = !strcmp(disp, ".")
	           ? amlops_xstrdup(AMLOPS_SOURCE_CONFIG_FILE)
	           : amlops_xasprintf("%s/%s", disp, AMLOPS_SOURCE_CONFIG_FILE);
	if (stat(path, &sb) < 0 && errno == ENOENT)
		goto done;
	amlops_buf_init(&data, 0);
	if ((error = amlops_file_read(&data, path, AMLOPS_SPEC_MAX_FILE)) < 0) {
		amlops_err_prefix(error, "'%s'", name);
		goto done;
	}
	error = amlops_source_config_parse(
	    &cfg, &d, name, amlops_buf_cstr(&data), data.len);
	if (error < 0) {
		if (d.n) {
			report(st, repo, &d, NULL);
			error = 1;
		}
		goto done;
	}
	for (i = 0; i < repo->n; i++) {
		struct vfile *f = &repo->v[i];

		if (amlops_source_config_selects(cfg, f->rel)) {
			repo->v[kept++] = *f;
			continue;
		}
		if (st->verbose)
			fprintf(st->json ? stderr : stdout,
			    "%s: skipped: not in the paths of %s\n", f->disp,
			    name);
		free(f->rel);
		free(f->disp);
		amlops_buf_release(&f->data);
	}
	repo->n = kept;
done:
	amlops_source_config_free(cfg);
	amlops_diags_release(&d);
	amlops_buf_release(&data);
	free(path);
	free(name);
	return error;
}

/* `path` relative to `root` (both real paths), or NULL when outside. */
static const char *
under(const char *path, const char *root)
{
	size_t rl = strlen(root);

	if (!strcmp(root, "/"))
		return path + 1;
	if (strncmp(path, root, rl))
		return NULL;
	if (path[rl] == '\0')
		return path + rl;
	if (path[rl] == '/')
		return path + rl + 1;
	return NULL;
}

int
cmd_validate(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
	    {"alone", no_argument, NULL, 'a'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vstate st;
	struct vset files;
	char *cwd = NULL;
	int ch, i, rc = EXIT_OK, nfileargs = 0, error;

	memset(&st, 0, sizeof(st));
	memset(&files, 0, sizeof(files));
	st.verbose = ctx->verbose;
	st.json = ctx->output == CLI_OUTPUT_JSON;
	while ((ch = getopt_long(argc, argv, "vo:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			st.alone = 1;
			break;
		case 'v':
			st.verbose++;
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				st.json = 1;
			else if (!strcmp(optarg, "table"))
				st.json = 0;
			else
				return cli_usage_error(usage_text,
				    "validate: unknown output '%s' (expected "
				    "'table' or 'json')",
				    optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_OK;
		default:
			return cli_usage_error(
			    usage_text, "validate: unknown option");
		}
	}
	if (st.verbose)
		amlops_log_init("amlops", st.verbose, 0);
	if (st.json && !(st.out = cJSON_CreateArray()))
		abort();
	if (!(cwd = realpath(".", NULL))) {
		rc = cli_error(
		    "cannot find the current directory: %s", strerror(errno));
		goto done;
	}
	files.root = amlops_xstrdup(cwd);
	for (i = optind; i <= argc; i++) {
		const char *arg =
		    i < argc ? argv[i] : (ctx->repo ? ctx->repo : ".");
		struct stat sb;
		char *real;
		const char *rel;

		if (i == argc && (optind < argc))
			break;
		if (stat(arg, &sb) < 0) {
			rc = cli_error(
			    "cannot read '%s': %s", arg, strerror(errno));
			goto done;
		}
		if (!(real = realpath(arg, NULL))) {
			rc = cli_error(
			    "cannot resolve '%s': %s", arg, strerror(errno));
			goto done;
		}
		if (S_ISDIR(sb.st_mode)) {
			/* a repository of its own */
			struct vset repo;
			char *disp = amlops_xstrdup(arg);
			size_t dl = strlen(disp);

			/* "repo/" prints as "repo/x.yml", not "repo//x.yml" */
			while (dl > 1 && disp[dl - 1] == '/')
				disp[--dl] = '\0';
			memset(&repo, 0, sizeof(repo));
			repo.root = real;
			if (walk(&repo, real, "", disp) < 0) {
				rc = cli_error("%s", amlops_err_last());
				vset_release(&repo);
				free(disp);
				goto done;
			}
			error = apply_config(&st, &repo, disp);
			free(disp);
			if (error == 1) {
				/* reported: the rest of this tree is unknown */
				vset_release(&repo);
				continue;
			}
			if (error < 0) {
				rc = cli_error("%s", amlops_err_last());
				vset_release(&repo);
				goto done;
			}
			check_set(&st, &repo);
			vset_release(&repo);
			continue;
		}
		rel = under(real, cwd);
		if (!rel && !st.alone) {
			rc = cli_error("'%s' is outside the current directory, "
			               "the repository root; run amlops from "
			               "the repository or use --alone",
			    arg);
			free(real);
			goto done;
		}
		/* alone, a file outside the current directory keeps its
		 * full path: only its own escapes can be checked */
		if (!rel)
			rel = real + 1;
		if (vset_add(&files, real, rel, arg) < 0) {
			rc = cli_error("%s", amlops_err_last());
			free(real);
			goto done;
		}
		nfileargs++;
		free(real);
	}
	if (nfileargs) {
		check_set(&st, &files);
	}
	if (st.json) {
		char *s = cJSON_Print(st.out);

		printf("%s\n", s);
		free(s);
	} else if (st.nerrors)
		fprintf(stderr, "%zu problem%s found\n", st.nerrors,
		    st.nerrors == 1 ? "" : "s");
	else
		printf("%zu file%s: %zu endpoint%s, %zu deployment%s, "
		       "%zu skipped, no errors\n",
		    st.nfiles, st.nfiles == 1 ? "" : "s", st.nendpoints,
		    st.nendpoints == 1 ? "" : "s", st.ndeployments,
		    st.ndeployments == 1 ? "" : "s", st.nskipped);
	rc = st.nerrors ? EXIT_ERROR : EXIT_OK;
done:
	cJSON_Delete(st.out);
	vset_release(&files);
	free(cwd);
	return rc;
}
