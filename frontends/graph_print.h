/* graph_print.h — the canonical printer's internals shared with the loader. */
#ifndef SM_GRAPH_PRINT_H
#define SM_GRAPH_PRINT_H

/* The last line of a file written by sm_graph_save_file, followed by 16 hex digits of the XXH3-64 of
 * every byte before that line. */
#define SM_GRAPH_CHECKSUM_TAG "# smallmind-checksum xxh3:"

#endif
