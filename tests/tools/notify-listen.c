/* notify-listen — stand in for systemd's end of NOTIFY_SOCKET in tests.
 *
 *   notify-listen PATH
 *
 * Binds a unix datagram socket at PATH and prints every line of every
 * datagram it receives as "MILLISECONDS LINE" (milliseconds since start,
 * monotonic clock), flushing each, until killed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: notify-listen PATH\n");
        return 2;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(argv[1]) >= sizeof sa.sun_path) {
        fprintf(stderr, "notify-listen: path too long\n");
        return 2;
    }
    strcpy(sa.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "notify-listen: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    long long t0 = now_ms();
    char buf[4097];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "notify-listen: recv: %s\n", strerror(errno));
            return 1;
        }
        buf[n] = '\0';
        long long t = now_ms() - t0;
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
            printf("%lld %s\n", t, line);
        fflush(stdout);
    }
}
