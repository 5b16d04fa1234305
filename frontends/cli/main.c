/* smallmind — the command-line tool: a table of commands, each in frontends/cli/cmd_<name>.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const sm_cmd commands[] = {
    {"demo", "train a small GPT on the shipped corpus for about a minute, then generate", sm_cmd_demo},
    {"train", "train a model on a text file (AdamW, checkpoints, resume)", sm_cmd_train},
    {"generate", "sample text from a checkpoint or GPT-2 weights", sm_cmd_generate},
    {"eval", "cross-entropy and perplexity of a model over a file", sm_cmd_eval},
    {"forward", "run the forward pass of a model on random tokens and print loss and timing", sm_cmd_forward},
    {"plan", "dry run: the memory plan of a model (bytes by role, arenas vs lower bound, budget)", sm_cmd_plan},
    {"fit", "the largest context and batch of a model that fit a memory budget, from real plans", sm_cmd_fit},
    {"sysinfo", "this machine: memory, container limit, threads, CPU features, recommended context", sm_cmd_sysinfo},
    {"check", "check a graph file: parse, instantiate, report the first error with its line", sm_cmd_check},
    {"print", "print a graph file or template in canonical form (expanded, concrete shapes)", sm_cmd_print},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void usage(FILE *f)
{
    fprintf(f, "usage: smallmind <command> [options]   (smallmind <command> --help for its options)\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nmodels: %s\n", sm_cli_templates_help());
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("smallmind %s\n", SM_VERSION_STRING);
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "smallmind: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
