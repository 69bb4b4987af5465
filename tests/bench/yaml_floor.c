/*
 * The floor for any YAML-based tool: libyaml's parser run over each file
 * named on stdin (one path a line), events only, nothing built. Prints
 * the number of files and events.
 *
 *	cc -O2 -o yaml_floor yaml_floor.c -lyaml
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

int
main(void)
{
	char path[4096];
	unsigned long files = 0, events = 0;
	static char data[1 << 20];

	while (fgets(path, sizeof(path), stdin)) {
		yaml_parser_t parser;
		yaml_event_t ev;
		size_t len;
		FILE *f;
		int done = 0;

		path[strcspn(path, "\n")] = '\0';
		if (!(f = fopen(path, "rb"))) {
			perror(path);
			return 1;
		}
		len = fread(data, 1, sizeof(data), f);
		fclose(f);
		yaml_parser_initialize(&parser);
		yaml_parser_set_input_string(&parser,
		    (const unsigned char *)data, len);
		while (!done) {
			if (!yaml_parser_parse(&parser, &ev)) {
				fprintf(stderr, "%s: %s\n", path,
				    parser.problem ? parser.problem : "error");
				return 1;
			}
			done = ev.type == YAML_STREAM_END_EVENT;
			yaml_event_delete(&ev);
			events++;
		}
		yaml_parser_delete(&parser);
		files++;
	}
	printf("%lu files, %lu events\n", files, events);
	return 0;
}
