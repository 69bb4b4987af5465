/*
 * amlops status [REV]: what amlops did with a commit, from its note.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amlops/err.h"
#include "amlops/source.h"
#include "amlops/status.h"
#include "amlops/util.h"
#include "cli/cli.h"

static const char status_usage[] =
    "usage: amlops status [--notes-ref REF] [REV]\n"
    "\n"
    "Prints the note amlops wrote on commit REV (default: HEAD): the\n"
    "result, each step with its outcome and duration, each endpoint's\n"
    "final state. With the global --output json, prints the note as\n"
    "stored. Exits 1 when the commit has no note.\n"
    "\n"
    "  --notes-ref REF  the notes ref (default: notes_ref in .amlops.yml,\n"
    "                   else " AMLOPS_NOTES_REF ")\n";

int
cmd_status(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
	    {"notes-ref", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct amlops_source *src = NULL;
	struct amlops_source_config *cfg = NULL;
	struct amlops_diags diags = AMLOPS_DIAGS_INIT;
	struct amlops_note *note = NULL;
	struct amlops_buf out = AMLOPS_BUF_INIT;
	const char *rev = "HEAD", *ref = NULL;
	char commit[41], *raw = NULL, *summary = NULL;
	int ch, error, rc = EXIT_ERROR;

	while ((ch = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			if (strncmp(optarg, "refs/notes/", 11))
				return cli_usage_error(status_usage,
				    "status: notes ref '%s' is not under "
				    "refs/notes/",
				    optarg);
			ref = optarg;
			break;
		case 'h':
			fputs(status_usage, stdout);
			return EXIT_OK;
		default:
			fputs(status_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		rev = argv[optind++];
	if (optind < argc)
		return cli_usage_error(status_usage,
		    "status: unexpected argument '%s'", argv[optind]);

	if ((error = amlops_source_open(&src, ctx->repo, NULL)) < 0 ||
	    (error = amlops_source_resolve(commit, src, rev)) < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	if (!ref) {
		/* a broken .amlops.yml does not hide a note: default ref */
		if (amlops_source_config_load(&cfg, &diags, src, commit) == 0 &&
		    cfg->notes_ref)
			ref = cfg->notes_ref;
		amlops_err_clear();
	}
	error = amlops_source_note_get(&raw, src, ref, commit);
	if (error == AMLOPS_ENOTFOUND) {
		rc = cli_error("no note for commit %.12s under %s (nothing "
		               "applied it yet)",
		    commit, ref ? ref : AMLOPS_NOTES_REF);
		goto done;
	}
	if (error < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	if (ctx->output == CLI_OUTPUT_JSON) {
		fputs(raw, stdout);
		if (!*raw || raw[strlen(raw) - 1] != '\n')
			fputc('\n', stdout);
		rc = EXIT_OK;
		goto done;
	}
	if ((error = amlops_note_parse(&note, raw)) < 0) {
		rc = cli_error("commit %.12s: %s", commit, amlops_err_last());
		goto done;
	}
	if (amlops_source_summary(&summary, src, commit) < 0)
		amlops_err_clear();
	if ((error = amlops_note_render_text(&out, note, summary)) < 0) {
		rc = cli_error("%s", amlops_err_last());
		goto done;
	}
	fwrite(amlops_buf_cstr(&out), 1, out.len, stdout);
	rc = EXIT_OK;
done:
	amlops_buf_release(&out);
	amlops_note_free(note);
	free(raw);
	free(summary);
	amlops_diags_release(&diags);
	amlops_source_config_free(cfg);
	amlops_source_free(src);
	return rc;
}
