/* tcplab-capture: records every TCP segment on this node's interfaces, for tcplab's ladder, wire checks and
 * traces.
 *
 *   tcplab-capture start     start the recorder in the background (once; a second start is a no-op) and return
 *                            when its socket is open, so nothing sent after this is missed (or after 3 s at
 *                            most, on a machine too loaded to start it sooner: the setup goes on)
 *   tcplab-capture status    print the recorder's counters (pid, segments written, dropped by the kernel, newest
 *                            file) and whether it is running
 *   tcplab-capture run       the recorder itself, in the foreground
 *
 * An AF_PACKET socket needs only CAP_NET_RAW (a lab node has it), unlike tcpdump's privilege drop. It sees a
 * segment after the OUTPUT and POSTROUTING chains on its way out, and before PREROUTING on its way in: a segment
 * that the node's own OUTPUT chain drops never shows here (its iptables counter does).
 *
 * Output, in /tmp/tcplab-capture: seg.N files of at most FILE_BYTES, one line per segment, newest file last;
 * only the last KEEP_FILES files are kept (the engine reads them as they grow, so this bounds the node's tmpfs,
 * not what tcplab sees). A line:
 *   SECONDS.NANOSECONDS IFNAME IFINDEX in|out HEX ORIGLEN
 * with the kernel's receive/send timestamp (SO_TIMESTAMPNS: CLOCK_REALTIME, the clock tcplab-observe stamps ss
 * with), and HEX the IP and TCP headers only (no payload: ORIGLEN says how long the packet was). Loopback is
 * left out: lab traffic goes between machines, and lo shows every segment twice. src/observe/segments.ts reads
 * these lines, through tcplab-observe --segments.
 *
 * Why C: this runs in every node for the whole life of a lab. A Python interpreter cost ~4.7 MB of private
 * memory per node; this costs a few hundred KB (glibc's pages are shared with every other process of the
 * image). It is built with tcc in the image's `shim` stage (no gcc), against glibc's headers, and only the
 * binary reaches the image. It replaces a Python script line for line: same commands, files, format and
 * status counters (test/docker/capture-recorder.test.ts checks them on a real node).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIR "/tmp/tcplab-capture"
#define FILE_BYTES (512 * 1024)
#define READY_TIMEOUT_MS 3000
#define KEEP_FILES 4
/* Headers only: IPv4 60 + TCP 60 at most (IPv6: 40 + 60, under MAX_HEADER + 20). */
#define MAX_HEADER 120
/* Enough for any header kept; recvmsg(MSG_TRUNC) still tells the packet's whole length, so the kernel copies
 * only this much of each packet. */
#define SNAP 256
/* The length reported for a packet is capped where a 64 KiB read would have cut it (the format's ORIGLEN
 * never exceeded that; IPv4's total length cannot either). */
#define MAX_ORIGLEN 65535
#define STATUS_EVERY_MS 1000

/* struct tpacket_stats of <linux/if_packet.h>, which clashes with glibc's <netpacket/packet.h>. */
struct packet_stats {
  unsigned int packets;
  unsigned int drops;
};

