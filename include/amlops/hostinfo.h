/*
 * How a client finds a running `amlops host`: the host writes
 * STATE_DIR/host.json (mode 0600) with its control-plane URL, its pid and
 * the bearer token every control-plane request must carry. The local
 * workspace is subscription 00000000-0000-0000-0000-000000000000, resource
 * group "local", workspace "local".
 */
#ifndef AMLOPS_HOSTINFO_H
#define AMLOPS_HOSTINFO_H

struct amlops_hostinfo {
	char *url;         /* "http://127.0.0.1:PORT" */
	char *token;       /* bearer token: a secret, never print it */
	char *scoring_url; /* "http://127.0.0.1:PORT" of the scoring front */
	char *state_dir;
	char *subscription;
	char *resource_group;
	char *workspace;
	long pid;
};

/*
 * The default state dir: $XDG_STATE_HOME/amlops, else
 * $HOME/.local/state/amlops. The caller frees `*out`.
 */
int amlops_hostinfo_default_dir(char **out);

/*
 * Reads DIR/host.json (`dir` NULL: the default dir). Fails with
 * AMLOPS_ENOTFOUND when there is no host.json or its pid is not running.
 * Free with amlops_hostinfo_free().
 */
int amlops_hostinfo_read(struct amlops_hostinfo **out, const char *dir);
void amlops_hostinfo_free(struct amlops_hostinfo *info);

#endif
