/*
 * netwhod.c -- the netwho REST server: options, listeners, signals, lifecycle.
 *
 * Start-up order: parse options, create the store if needed, bind the
 * sockets ourselves (so port 0 can be reported, and a Unix socket gets its
 * mode and stale-file handling), block the stop signals (every thread
 * started afterwards inherits the mask, so only the main thread's sigwait
 * ever sees them), start the ingest thread, then one MHD daemon per
 * listener.  Shutdown runs that in reverse: the daemons first (they finish
 * in-flight requests, which may wait on the ingest thread), then ingest,
 * then the socket file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "netwhod.h"
#include "netwho/hourly.h"
#include "netwho/metrics.h"
#include "netwho/store.h"

#ifndef NETWHO_OPENAPI_PATH
#define NETWHO_OPENAPI_PATH "openapi.yaml"
#endif

/* Pending connections the kernel queues before MHD accepts them. */
#define NWD_LISTEN_BACKLOG 128

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char usage[] =
    "usage: netwhod --store DIR [options]\n"
    "\n"
    "Serves the netwho REST API (see openapi.yaml) over HTTP on TCP and/or a\n"
    "Unix socket, and ingests events POSTed to /api/v1/events into the store.\n"
    "\n"
    "options:\n"
    "  --store DIR          the store (created if it does not exist)\n"
    "  --listen HOST:PORT   TCP listener (default 127.0.0.1:8080; port 0 picks a\n"
    "                       free port, reported on standard error); [::1]:8080\n"
    "                       for IPv6.  A non-loopback HOST needs --token-file.\n"
    "  --no-listen          no TCP listener (use with --socket)\n"
    "  --socket PATH        also serve on a Unix socket (mode 0660):\n"
    "                       curl --unix-socket PATH http://x/api/v1/health\n"
    "  --token-file FILE    require 'Authorization: Bearer <token>' on TCP, the\n"
    "                       token being FILE's first line\n"
    "  --cors ORIGIN        allow browser pages from ORIGIN (scheme://host[:port],\n"
    "                       repeatable) or from any origin (*)\n"
    "  --host NAME          host for POSTed events whose system.computer is empty\n"
    "  --no-ingest          refuse POST /api/v1/events (read-only server)\n"
    "  --openapi PATH       the openapi.yaml served at /openapi.yaml\n"
    "  --fifo PATH          create a named pipe and ingest what is written to it\n"
    "  --follow FILE        ingest FILE and what is appended to it, like tail -F:\n"
    "                       rotation and truncation are followed, a missing file\n"
    "                       is waited for; the read offset is committed with the\n"
    "                       data, so a restart (even after kill -9) goes on where\n"
    "                       the last commit ended.  Repeatable.\n"
    "  --stdin              ingest standard input to its end\n"
    "  --retention-days N   in the background, drop whole partitions (oldest\n"
    "                       first) whose span ended more than N days ago\n"
    "  --max-store-bytes N  ... and the oldest partitions while the store is larger\n"
    "                       than N bytes (K, M, G suffixes); whichever comes first\n"
    "  --rollup-retention-days N  ... and delete hourly roll-up rows (GET\n"
    "                       /api/v1/stats/hourly) older than N days (default 400;\n"
    "                       0 keeps them forever); dropping partitions keeps them\n"
    "  --retention-interval SECONDS  how often retention runs (default 300)\n"
    "  --stale-after DURATION  /api/v1/health answers 503 when a host's newest\n"
    "                       event is older than DURATION (90s, 15m, 2h, 1d);\n"
    "                       default: never\n"
    "  --stall-after SECONDS  /api/v1/health answers 503 (ingest stalled) while\n"
    "                       one batch has run longer (default 60; 90s, 2m)\n"
    "  --ingest-queue-bytes N  POST bodies held at once (default 128M); past it\n"
    "                       POST /api/v1/events answers 503 with Retry-After\n"
    "  --log-file PATH      write the log to PATH (appended) instead of standard\n"
    "                       error; SIGHUP reopens it (for logrotate)\n"
    "  -h, --help           this text\n"
    "\n"
    "When the store cannot be written (a full disk, an I/O or SQLite error),\n"
    "ingest turns off: the error is logged and shown in /api/v1/health (503) and\n"
    "/metrics (netwhod_ingest_up 0), POSTs get 503 with Retry-After, live\n"
    "sources wait with their batch, queries go on.  It is retried after 1, 2, 4,\n"
    "8 seconds and turns on again by itself once the store is writable.  A store\n"
    "on a read-only mount is served for queries, with ingest off from the start.\n"
    "\n"
    "At start the newest partition is checked (PRAGMA quick_check, schema\n"
    "version); a problem is logged and shown in /api/v1/health.\n"
    "\n"
    "SIGINT/SIGTERM stop it cleanly: in-flight requests finish, the store is\n"
    "closed.  SIGHUP reopens --log-file.  Exit 0 after a clean stop, 1 on a runtime error, 2 on a usage error.\n";