static void die(int code, const char *fmt, ...) {
  va_list ap;
  fputs("tcplab-capture: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(code);
}

static int alive(long pid) { return pid > 0 && kill((pid_t)pid, 0) == 0; }

static long read_pid(void) {
  char buf[32];
  long pid = 0;
  int fd = open(DIR "/pid", O_RDONLY);
  ssize_t n;
  if (fd < 0) return 0;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  if (sscanf(buf, "%ld", &pid) != 1 || pid < 0) return 0;
  return pid;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The length of the IP+TCP headers of a TCP packet (what is kept of it), or 0 for anything else. */
static size_t headers(const unsigned char *p, size_t len) {
  size_t ihl, doff, n;
  if (len < 20) return 0;
  switch (p[0] >> 4) {
  case 4:
    ihl = (size_t)(p[0] & 0x0F) * 4;
    if (p[9] != 6 || len < ihl + 20) return 0;
    /* A fragment other than the first carries no TCP header. */
    if (((p[6] << 8) | p[7]) & 0x1FFF) return 0;
    doff = (size_t)(p[ihl + 12] >> 4) * 4;
    n = ihl + doff;
    if (n > MAX_HEADER) n = MAX_HEADER;
    return n < len ? n : len;
  case 6:
    /* Next header TCP, no extension headers. */
    if (p[6] != 6 || len < 60) return 0;
    doff = (size_t)(p[40 + 12] >> 4) * 4;
    n = 40 + doff;
    if (n > MAX_HEADER + 20) n = MAX_HEADER + 20;
    return n < len ? n : len;
  }
  return 0;
}

/* The segment files: seg.GEN, appended one whole line per write(2). */
static int seg_fd = -1;
static unsigned long gen;
static size_t seg_size;

static int rotate(void) {
  char path[64];
  if (seg_fd >= 0) close(seg_fd);
  gen++;
  snprintf(path, sizeof path, DIR "/seg.%lu", gen);
  /* O_APPEND: after a failed write is cut back (see put_line), the next line goes where it should. */
  seg_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0666);
  if (seg_fd < 0) {
    fprintf(stderr, "tcplab-capture: %s: %s\n", path, strerror(errno));
    return -1;
  }
  seg_size = 0;
  if (gen > KEEP_FILES) {
    snprintf(path, sizeof path, DIR "/seg.%lu", gen - KEEP_FILES);
    unlink(path);
  }
  return 0;
}

/* One write per line: a reader sees whole lines, or a tail it leaves for next time. Returns 1 if the line was
 * written, 0 if not (a full /tmp: the line is lost, the recorder goes on), -1 if no file could be opened. */
static int put_line(const char *line, size_t n) {
  ssize_t w;
  if (seg_size + n > FILE_BYTES && rotate() < 0) return -1;
  w = write(seg_fd, line, n);
  if (w == (ssize_t)n) {
    seg_size += n;
    return 1;
  }
  /* Never leave half a line: the next one would be glued to it. */
  if (w > 0 && ftruncate(seg_fd, (off_t)seg_size) != 0) seg_size += (size_t)w;
  return 0;
}

struct stats {
  long pid;
  unsigned long long segments, kernel_drops;
  unsigned long gen;
};

static int write_status(const struct stats *st) {
  char buf[160];
  int n = snprintf(buf, sizeof buf, "pid %ld\nsegments %llu\nkernel_drops %llu\ngen %lu\n", st->pid, st->segments,
                   st->kernel_drops, st->gen);
  int fd = open(DIR "/status.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0666);
  ssize_t w;
  if (fd < 0) return -1;
  w = write(fd, buf, (size_t)n);
  close(fd);
  if (w != n) return -1;
  return rename(DIR "/status.tmp", DIR "/status");
}

static const char HEX[] = "0123456789abcdef";

/* The recorder. ready_fd (>= 0 under `start`) gets "ok" once the socket is open and the first file exists.
 * Returns only on an error, said on stderr (under `start`: the log that start reports). */
static int run(int ready_fd) {
  int s, one = 1, rcvbuf = 1 << 20;
  char line[512];
  unsigned char pkt[SNAP];
  union {
    char buf[CMSG_SPACE(sizeof(struct timespec)) + 64];
    struct cmsghdr align;
  } ctl;
  struct stats st;
  long long last_status;
  int dirty = 0;
  FILE *f;

  mkdir(DIR, 0777);
  s = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_ALL));
  if (s < 0) {
    fprintf(stderr, "tcplab-capture: packet socket: %s\n", strerror(errno));
    return 1;
  }
  if (setsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0 ||
      setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0) {
    fprintf(stderr, "tcplab-capture: setsockopt: %s\n", strerror(errno));
    return 1;
  }
  f = fopen(DIR "/pid", "w");
  if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
    fprintf(stderr, "tcplab-capture: " DIR "/pid: %s\n", strerror(errno));
    return 1;
  }
  if (rotate() < 0) return 1;
  st.pid = (long)getpid();
  st.segments = st.kernel_drops = 0;
  st.gen = gen;
  if (write_status(&st) != 0) {
    fprintf(stderr, "tcplab-capture: " DIR "/status: %s\n", strerror(errno));
    return 1;
  }
  if (ready_fd >= 0) {
    /* A start that gave up waiting (3 s, on a loaded machine) has closed its end: the write fails (EPIPE, not
     * SIGPIPE, which is ignored) and the recorder goes on, joining the lab late rather than not at all. */
    signal(SIGPIPE, SIG_IGN);
    if (write(ready_fd, "ok", 2) != 2) fputs("tcplab-capture: start stopped waiting; recording anyway\n", stderr);
    close(ready_fd);
  }
  last_status = now_ms();

  for (;;) {
    struct sockaddr_ll addr;
    struct iovec iov;
    struct msghdr msg;
    struct cmsghdr *c;
    struct ifreq ifr;
    struct timespec ts;
    ssize_t n;
    size_t h, i, len, pos;
    int got_ts = 0, r;

    /* The status file is never more than a second behind; with nothing new, the recorder sleeps in poll
     * instead of waking every second (a lab sits idle most of the time). Kernel drops happen only while
     * packets arrive, so they are read in time too. */
    if (dirty || st.gen != gen) {
      long long wait = STATUS_EVERY_MS - (now_ms() - last_status);
      if (wait <= 0 || st.gen != gen) {
        struct packet_stats ps;
        socklen_t pl = sizeof ps;
        /* Reading the counters resets them: add up. */
        if (getsockopt(s, SOL_PACKET, PACKET_STATISTICS, &ps, &pl) == 0) st.kernel_drops += ps.drops;
        st.gen = gen;
        write_status(&st);
        last_status = now_ms();
        dirty = 0;
        continue;
      }
      {
        struct pollfd pfd;
        pfd.fd = s;
        pfd.events = POLLIN;
        pfd.revents = 0;
        r = poll(&pfd, 1, (int)wait);
        if (r == 0 || (r < 0 && errno == EINTR)) continue;
      }
    }

    iov.iov_base = pkt;
    iov.iov_len = sizeof pkt;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &addr;
    msg.msg_namelen = sizeof addr;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    /* MSG_TRUNC: the return value is the packet's whole length, though only SNAP bytes are copied. */
    n = recvmsg(s, &msg, MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      fprintf(stderr, "tcplab-capture: recvmsg: %s\n", strerror(errno));
      return 1;
    }
    dirty = 1;
    if (addr.sll_protocol != htons(ETHERTYPE_IP) && addr.sll_protocol != htons(ETHERTYPE_IPV6)) continue;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = addr.sll_ifindex;
    /* The name now, not a cached one: a lab renames and re-creates interfaces (tcplab-net's tunnels). An
     * interface gone before its packet was read cannot be named: that packet is skipped. */
    if (ioctl(s, SIOCGIFNAME, &ifr) != 0) continue;
    if (strcmp(ifr.ifr_name, "lo") == 0) continue;
    len = (size_t)n < sizeof pkt ? (size_t)n : sizeof pkt;
    h = headers(pkt, len);
    if (h == 0) continue;
    for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
          c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        got_ts = 1;
      }
    }
    if (!got_ts) clock_gettime(CLOCK_REALTIME, &ts);
    pos = (size_t)snprintf(line, sizeof line, "%lld.%09ld %s %d %s ", (long long)ts.tv_sec, (long)ts.tv_nsec,
                           ifr.ifr_name, addr.sll_ifindex, addr.sll_pkttype == PACKET_OUTGOING ? "out" : "in");
    for (i = 0; i < h; i++) {
      line[pos++] = HEX[pkt[i] >> 4];
      line[pos++] = HEX[pkt[i] & 0x0F];
    }
    pos += (size_t)snprintf(line + pos, sizeof line - pos, " %ld\n", (long)(n > MAX_ORIGLEN ? MAX_ORIGLEN : n));
    r = put_line(line, pos);
    if (r < 0) return 1;
    st.segments += (unsigned long long)r;
  }
}

