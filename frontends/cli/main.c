/* smallmind — the command-line tool (commands are added by frontends/cli/cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "smallmind.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("smallmind %s\n", SM_VERSION_STRING);
        return 0;
    }
    fprintf(stderr, "usage: smallmind <command> [options]\n");
    return 2;
}