void nwd_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One write per line, so lines of concurrent threads never interleave. */
    fprintf(stderr, "netwhod: %s\n", line);
    fflush(stderr);
}

/* --------------------------------------------------------------- token */

static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        nwd_log("--token-file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = calloc(1, NWD_TOKEN_MAX + 2);
    size_t n = buf ? fread(buf, 1, NWD_TOKEN_MAX + 1, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    if (n > NWD_TOKEN_MAX) {
        nwd_log("--token-file %s: longer than %d bytes", path, NWD_TOKEN_MAX);
        free(buf);
        return NULL;
    }
    buf[strcspn(buf, "\r\n")] = '\0';        /* the first line */
    size_t len = strlen(buf);
    while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = '\0';
    if (len < 16) {
        nwd_log("--token-file %s: the token must be at least 16 characters", path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* ----------------------------------------------------------- listeners */

/* "HOST:PORT" or "[V6]:PORT" -> host and port strings (in buf). */
static int split_hostport(const char *s, char *buf, size_t cap, const char **host,
                          const char **port)
{
    if (strlen(s) >= cap)
        return -1;
    strcpy(buf, s);
    char *colon;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close || close[1] != ':')
            return -1;
        *close = '\0';
        *host = buf + 1;
        colon = close + 1;
    } else {
        colon = strrchr(buf, ':');
        if (!colon)
            return -1;
        *colon = '\0';
        *host = buf;
    }
    *port = colon + 1;
    char *end;
    long p = strtol(*port, &end, 10);
    if (!**port || *end || p < 0 || p > 65535 || !**host)
        return -1;
    return 0;
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        static const unsigned char v4map[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return 1;
        return memcmp(in6->sin6_addr.s6_addr, v4map, 12) == 0 &&
               in6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

/* Binds and listens on HOST:PORT; *loopback says whether it is local only.
 * url[cap] gets the address actually bound (the port, when 0 was asked),
 * which main logs once everything is ready. */
static int tcp_listen(const char *spec, int *loopback, char *url, size_t cap)
{
    char buf[300];
    const char *host, *port;
    if (split_hostport(spec, buf, sizeof buf, &host, &port)) {
        nwd_log("--listen: expected HOST:PORT or [IPV6]:PORT, got '%s'", spec);
        return -2;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        nwd_log("--listen %s: %s", spec, gai_strerror(rc));
        return -2;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, NWD_LISTEN_BACKLOG) != 0) {
        nwd_log("--listen %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    *loopback = is_loopback(res->ai_addr);
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[INET6_ADDRSTRLEN] = "?";
    int bound_port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
            bound_port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
            bound_port = ntohs(in6->sin6_port);
        }
    }
    snprintf(url, cap, "http://%s%s%s:%d/", ss.ss_family == AF_INET6 ? "[" : "", addr,
             ss.ss_family == AF_INET6 ? "]" : "", bound_port);
    return fd;
}

/* A Unix socket at path, mode 0660.  A stale socket file (nobody answers
 * on it) is replaced; a live one, or any other kind of file, is an error. */
static int unix_listen(const char *path)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path) {
        nwd_log("--socket: path longer than %zu bytes", sizeof sun.sun_path - 1);
        return -1;
    }
    strcpy(sun.sun_path, path);
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            nwd_log("--socket %s: exists and is not a socket; not replacing it", path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            nwd_log("--socket %s: another server is answering on it", path);
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* The umask makes the socket 0660 from its creation: no window in which
     * a chmod has not happened yet. */
    mode_t old = umask(0117);
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (rc != 0 || chmod(path, 0660) != 0 || listen(fd, NWD_LISTEN_BACKLOG) != 0) {
        nwd_log("--socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* A number unlikely to repeat across runs, mixed into every ETag. */
static uint64_t instance_id(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) ^
           ((uint64_t)getpid() << 40);
}

/* ------------------------------------------------------------- numbers */

/* "N" with an optional K/M/G/T suffix (powers of 1024) -> *out; -1 if not. */
static int parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || s[0] == '-')
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: return -1;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* "90", "90s", "15m", "2h", "1d" -> seconds (> 0); -1 if not. */
static int parse_duration(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v <= 0)
        return -1;
    int64_t mul = 1;
    switch (*end) {
    case 0: break;
    case 's': mul = 1; end++; break;
    case 'm': mul = 60; end++; break;
    case 'h': mul = 3600; end++; break;
    case 'd': mul = 86400; end++; break;
    default: return -1;
    }
    if (*end || v > (INT64_MAX / NW_TICKS_PER_SEC) / mul)
        return -1;
    *out = v * mul;
    return 0;
}

/* ---------------------------------------------------------------- logs */

/*
 * Points standard error (where nwd_log and everything else writes) at path,
 * opened for appending, created mode 0640.  Called at start and on SIGHUP,
 * after logrotate renamed the file: dup2 swaps the descriptor in one step,
 * so no line is lost or split between the two files.  0, or -1 with the
 * reason logged to the old standard error.
 */
static int log_reopen(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        nwd_log("--log-file %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = dup2(fd, STDERR_FILENO) < 0 ? -1 : 0;
    if (rc)
        nwd_log("--log-file %s: %s", path, strerror(errno));
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    enum { O_STORE = 256, O_LISTEN, O_NOLISTEN, O_SOCKET, O_TOKEN, O_CORS, O_HOST, O_NOINGEST,
           O_OPENAPI, O_FIFO, O_FOLLOW, O_STDIN, O_RETDAYS, O_MAXBYTES, O_ROLLDAYS, O_RETEVERY,
           O_STALE, O_QUEUE, O_LOGFILE, O_STALL };
    static const struct option opts[] = {
        {"store", required_argument, 0, O_STORE},
        {"listen", required_argument, 0, O_LISTEN},
        {"no-listen", no_argument, 0, O_NOLISTEN},
        {"socket", required_argument, 0, O_SOCKET},
        {"token-file", required_argument, 0, O_TOKEN},
        {"cors", required_argument, 0, O_CORS},
        {"host", required_argument, 0, O_HOST},
        {"no-ingest", no_argument, 0, O_NOINGEST},
        {"openapi", required_argument, 0, O_OPENAPI},
        {"fifo", required_argument, 0, O_FIFO},
        {"follow", required_argument, 0, O_FOLLOW},
        {"stdin", no_argument, 0, O_STDIN},
        {"retention-days", required_argument, 0, O_RETDAYS},
        {"rollup-retention-days", required_argument, 0, O_ROLLDAYS},
        {"max-store-bytes", required_argument, 0, O_MAXBYTES},
        {"retention-interval", required_argument, 0, O_RETEVERY},
        {"stale-after", required_argument, 0, O_STALE},
        {"ingest-queue-bytes", required_argument, 0, O_QUEUE},
        {"log-file", required_argument, 0, O_LOGFILE},
        {"stall-after", required_argument, 0, O_STALL},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *store_dir = NULL, *listen_spec = "127.0.0.1:8080", *socket_path = NULL,
               *token_file = NULL, *host = NULL,
               *openapi = NETWHO_OPENAPI_PATH;
    int no_listen = 0, no_ingest = 0, use_stdin = 0, c;
    nwd_ingest_limits lim = {.retention_every_s = 300};
    lim.retention.rollup_days = NW_ROLLUP_RETENTION_DAYS_DEFAULT;
    int rollup_days_given = 0;
    int64_t stale_after = 0;
    const char *fifo_path = NULL, *log_file = NULL;
    const char *cors[NWD_MAX_CORS];
    int ncors = 0;
    const char *follow[16];
    int nfollow = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_STORE: store_dir = optarg; break;
        case O_LOGFILE: log_file = optarg; break;
        case O_LISTEN: listen_spec = optarg; break;
        case O_NOLISTEN: no_listen = 1; break;
        case O_SOCKET: socket_path = optarg; break;
        case O_TOKEN: token_file = optarg; break;
        case O_CORS:
            if (ncors == NWD_MAX_CORS) {
                nwd_log("--cors: at most %d origins", NWD_MAX_CORS);
                return EXIT_USAGE;
            }
            if (!optarg[0] || strpbrk(optarg, "\r\n,") ||
                (strcmp(optarg, "*") != 0 && !strstr(optarg, "://"))) {
                nwd_log("--cors: expected * or an origin such as https://dash.example:8443,"
                        " got '%s'", optarg);
                return EXIT_USAGE;
            }
            cors[ncors++] = optarg;
            break;
        case O_HOST:
            if (!optarg[0] || strlen(optarg) >= 256) {
                nwd_log("--host: expected a name of 1 to 255 bytes");
                return EXIT_USAGE;
            }
            host = optarg;
            break;
        case O_NOINGEST: no_ingest = 1; break;
        case O_OPENAPI: openapi = optarg; break;
        case O_FIFO:
            if (fifo_path) {
                nwd_log("--fifo: only one");
                return EXIT_USAGE;
            }
            fifo_path = optarg;
            break;
        case O_FOLLOW:
            if (nfollow == (int)(sizeof follow / sizeof follow[0])) {
                nwd_log("--follow: at most %zu files", sizeof follow / sizeof follow[0]);
                return EXIT_USAGE;
            }
            follow[nfollow++] = optarg;
            break;
        case O_STDIN: use_stdin = 1; break;
        case O_RETDAYS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!optarg[0] || *end || v < 1 || v > 36500) {
                nwd_log("--retention-days: expected a number of days from 1 to 36500");
                return EXIT_USAGE;
            }
            lim.retention.days = (int)v;
            break;
        }
        case O_ROLLDAYS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!optarg[0] || *end || v < 0 || v > 36500) {
                nwd_log("--rollup-retention-days: expected a number of days from 0 to 36500");
                return EXIT_USAGE;
            }
            lim.retention.rollup_days = (int)v;
            rollup_days_given = 1;
            break;
        }
        case O_MAXBYTES:
            if (parse_bytes(optarg, &lim.retention.max_bytes) || !lim.retention.max_bytes) {
                nwd_log("--max-store-bytes: expected a size such as 500000000 or 20G");
                return EXIT_USAGE;
            }
            break;
        case O_RETEVERY: {
            int64_t v;
            if (parse_duration(optarg, &v) || v > 86400) {
                nwd_log("--retention-interval: expected 1 to 86400 seconds (or 5m, 1h)");
                return EXIT_USAGE;
            }
            lim.retention_every_s = (unsigned)v;
            break;
        }
        case O_STALE:
            if (parse_duration(optarg, &stale_after)) {
                nwd_log("--stale-after: expected a duration such as 90s, 15m, 2h or 1d");
                return EXIT_USAGE;
            }
            break;
        case O_STALL: {
            int64_t v;
            if (parse_duration(optarg, &v) || v > 86400) {
                nwd_log("--stall-after: expected 1 to 86400 seconds (or 90s, 15m, 1h)");
                return EXIT_USAGE;
            }
            lim.stall_s = (unsigned)v;
            break;
        }
        case O_QUEUE:
            if (parse_bytes(optarg, &lim.queue_bytes) || lim.queue_bytes < 64 * 1024) {
                nwd_log("--ingest-queue-bytes: expected a size of at least 64K");
                return EXIT_USAGE;
            }
            break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default:
            nwd_log("unknown or incomplete option '%s' (see netwhod --help)", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        nwd_log("unexpected argument '%s'", argv[optind]);
        return EXIT_USAGE;
    }
    if (!store_dir) {
        nwd_log("--store DIR is required");
        return EXIT_USAGE;
    }
    if (log_file && log_reopen(log_file) != 0)
        return EXIT_USAGE;
    if (no_listen && !socket_path) {
        nwd_log("--no-listen needs --socket PATH: there would be nothing to serve on");
        return EXIT_USAGE;
    }

    if (no_ingest && (fifo_path || nfollow || use_stdin)) {
        nwd_log("--no-ingest cannot be used with --fifo, --follow or --stdin");
        return EXIT_USAGE;
    }
    if (no_ingest && (lim.retention.days || lim.retention.max_bytes || rollup_days_given)) {
        /* Retention needs the writer, which a read-only server never takes. */
        nwd_log("--no-ingest cannot be used with --retention-days, --max-store-bytes or "
                "--rollup-retention-days");
        return EXIT_USAGE;
    }
    if (no_ingest)
        lim.retention.rollup_days = 0;   /* the default: nothing to run */

    char *token = NULL;
    if (token_file && !(token = read_token(token_file)))
        return EXIT_USAGE;

    /* Create the store up front: request threads open it read-only. */
    nw_err err = {{0}};
    nw_store *store = NULL;
    nw_store_opts so = {.partition = NW_PART_DEFAULT, .create = 1};
    if (nw_store_open(store_dir, &so, &store, &err) != NW_OK) {
        nwd_log("%s", err.msg);
        free(token);
        return EXIT_RUNTIME;
    }
    nw_store_close(store);
    /* Before ingest writes anything: the newest partition and the schema. */
    char *store_problem = nwd_store_check(store_dir);

    int rc = EXIT_RUNTIME;
    int tcp_fd = -1, unix_fd = -1, loopback = 1, socket_made = 0;
    char tcp_url[INET6_ADDRSTRLEN + 16] = "";
    nwd_ingest *ingest = NULL;
    nwd_sources *sources = NULL;
    nwd_listener *tcp_l = NULL, *unix_l = NULL;
    nw_metrics *metrics = nw_metrics_new();
    if (!metrics)
        goto done;
    if (!no_listen) {
        tcp_fd = tcp_listen(listen_spec, &loopback, tcp_url, sizeof tcp_url);
        if (tcp_fd < 0) {
            rc = tcp_fd == -2 ? EXIT_USAGE : EXIT_RUNTIME;
            goto done;
        }
        if (!loopback && !token) {
            nwd_log("--listen %s is reachable from other machines: --token-file is required",
                    listen_spec);
            rc = EXIT_USAGE;
            goto done;
        }
    }
    if (socket_path) {
        if ((unix_fd = unix_listen(socket_path)) < 0)
            goto done;
        socket_made = 1;
    }

    /* From here on, every thread inherits a mask that blocks the stop
     * signals; the main thread takes them with sigwait. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!no_ingest && nwd_ingest_start(store_dir, host, &lim, &ingest, &err) != NW_OK) {
        nwd_log("ingest: %s", err.msg);
        goto done;
    }
    if (ingest && (fifo_path || nfollow || use_stdin)) {
        sources = nwd_sources_new(ingest, host);
        if (!sources)
            goto done;
        if (fifo_path && nwd_sources_add(sources, NWD_SRC_FIFO, fifo_path) != 0)
            goto done;
        for (int i = 0; i < nfollow; i++)
            if (nwd_sources_add(sources, NWD_SRC_FOLLOW, follow[i]) != 0)
                goto done;
        if (use_stdin && nwd_sources_add(sources, NWD_SRC_STDIN, "-") != 0)
            goto done;
        if (nwd_sources_start(sources) != 0)
            goto done;
    }
    nw_api_env env = {
        .store_dir = store_dir,
        .openapi_path = openapi,
        .ingest = ingest ? nwd_ingest_submit : NULL,
        .ingest_stats = ingest ? nwd_ingest_stats : NULL,
        .ingest_ctx = ingest,
        .metrics = metrics,
        .sources = sources ? nwd_sources_status : NULL,
        .sources_ctx = sources,
        .store_problem = store_problem,
        .stale_after_s = stale_after,
        .instance = instance_id(),
    };
    nwd_http_conf conf = {.env = &env, .store_dir = store_dir, .token = token,
                          .ingest = ingest,
                          .cors_origins = cors, .ncors = ncors};
    if (tcp_fd >= 0) {
        tcp_l = nwd_http_start(tcp_fd, token != NULL, &conf);
        if (!tcp_l)
            goto done;
        tcp_fd = -1;                 /* MHD owns and closes it now */
    }
    if (unix_fd >= 0) {
        /* The socket file's permissions are its access control. */
        unix_l = nwd_http_start(unix_fd, 0, &conf);
        if (!unix_l)
            goto done;
        unix_fd = -1;
    }
    /* Said only now, when the sources are open too: a client or a test
     * that starts on this line finds the FIFO it was promised. */
    if (tcp_l)
        nwd_log("listening on %s", tcp_url);
    if (unix_l)
        nwd_log("listening on unix:%s", socket_path);
    nwd_log("serving store %s%s", store_dir, ingest ? "" : " (read-only)");

    for (;;) {
        int sig = 0;
        if (sigwait(&stop_set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            if (!log_file) {
                nwd_log("SIGHUP: logs go to standard error; nothing to reopen");
            } else if (log_reopen(log_file) == 0) {
                nwd_log("SIGHUP: reopened %s", log_file);
            }
            continue;
        }
        nwd_log("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    rc = EXIT_OK;

done:
    /* Listeners first: in-flight requests finish, and may need ingest. */
    nwd_http_stop(tcp_l);
    nwd_http_stop(unix_l);
    /* Then the readers: what they read is ingested before ingest stops. */
    nwd_sources_stop(sources);
    nwd_ingest_stop(ingest);
    if (tcp_fd >= 0)
        close(tcp_fd);
    if (unix_fd >= 0)
        close(unix_fd);
    if (socket_made)
        unlink(socket_path);         /* MHD closes the fd, never the file */
    nw_metrics_free(metrics);
    free(token);
    free(store_problem);
    if (rc == EXIT_OK)
        nwd_log("stopped");
    return rc;
}