static int start(void) {
  int p[2];
  pid_t child;
  long pid;
  struct pollfd pfd;
  char got[2];
  ssize_t n;
  long long deadline;
  int r;

  mkdir(DIR, 0777);
  pid = read_pid();
  if (alive(pid)) {
    printf("%ld\n", pid);
    return 0;
  }
  if (pipe(p) != 0) die(1, "pipe: %s", strerror(errno));
  child = fork();
  if (child < 0) die(1, "fork: %s", strerror(errno));
  if (child == 0) {
    int null, err;
    close(p[0]);
    setsid();
    /* Twice: the recorder is nobody's child and no session's leader, and `start` (the exec that runs it)
     * returns. */
    if (fork() != 0) _exit(0);
    null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      if (null > 2) close(null);
    }
    err = open(DIR "/log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err >= 0) {
      dup2(err, 2);
      if (err > 2) close(err);
    }
    _exit(run(p[1]) ? 1 : 0);
  }
  close(p[1]);
  waitpid(child, NULL, 0);
  /* Wait for the socket to be open, but not for ever: on a machine so loaded that the recorder takes seconds
   * to start, the node's setup (and the lab) goes on, and the recorder joins a moment later. */
  deadline = now_ms() + READY_TIMEOUT_MS;
  pfd.fd = p[0];
  pfd.events = POLLIN;
  for (;;) {
    long long left = deadline - now_ms();
    pfd.revents = 0;
    r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
    if (r < 0 && errno == EINTR) continue;
    break;
  }
  if (r <= 0) {
    fprintf(stderr, "still starting after %d s\n", READY_TIMEOUT_MS / 1000);
    return 0;
  }
  n = read(p[0], got, sizeof got);
  close(p[0]);
  if (n != 2 || memcmp(got, "ok", 2) != 0) {
    char reason[1024];
    int fd = open(DIR "/log", O_RDONLY);
    ssize_t m = fd >= 0 ? read(fd, reason, sizeof reason - 1) : -1;
    if (fd >= 0) close(fd);
    while (m > 0 && (reason[m - 1] == '\n' || reason[m - 1] == ' ')) m--;
    if (m <= 0) strcpy(reason, "no reason given");
    else reason[m] = 0;
    die(1, "the recorder did not start: %s", reason);
  }
  printf("%ld\n", read_pid());
  return 0;
}

static int status(void) {
  char buf[4096];
  ssize_t n;
  long pid;
  int fd = open(DIR "/status", O_RDONLY);
  if (fd < 0) die(1, "not started");
  while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
  close(fd);
  pid = read_pid();
  printf("running %d\n", alive(pid) ? 1 : 0);
  return 0;
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  if (strcmp(cmd, "start") == 0) return start();
  if (strcmp(cmd, "status") == 0) return status();
  if (strcmp(cmd, "run") == 0) return run(-1);
  die(2, "usage: tcplab-capture start|status|run");
  return 2;
}
