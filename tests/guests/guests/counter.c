/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshot test guest: fills a memory pattern, then counts in ring 3 and
 * prints "COUNT <n> SUM <checksum>" every `every` iterations, re-checking
 * the pattern each time. Paused, it stops counting; restored, it must go on
 * from where it was with the pattern intact. Command line:
 *   pattern_mib=N   size of the pattern at 32 MiB (default 16)
 *   every=N         iterations between reports (default 1<<22)
 *   stop_at=N       report PASS and power off at this count (default: never)
 */
#include "rt.h"

const char guest_name[] = "counter";

#define PATTERN_BASE (32ull << 20)

static uint64_t pattern_word(uint64_t i)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 0x1234567;
	x ^= x >> 31;
	return x * 0xbf58476d1ce4e5b9ull;
}

static uint64_t pattern_sum(volatile uint64_t *p, uint64_t words)
{
	uint64_t sum = 0;
	for (uint64_t i = 0; i < words; i++)
		sum = (sum ^ p[i]) * 0x100000001b3ull;
	return sum;
}

void guest_main(void)
{
	uint64_t words = cmdline_u64("pattern_mib", 16) << 17;
	uint64_t every = cmdline_u64("every", 1ull << 22);
	uint64_t stop_at = cmdline_u64("stop_at", 0);
	volatile uint64_t *p = (volatile uint64_t *)PATTERN_BASE;
	volatile uint64_t count = 0;
	uint64_t want;

	CHECK(every > 0, "every=0");
	for (uint64_t i = 0; i < words; i++)
		p[i] = pattern_word(i);
	want = pattern_sum(p, words);
	printf("PATTERN %lx\n", want);
	for (;;) {
		count++;
		if (count % every)
			continue;
		uint64_t sum = pattern_sum(p, words);
		printf("COUNT %lu SUM %lx\n", count / every, sum);
		CHECK(sum == want, "pattern changed: %lx != %lx", sum, want);
		if (stop_at && count / every >= stop_at)
			return;
	}
}
