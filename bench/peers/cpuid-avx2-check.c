/* cpuid-avx2-check: print what CPUID says of AVX2, AVX-512F and AMX-TILE, from several threads (the shim
 * must cover threads created after start too). Exit status 0 when AVX2 is present and AVX-512F and AMX are not,
 * so `LD_PRELOAD=cpuid-avx2.so cpuid-avx2-check` fails where the shim is not in effect. */
#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>

static void *probe(void *out)
{
	unsigned a, b, c, d;
	__cpuid_count(7, 0, a, b, c, d);
	int *r = out;
	r[0] = (b >> 5) & 1;	/* AVX2 */
	r[1] = (b >> 16) & 1;	/* AVX512F */
	r[2] = (d >> 24) & 1;	/* AMX-TILE */
	return NULL;
}

int main(void)
{
	int r[4][3];
	pthread_t t[3];
	probe(r[0]);
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, probe, r[i + 1]);
	int ok = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++)
		ok &= r[i][0] == 1 && r[i][1] == 0 && r[i][2] == 0 && r[i][0] == r[0][0] && r[i][1] == r[0][1];
	printf("avx2=%d avx512f=%d amx_tile=%d (4 threads agree: %s)\n", r[0][0], r[0][1], r[0][2],
	       ok ? "yes" : "no or not masked");
	return ok ? 0 : 1;
}
