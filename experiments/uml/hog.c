/*
 * hog: hold anonymous memory inside the UML guest until SIGTERM.
 *
 *   hog MIB READY_FILE [NFORK CHILD_MIB]
 *
 * Maps MIB MiB of private anonymous memory and writes one byte in every page, so each page is
 * faulted in (do_anonymous_page: GFP_HIGHUSER_MOVABLE, so MOVABLE pageblocks). With NFORK,
 * forks NFORK children that each map and touch CHILD_MIB MiB of their own; every child costs
 * the kernel a task_struct, a kernel stack, page tables and VMAs (UNMOVABLE allocations).
 * When every page is touched it creates READY_FILE and sleeps; SIGTERM kills the children
 * and exits, freeing it all.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t children[4096];
static int nr_children;

static void touch(long mib)
{
	long bytes = mib << 20, page = sysconf(_SC_PAGESIZE);
	char *p;

	if (bytes == 0)
		return;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("hog: mmap");
		exit(1);
	}
	for (long off = 0; off < bytes; off += page)
		p[off] = 1;
}

static void on_term(int sig)
{
	(void)sig;
	for (int i = 0; i < nr_children; i++)
		kill(children[i], SIGKILL);
	while (wait(NULL) > 0)
		;
	_exit(0);
}

int main(int argc, char **argv)
{
	int nfork = argc > 3 ? atoi(argv[3]) : 0;
	long child_mib = argc > 4 ? atol(argv[4]) : 0;
	int ready[2];
	char byte;
	FILE *f;

	if (argc < 3 || nfork < 0 || nfork > 4096) {
		fprintf(stderr, "usage: hog MIB READY_FILE [NFORK CHILD_MIB]\n");
		return 2;
	}
	touch(atol(argv[1]));
	if (pipe(ready) != 0) {
		perror("hog: pipe");
		return 1;
	}
	signal(SIGTERM, on_term);
	for (int i = 0; i < nfork; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("hog: fork");
			break;
		}
		if (pid == 0) {
			signal(SIGTERM, SIG_DFL);
			touch(child_mib);
			if (write(ready[1], "r", 1) != 1)
				_exit(1);
			for (;;)
				pause();
		}
		children[nr_children++] = pid;
	}
	for (int i = 0; i < nr_children; i++)
		if (read(ready[0], &byte, 1) != 1)
			break;
	f = fopen(argv[2], "w");
	if (f == NULL) {
		perror("hog: ready file");
		return 1;
	}
	fclose(f);
	for (;;)
		pause();
}
