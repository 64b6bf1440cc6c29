/* SPDX-License-Identifier: MIT */
/*
 * pretouch.c - maps MB megabytes populated (MAP_POPULATE) and unmaps them:
 * run by bench/runtime/run right before each side's run of row (a), so both
 * start with the same amount of memory the hypervisor has already backed.
 *
 * Why: row (a) is bound by first-touch page faults, and on a VM a guest page
 * the host has not backed yet costs several times more than one it has (the
 * host allocates it lazily, and free page reporting gives freed memory back
 * after a while). Without this, each run inherits the memory the previous
 * run freed: run alternately, Go's run (2.7 GB) always followed ours (4 GB)
 * and found all its pages backed, while ours always followed Go's and paid
 * for 1.3 GB of fresh ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pretouch MEGABYTES\n");
        return 2;
    }
    size_t len = (size_t)strtoull(argv[1], NULL, 10) << 20;
    if (len == 0) {
        return 0;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (p == MAP_FAILED) {
        perror("pretouch: mmap");
        return 1;
    }
    munmap(p, len);
    return 0;
}
