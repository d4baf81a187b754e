/*
 * mwcopy - time copies into ordinary RAM and into an NTB memory window,
 * from userspace inside a guest, with the instruction patterns that matter:
 *
 *   io    the pattern the kernel's memcpy_toio() uses on this arch, which is
 *         what ntb_perf copies with when it has no DMA channel:
 *           x86_64  "rep movsl" (4-byte string moves)
 *           arm64   a loop of single 8-byte loads and stores
 *   u64   a plain loop of 8-byte stores, four per iteration
 *   libc  the C library's memcpy()
 *
 * The copy imitates ntb_perf: a source buffer as large as the window, copied
 * chunk by chunk into the destination, wrapping at its end, until the total
 * is reached.  The destination is either a page-aligned RAM buffer ("ram")
 * or the window itself: the PCI BAR that contains the given physical address,
 * mapped through /sys/bus/pci/devices/<dev>/resource<N>_wc (write-combining,
 * as ntb_perf's ioremap_wc) or, for a BAR that is not prefetchable,
 * resource<N>.
 *
 * With -A both buffers start on a 16 MiB boundary, so at every step the source
 * and destination addresses share their low 24 bits, as in ntb_perf, whose
 * source (a 1 MiB kmalloc) and window (a 1 MiB ioremap) are both 1 MiB
 * aligned.  QEMU's software TLB is direct-mapped on the low page-number
 * bits, so such a pair of addresses competes for one TLB slot.
 *
 * Output, one line per timed pass:
 *   mwcopy target=<ram|window> layout=<any|congruent> pattern=<io|u64|libc>
 *          bytes=<n> usecs=<n> mbps=<n>
 * mbps is bytes per microsecond, the unit ntb_perf prints ("MBytes/s").
 *
 * Usage: mwcopy [-A] [-t MiB] [-r passes] [-c chunk] [-s size] [-p patterns]
 *               ram | window <phys>
 *
 * SPDX-License-Identifier: GPL-2.0-only
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef void copy_fn(void *dst, const void *src, size_t n);

#if defined(__x86_64__)
/* As the kernel's string_memcpy_toio for an aligned, 4-byte multiple size. */
static void copy_io(void *dst, const void *src, size_t n)
{
	size_t count = n / 4;

	__asm__ volatile("rep movsl"
			 : "+D"(dst), "+S"(src), "+c"(count)
			 :
			 : "memory");
}
#elif defined(__aarch64__)
/* As the kernel's __memcpy_toio for aligned data: one ldr and one str per 8 bytes. */
static void copy_io(void *dst, const void *src, size_t n)
{
	uint8_t *to = dst;
	const uint8_t *from = src;

	while (n >= 8) {
		uint64_t v = *(const uint64_t *)from;

		__asm__ volatile("str %x0, [%1]" : : "rZ"(v), "r"(to) : "memory");
		from += 8;
		to += 8;
		n -= 8;
	}
}
#else
#error "mwcopy knows the memcpy_toio pattern of x86_64 and arm64 only"
#endif

/* Volatile stores, so the compiler cannot turn the loop into a memcpy() call. */
static void copy_u64(void *dst, const void *src, size_t n)
{
	volatile uint64_t *to = dst;
	const uint64_t *from = src;
	size_t i;

	for (i = 0; i + 4 <= n / 8; i += 4) {
		to[i] = from[i];
		to[i + 1] = from[i + 1];
		to[i + 2] = from[i + 2];
		to[i + 3] = from[i + 3];
	}
}

static void copy_libc(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}

static const struct {
	const char *name;
	copy_fn *fn;
} patterns[] = {
	{ "io", copy_io },
	{ "u64", copy_u64 },
	{ "libc", copy_libc },
};

