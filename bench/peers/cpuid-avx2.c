/*
 * cpuid-avx2.so: run an unmodified program as if the CPU had no AVX-512, AVX-VNNI or AMX.
 *
 *   LD_PRELOAD=/var/tmp/modelpool-peers/cpuid-avx2.so node bench/peers/ort.js ...   (run.sh --avx2 builds it there)
 *
 * Why: on an AVX-512 machine the benchmarks must also be measured as on an AVX2-only server (most servers;
 * an AMD Zen 3, say). modelpool, OpenBLAS, oneDNN and PyTorch each have a switch for that (x86-64-v3 build,
 * OPENBLAS_CORETYPE, ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY), ONNX Runtime has none: its kernels are chosen
 * from the CPUID instruction at start. Nothing in Debian hides CPUID bits from one process (Intel's SDE
 * emulator is not packaged, and it would emulate, not run natively), so this shim does it with the kernel's
 * CPUID faulting (arch_prctl ARCH_SET_CPUID, Linux >= 4.12, on CPUs and hypervisors that offer "cpuid_fault"
 * in /proc/cpuinfo): every CPUID in the process then raises SIGSEGV; the handler runs the real CPUID with
 * faulting briefly off, clears the feature bits below and steps over the instruction. Code runs natively;
 * only feature discovery changes. The setting is per thread and inherited by threads created later, so the
 * constructor (before main, before any thread) covers the whole process; execve resets it.
 *
 * The program may install its own SIGSEGV handler (V8 does, for WebAssembly): sigaction() and signal() are
 * interposed so that handler is recorded and called for every fault that is not a CPUID, and ours stays.
 *
 * Bits cleared (Intel SDM vol. 2A, CPUID; AMD APM vol. 3, CPUID Fn0000_0007): leaf 7.0 EBX AVX512F/DQ/IFMA/
 * PF/ER/CD/BW/VL, ECX AVX512_VBMI/VBMI2/VNNI/BITALG/VPOPCNTDQ, EDX AVX512_4VNNIW/4FMAPS/VP2INTERSECT/
 * AMX-BF16/AVX512_FP16/AMX-TILE/AMX-INT8; leaf 7.1 EAX AVX-VNNI/AVX512_BF16/AMX-FP16/AVX-IFMA; leaf 0xD.0 EAX
 * the opmask/ZMM/tile state components (XCR0 bits 5-7, 17-18), which feature checks read as "OS support".
 * What stays is what a Zen 3 core reports: AVX2, FMA, F16C, BMI1/2.
 *
 * Check: `cpuid-avx2-check` (built beside it) prints the AVX2, AVX-512F and AMX-TILE bits as four threads see
 * them and fails unless all are masked; bench/peers/run.sh --avx2 runs it under the shim before any benchmark.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

static const uint32_t L7_EBX = BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31);
static const uint32_t L7_ECX = BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14);
static const uint32_t L7_EDX = BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25);
static const uint32_t L7S1_EAX = BIT(4) | BIT(5) | BIT(21) | BIT(23);
static const uint32_t LD_EAX = BIT(5) | BIT(6) | BIT(7) | BIT(17) | BIT(18);

typedef int sigaction_fn(int, const struct sigaction *, struct sigaction *);

static struct sigaction app_segv;   /* the program's own SIGSEGV disposition, called for other faults */
static sigaction_fn *real_sigaction;
static int active;

static long set_cpuid(int enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

static void real_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static void mask(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	if (leaf == 7 && sub == 0) {
		r[1] &= ~L7_EBX;
		r[2] &= ~L7_ECX;
		r[3] &= ~L7_EDX;
	} else if (leaf == 7 && sub == 1) {
		r[0] &= ~L7S1_EAX;
	} else if (leaf == 0xd && sub == 0) {
		r[0] &= ~LD_EAX;
	}
}

static void pass_on(int sig, siginfo_t *si, void *uc)
{
	if ((app_segv.sa_flags & SA_SIGINFO) && app_segv.sa_sigaction) {
		app_segv.sa_sigaction(sig, si, uc);
	} else if (app_segv.sa_handler != SIG_DFL && app_segv.sa_handler != SIG_IGN && app_segv.sa_handler) {
		app_segv.sa_handler(sig);
	} else {
		/* Default action: restore it and return; the faulting instruction runs again and kills the
		 * process as it would have without the shim (core dump, exit status). */
		struct sigaction dfl;
		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		real_sigaction(SIGSEGV, &dfl, NULL);
	}
}

static void on_segv(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	const unsigned char *ip = (const unsigned char *)g[REG_RIP];

	if (!active || ip == NULL || ip[0] != 0x0f || ip[1] != 0xa2) {
		pass_on(sig, si, ucv);
		return;
	}
	uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX], r[4];
	set_cpuid(1);
	real_cpuid(leaf, sub, r);
	set_cpuid(0);
	mask(leaf, sub, r);
	g[REG_RAX] = r[0];
	g[REG_RBX] = r[1];
	g[REG_RCX] = r[2];
	g[REG_RDX] = r[3];
	g[REG_RIP] += 2;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!real_sigaction)
		real_sigaction = (sigaction_fn *)dlsym(RTLD_NEXT, "sigaction");
	if (sig != SIGSEGV || !active)
		return real_sigaction(sig, act, old);
	if (old)
		*old = app_segv;
	if (act)
		app_segv = *act;
	return 0;
}

/* glibc's signal() installs through its internal sigaction, which interposing sigaction() does not reach
 * (perf, for one, sets a SIGSEGV handler this way). */
sighandler_t signal(int sig, sighandler_t handler)
{
	static sighandler_t (*real)(int, sighandler_t);
	if (!real)
		real = (sighandler_t (*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal");
	if (sig != SIGSEGV || !active)
		return real(sig, handler);
	sighandler_t old = (app_segv.sa_flags & SA_SIGINFO) ? SIG_DFL : app_segv.sa_handler;
	memset(&app_segv, 0, sizeof app_segv);
	app_segv.sa_handler = handler;
	return old;
}

__attribute__((constructor)) static void cpuid_avx2_init(void)
{
	if (!real_sigaction)
		real_sigaction = (sigaction_fn *)dlsym(RTLD_NEXT, "sigaction");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (real_sigaction(SIGSEGV, &sa, &app_segv) != 0)
		return;
	if (set_cpuid(0) != 0) {
		/* No CPUID faulting here: say so once, on stderr, and leave the program unchanged; the
		 * caller's check (cpuid-avx2-check) then reports that the mask is not in effect. */
		static const char msg[] = "cpuid-avx2: CPUID faulting unavailable (no cpuid_fault); features unmasked\n";
		(void)!write(2, msg, sizeof msg - 1);
		real_sigaction(SIGSEGV, &app_segv, NULL);
		return;
	}
	active = 1;
}
