/* A library with nothing but a name to look up: the test preloads it before `vmalloc run` to
 * check that an LD_PRELOAD entry already there is kept. */
int vm_cli_test_marker = 1;
