/*
 * wrk_unix.c -- lets wrk (which speaks TCP only) load netwhod's Unix
 * socket: an LD_PRELOAD shim whose connect() replaces an AF_INET socket by
 * an AF_UNIX one connected to $NW_WRK_UNIX.  wrk's TCP_NODELAY on it fails
 * and is ignored; everything else (read, write, epoll) is the same.
 *
 *   cc -shared -fPIC -O2 -o wrk_unix.so bench/wrk_unix.c -ldl
 *   NW_WRK_UNIX=/path/netwhod.sock LD_PRELOAD=./wrk_unix.so wrk ... http://127.0.0.1:1/...
 *
 * The URL's host and port only name the Host header; no TCP connection is
 * made.  Benchmark tool only (bench/http_bench.sh).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real_connect)(int, const struct sockaddr *, socklen_t);
    if (!real_connect)
        real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT,
                                                                                "connect");
    const char *path = getenv("NW_WRK_UNIX");
    if (!path || !addr || addr->sa_family != AF_INET)
        return real_connect(fd, addr, len);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    int flags = fcntl(fd, F_GETFL, 0);
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    if (u < 0)
        return -1;
    /* Connect blocking (a local socket answers at once), then hand wrk the
     * descriptor number it knows, with its flags. */
    int rc = real_connect(u, (const struct sockaddr *)&sa, sizeof sa);
    if (rc == 0 && dup2(u, fd) < 0)
        rc = -1;
    int saved = errno;
    close(u);
    if (rc == 0 && flags >= 0)
        fcntl(fd, F_SETFL, flags);
    errno = saved;
    return rc;
}