static void die(const char *what)
{
	fprintf(stderr, "mwcopy: %s: %s\n", what, strerror(errno));
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		die("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One ntb_perf-like run: `total` bytes in `chunk` pieces, wrapping over `size`. */
static void run(copy_fn *fn, uint8_t *dst, const uint8_t *src, size_t size,
		size_t chunk, uint64_t total)
{
	uint64_t done = 0;
	size_t off = 0;

	while (done < total) {
		fn(dst + off, src + off, chunk);
		done += chunk;
		off += chunk;
		if (off >= size)
			off = 0;
	}
}

/*
 * The BAR holding `phys`: /sys/bus/pci/devices/<dev>/resource lists one
 * "start end flags" line per resource, and resource<N> maps line N.
 */
static int open_window(uint64_t phys, size_t size, uint64_t *bar_offset,
		       char *path, size_t path_len)
{
	DIR *dir = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	if (!dir)
		die("/sys/bus/pci/devices");
	while ((e = readdir(dir))) {
		char name[512], line[256];
		FILE *f;
		int n = 0;

		if (e->d_name[0] == '.')
			continue;
		snprintf(name, sizeof(name), "/sys/bus/pci/devices/%s/resource",
			 e->d_name);
		f = fopen(name, "r");
		if (!f)
			continue;
		for (; fgets(line, sizeof(line), f); n++) {
			uint64_t start, end, flags;
			int fd;

			if (sscanf(line, "%" SCNx64 " %" SCNx64 " %" SCNx64,
				   &start, &end, &flags) != 3 || !start)
				continue;
			if (phys < start || phys > end || size > end - phys + 1)
				continue;
			fclose(f);
			closedir(dir);
			/* Write-combining like ntb_perf's ioremap_wc, where the BAR offers it. */
			snprintf(path, path_len, "%s%d_wc", name, n);
			fd = open(path, O_RDWR);
			if (fd < 0) {
				snprintf(path, path_len, "%s%d", name, n);
				fd = open(path, O_RDWR);
			}
			if (fd < 0)
				die(path);
			*bar_offset = phys - start;
			return fd;
		}
		fclose(f);
	}
	closedir(dir);
	fprintf(stderr, "mwcopy: no PCI BAR holds 0x%" PRIx64 "+0x%zx\n", phys,
		size);
	exit(2);
}

#define CONGRUENT (16ul << 20)

/* `len` bytes of address space starting on a CONGRUENT boundary, left PROT_NONE for MAP_FIXED. */
static uint8_t *aligned_space(size_t len)
{
	uint8_t *p = mmap(NULL, len + CONGRUENT, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		die("address space");
	return (uint8_t *)(((uintptr_t)p + CONGRUENT - 1) & ~(CONGRUENT - 1));
}

static uint8_t *ram_buffer(size_t size, int congruent)
{
	uint8_t *p;

	if (!congruent) {
		if (posix_memalign((void **)&p, 4096, size))
			die("buffer");
		return p;
	}
	p = mmap(aligned_space(size), size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		die("buffer");
	return p;
}

static void usage(void)
{
	fprintf(stderr, "usage: mwcopy [-A] [-t MiB] [-r passes] [-c chunk] [-s size] "
		"[-p io,u64,libc] ram | window <phys>\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t total = 64ull << 20, phys = 0, bar_offset = 0;
	size_t size = 1u << 20, chunk = 64u << 10, map_len;
	const char *want = "io,u64,libc", *target;
	char path[600] = "";
	int passes = 3, opt, fd = -1, congruent = 0;
	uint8_t *src, *dst, *map = NULL;
	unsigned i;

	while ((opt = getopt(argc, argv, "At:r:c:s:p:")) != -1) {
		switch (opt) {
		case 'A': congruent = 1; break;
		case 't': total = strtoull(optarg, NULL, 0) << 20; break;
		case 'r': passes = atoi(optarg); break;
		case 'c': chunk = strtoull(optarg, NULL, 0); break;
		case 's': size = strtoull(optarg, NULL, 0); break;
		case 'p': want = optarg; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	target = argv[optind];
	if (!strcmp(target, "window")) {
		if (optind + 1 >= argc)
			usage();
		phys = strtoull(argv[optind + 1], NULL, 0);
	} else if (strcmp(target, "ram")) {
		usage();
	}
	/* Whole chunks that tile the buffer, in units every pattern copies. */
	if (!size || !chunk || chunk > size || size % chunk || chunk % 32 ||
	    passes < 1 || !total) {
		fprintf(stderr, "mwcopy: need 32 | chunk | size, passes >= 1\n");
		return 2;
	}

	src = ram_buffer(size, congruent);
	srandom(1);
	for (i = 0; i < size; i++)
		src[i] = (uint8_t)random();

	if (phys) {
		long page = sysconf(_SC_PAGESIZE);
		uint64_t lead;

		fd = open_window(phys, size, &bar_offset, path, sizeof(path));
		lead = bar_offset % (uint64_t)page;
		map_len = size + lead;
		/* Congruent: the window's first byte, not the mapping's, on the boundary. */
		map = mmap(congruent ? aligned_space(map_len + CONGRUENT) +
				       CONGRUENT - lead : NULL,
			   map_len, PROT_READ | PROT_WRITE,
			   MAP_SHARED | (congruent ? MAP_FIXED : 0), fd,
			   (off_t)(bar_offset - lead));
		if (map == MAP_FAILED)
			die(path);
		dst = map + lead;
		fprintf(stderr, "mwcopy: window 0x%" PRIx64 " is %s + 0x%" PRIx64
			"\n", phys, path, bar_offset);
	} else {
		dst = ram_buffer(size, congruent);
		memset(dst, 0, size);
	}

	for (i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		const char *p = strstr(want, patterns[i].name);
		size_t len = strlen(patterns[i].name);
		int pass;

		if (!p || (p != want && p[-1] != ',') || (p[len] && p[len] != ','))
			continue;
		/* One untimed pass: page tables, TLB and the translator warm. */
		run(patterns[i].fn, dst, src, size, chunk, size);
		for (pass = 0; pass < passes; pass++) {
			uint64_t t0 = now_ns(), ns;

			run(patterns[i].fn, dst, src, size, chunk, total);
			ns = now_ns() - t0;
			printf("mwcopy target=%s layout=%s pattern=%s bytes=%" PRIu64
			       " usecs=%" PRIu64 " mbps=%.1f\n", phys ? "window" : "ram",
			       congruent ? "congruent" : "any",
			       patterns[i].name, total, ns / 1000,
			       (double)total * 1000.0 / (double)ns);
			fflush(stdout);
		}
	}
	if (map)
		munmap(map, map_len);
	if (fd >= 0)
		close(fd);
	return 0;
}
