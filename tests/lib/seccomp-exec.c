/* seccomp-exec — run a program under a seccomp filter equivalent to what
 * systemd installs for the units' SystemCallFilter=@system-service,
 * SystemCallFilter=~@privileged @resources, SystemCallErrorNumber=EPERM,
 * SystemCallArchitectures=native and MemoryDenyWriteExecute=yes.
 *
 * Used by tests/integration/18-hardening.sh where systemd is not PID 1, so
 * systemd-run cannot apply the unit's filter.  The test compiles it with
 * -include of a generated header that defines SK_ALLOWED, the list of
 * allowed syscall numbers:
 *
 *   #define SK_ALLOWED  __NR_read, __NR_write, ...
 *
 * generated from `systemd-analyze syscall-filter` (names this architecture
 * lacks are left out with #ifdef), so the test follows systemd's own sets.
 *
 * The filter: a foreign architecture or an x32 system call kills the
 * process (systemd: SystemCallArchitectures=native); an allowed call passes;
 * any other fails with EPERM (SystemCallErrorNumber=EPERM).
 * MemoryDenyWriteExecute=yes as systemd implements it: mmap() with
 * PROT_WRITE|PROT_EXEC, mprotect()/pkey_mprotect() with PROT_EXEC and
 * shmat() with SHM_EXEC fail with EPERM.  RestrictAddressFamilies=AF_UNIX
 * AF_INET AF_INET6 as systemd implements it: socket() of any other family
 * fails with EAFNOSUPPORT (this is what makes glibc's getaddrinfo() do
 * without netlink).
 *
 * Usage: seccomp-exec PROGRAM [ARGS...]  (no_new_privs is set here too). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#define X32_BIT 0x40000000u
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp-exec: add this architecture"
#endif

#ifndef SK_ALLOWED
#error "compile with -include of a header defining SK_ALLOWED"
#endif

static const long allowed[] = {SK_ALLOWED};
#define N_ALLOWED (sizeof allowed / sizeof allowed[0])

#define ARG_LO(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(__u64)) /* little endian */
#define STMT(c, k) ((struct sock_filter)BPF_STMT((c), (k)))
#define JUMP(c, k, t, f) ((struct sock_filter)BPF_JUMP((c), (k), (t), (f)))
#define RET_ERRNO (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

static struct sock_filter prog[8 + 6 * 4 + 7 + 2 * N_ALLOWED + 1];
static size_t n;

static void add(struct sock_filter f) { prog[n++] = f; }

static int is_allowed(long nr)
{
    for (size_t i = 0; i < N_ALLOWED; i++)
        if (allowed[i] == nr)
            return 1;
    return 0;
}

/* nr allowed, but an argument with any of `bits` set (all of them when
 * `all`) fails with EPERM.  A stays the syscall number on the no-match path. */
static void add_arg_rule(long nr, unsigned arg, unsigned bits, int all)
{
    if (!is_allowed(nr))
        return;
    add(JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 5));
    add(STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned)ARG_LO(arg)));
    add(STMT(BPF_ALU | BPF_AND | BPF_K, bits));
    if (all)
        add(JUMP(BPF_JMP | BPF_JEQ | BPF_K, bits, 0, 1));
    else
        add(JUMP(BPF_JMP | BPF_JSET | BPF_K, bits, 0, 1));
    add(STMT(BPF_RET | BPF_K, RET_ERRNO));
    add(STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
}

/* RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 */
static void add_socket_rule(void)
{
    if (!is_allowed(__NR_socket))
        return;
    add(JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 6));
    add(STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned)ARG_LO(0)));
    add(JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 3, 0));
    add(JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 2, 0));
    add(JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 1, 0));
    add(STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EAFNOSUPPORT & SECCOMP_RET_DATA)));
    add(STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: seccomp-exec PROGRAM [ARGS...]\n");
        return 64;
    }
    add(STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
    add(JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0));
    add(STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    add(STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
#ifdef X32_BIT
    add(JUMP(BPF_JMP | BPF_JSET | BPF_K, X32_BIT, 0, 1));
    add(STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#endif
    /* MemoryDenyWriteExecute=yes */
    add_arg_rule(__NR_mmap, 2, PROT_WRITE | PROT_EXEC, 1);
    add_arg_rule(__NR_mprotect, 2, PROT_EXEC, 0);
#ifdef __NR_pkey_mprotect
    add_arg_rule(__NR_pkey_mprotect, 2, PROT_EXEC, 0);
#endif
#ifdef __NR_shmat
    add_arg_rule(__NR_shmat, 2, SHM_EXEC, 0);
#endif
    add_socket_rule();
    for (size_t i = 0; i < N_ALLOWED; i++) {
        add(JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)allowed[i], 0, 1));
        add(STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    }
    add(STMT(BPF_RET | BPF_K, RET_ERRNO));

    struct sock_fprog fp = {.len = (unsigned short)n, .filter = prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        perror("seccomp-exec: PR_SET_NO_NEW_PRIVS");
        return 71;
    }
    if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0) {
        perror("seccomp-exec: seccomp");
        return 71;
    }
    execv(argv[1], argv + 1);
    fprintf(stderr, "seccomp-exec: cannot run %s: %s\n", argv[1], strerror(errno));
    return 126;
}
