/* tcplab-agent: the grader's eyes and hands in one lab node, out of the student's reach.
 *
 *   tcplab-agent [--no-capture]      the agent itself: the node's main process and pid 1 (its image's CMD;
 *                                    no init of the engine's, which a student could make exit by signalling
 *                                    it: it forwards signals to its child and gives up when it may not). It
 *                                    reaps every orphan of the machine. It starts as root, becomes the user tcplab (AGENT_UID)
 *                                    keeping only NET_ADMIN and NET_RAW (ambient, so the lab commands it runs
 *                                    keep them too), and from then on serves requests on an abstract unix
 *                                    socket that only that user may use.
 *   tcplab-agent connect             a relay between the engine and the agent: `docker exec --user AGENT_UID`
 *                                    runs it; stdin and stdout carry the frames (src/observe/wire.ts).
 *   tcplab-agent student [--interrupt-on-eof] [--] CMD...
 *                                    runs CMD as the student: root, with NET_ADMIN and NET_RAW and nothing
 *                                    else, for good (`lab shell`, a submission's answer, a terminal of `lab
 *                                    serve`). With --interrupt-on-eof, CMD's standard input is a pipe that
 *                                    stays open (a terminal where nothing is typed) and the end of this
 *                                    program's own standard input is a Ctrl-C: SIGINT to CMD's process group;
 *                                    it ends with CMD's status as soon as CMD ends, on its own or so.
 *                                    One call is refused to it: setsockopt(TCP_REPAIR) (see no_repair).
 *                                    In a terminal, CMD starts once the terminal has a size (sized_terminal).
 *   tcplab-agent version
 *
 * Why a separate user. The student is root in their machines and reads this source. Whatever the grader
 * reads must not be something a student's process can print, write, kill or trace. Root without
 * CAP_KILL, CAP_SYS_PTRACE, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_SETUID (the student's processes have none of
 * them) cannot signal, trace, read the descriptors of, or become a process of another user: so the agent, the
 * relays and every lab command (all AGENT_UID) are out of reach, and the only channel into the agent is a
 * socket whose peer must be AGENT_UID (SO_PEERCRED, checked on both ends). The student can still change what
 * the agent sees in the one way that is allowed: the kernel's real state (sockets, rules, segments).
 *
 * What the agent answers (the wire format is frames of tagged fields, never text a lab could print, see
 * FRAMES below):
 *   LOOK    the node's TCP sockets (NETLINK_SOCK_DIAG with tcp_info, no process started), stamped with
 *           CLOCK_REALTIME; on request the segments recorded since a cursor, the status and bounded output
 *           of named commands, the iptables counters (iptables-save -c, the one fork, only when asked), and
 *           how many processes are runnable (a submission's answer has settled when none are). A look may wait
 *           (long poll) until something changed or a deadline passed: the agent then looks at the sockets
 *           itself, often right after a segment or a command's end, less and less often while nothing changes,
 *           and never when nobody waits.
 *   RUN     a lab command, foreground (answered when it ends: exit code or signal, bounded output, timeout
 *           like coreutils' timeout -k 1) or background (answered once started; its status read by LOOK).
 *   SIGNAL  a signal to a named command's process group (Ctrl-C is SIGINT).
 *   WRITE / CLOSE  bytes to a background command's standard input, or its end.
 *   WAKE    every waiting look of this reader answers now.
 *   HELLO   the protocol version, and whether the recorder runs.
 * The recorder is an AF_PACKET socket (CAP_NET_RAW) that keeps the IP and TCP headers of every TCP segment
 * sent or received on the node's interfaces (loopback and frames addressed to other machines left out), and
 * of every ICMP "destination unreachable" that quotes a TCP segment (a REJECT's other answer than a reset), in
 * a ring in memory, with the kernel's
 * timestamps (SO_TIMESTAMPNS: CLOCK_REALTIME, the clock of LOOK). Each segment has a sequence number; a
 * reader that falls behind the ring is told how many it missed, and the kernel's own drops are counted: a
 * reader can always tell "nothing was sent" from "nothing was seen".
 *
 * Built with tcc in the image's shim stage (no gcc), against glibc's and Linux's headers.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/seccomp.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VERSION "1"
#define PROTOCOL 1
#define AGENT_UID 990
#define AGENT_GID 990
/* Abstract names live in the node's network namespace: the agent and its relays meet there, and SO_PEERCRED
 * tells each that the other is AGENT_UID. */
#define SOCKET_NAME "tcplab-agent"

/* ---- FRAMES ------------------------------------------------------------------------------------------
 * A frame: u32 length of what follows (big-endian), then u32 seq, u8 kind, then fields: u8 tag, u32 length,
 * bytes. Numbers inside fields are big-endian. An answer has the seq of its request and kind 0x80|request
 * (or K_ERROR with an 'e' field). Nothing inside a field can end a frame or start another: every length is
 * explicit. src/observe/wire.ts is the other end and the reference. */
#define K_HELLO 1
#define K_LOOK 2
#define K_RUN 3
#define K_SIGNAL 4
#define K_WRITE 5
#define K_CLOSE 6
#define K_WAKE 7
#define K_OK 0x80
#define K_ERROR 0xFF

#define MAX_REQUEST (1u << 20)
#define MAX_CLIENT_BACKLOG (64u << 20)
#define MAX_CLIENTS 32
#define MAX_COMMANDS 96
#define KEEP_HALF (32 * 1024)
#define IPTABLES_MAX (4u << 20)
#define DEFAULT_TIMEOUT_MS 10000
#define KILL_AFTER_MS 1000

/* The recorder. */
#define SNAP 256
#define MAX_HEADER 120
#define MAX_ORIGLEN 65535
#define RING 16384

/* How often a waiting look re-reads the sockets: soon after anything happened (a segment, a command's start,
 * end or output), then less often, down to once a second. A socket changes state with a segment, except a
 * listener that opens or closes and a TIME_WAIT that ends: those, after a quiet second, are seen within one.
 * A read walks the host's whole TCP hash table (about a millisecond of CPU), so the quiet rate is the idle
 * cost of a watched machine. */
#define POLL_FIRST_MS 2
#define POLL_MIN_MS 5
#define POLL_MAX_MS 1000
/* The forced dump (for what moves no counter) comes every POLL_MAX_MS right after a change, and further apart
 * the longer nothing has changed, up to DUMP_IDLE_MAX_MS: a lab kept open with nothing happening dumps its
 * sockets every few seconds, not every second. */
#define DUMP_IDLE_MAX_MS 5000

static void die(int code, const char *fmt, ...) {
  va_list ap;
  fputs("tcplab-agent: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(code);
}

static long long mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static unsigned long long real_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (unsigned long long)t.tv_sec * 1000000000ULL + (unsigned long long)t.tv_nsec;
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }
static void cloexec(int fd) { fcntl(fd, F_SETFD, FD_CLOEXEC); }

/* ---- capabilities ---- */

static int capset3(unsigned long long perm, unsigned long long eff, unsigned long long inh) {
  struct __user_cap_header_struct h;
  struct __user_cap_data_struct d[2];
  h.version = _LINUX_CAPABILITY_VERSION_3;
  h.pid = 0;
  d[0].permitted = (uint32_t)perm;
  d[1].permitted = (uint32_t)(perm >> 32);
  d[0].effective = (uint32_t)eff;
  d[1].effective = (uint32_t)(eff >> 32);
  d[0].inheritable = (uint32_t)inh;
  d[1].inheritable = (uint32_t)(inh >> 32);
  return (int)syscall(SYS_capset, &h, d);
}

#define CAPBIT(c) (1ULL << (c))
#define NET_CAPS (CAPBIT(CAP_NET_ADMIN) | CAPBIT(CAP_NET_RAW))

/* Drop every capability but `keep` from the bounding set: no later exec, of anything, gets them back. */
static void bound_to(unsigned long long keep) {
  int c;
  for (c = 0; c < 64; c++)
    if (!(keep & CAPBIT(c)) && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1 && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0)
      die(1, "cannot drop capability %d: %s", c, strerror(errno));
}

/* Root -> AGENT_UID with NET_ADMIN and NET_RAW, ambient so that the lab commands it starts keep them. */
static void become_agent(void) {
  if (getuid() != 0) die(1, "must start as root (it becomes uid %d itself)", AGENT_UID);
  bound_to(NET_CAPS | CAPBIT(CAP_SETUID) | CAPBIT(CAP_SETGID) | CAPBIT(CAP_SETPCAP));
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) die(1, "keepcaps: %s", strerror(errno));
  if (setgroups(0, NULL) != 0 || setgid(AGENT_GID) != 0 || setuid(AGENT_UID) != 0)
    die(1, "cannot become uid %d: %s", AGENT_UID, strerror(errno));
  /* setuid cleared the effective set; SETPCAP is still permitted, for the last drops. */
  if (capset3(NET_CAPS | CAPBIT(CAP_SETPCAP), NET_CAPS | CAPBIT(CAP_SETPCAP), NET_CAPS) != 0)
    die(1, "capset: %s", strerror(errno));
  bound_to(NET_CAPS);
  if (capset3(NET_CAPS, NET_CAPS, NET_CAPS) != 0) die(1, "capset: %s", strerror(errno));
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) != 0 ||
      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) != 0)
    die(1, "ambient capabilities: %s", strerror(errno));
  prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
}

/* ---- growable byte buffers ---- */

struct buf {
  unsigned char *p;
  size_t len, cap, off; /* bytes [off, len) are unread */
};

static void buf_reserve(struct buf *b, size_t more) {
  if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
  if (b->len + more <= b->cap) return;
  if (b->off > 0) {
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->len + more <= b->cap) return;
  }
  {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) die(1, "out of memory");
    b->cap = cap;
  }
}

static void buf_put(struct buf *b, const void *data, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static size_t buf_unread(const struct buf *b) { return b->len - b->off; }

static void buf_free(struct buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void put_u8(struct buf *b, unsigned v) {
  unsigned char c = (unsigned char)v;
  buf_put(b, &c, 1);
}
static void put_u32(struct buf *b, uint32_t v) {
  unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
  buf_put(b, c, 4);
}
static void put_u64(struct buf *b, uint64_t v) {
  put_u32(b, (uint32_t)(v >> 32));
  put_u32(b, (uint32_t)v);
}
static uint32_t get_u32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t get_u64(const unsigned char *p) { return ((uint64_t)get_u32(p) << 32) | get_u32(p + 4); }

/* A frame being written into b: its length is filled in by frame_end. */
static size_t frame_begin(struct buf *b, uint32_t seq, unsigned kind) {
  size_t at;
  buf_reserve(b, 9);
  at = b->len;
  put_u32(b, 0);
  put_u32(b, seq);
  put_u8(b, kind);
  return at;
}
/* Fill in the 4-byte length at `at` (a frame's or a nested field's) with what was written after it. */
static void patch_len(struct buf *b, size_t at) {
  uint32_t n = (uint32_t)(b->len - at - 4);
  b->p[at] = (unsigned char)(n >> 24);
  b->p[at + 1] = (unsigned char)(n >> 16);
  b->p[at + 2] = (unsigned char)(n >> 8);
  b->p[at + 3] = (unsigned char)n;
}
static void frame_end(struct buf *b, size_t at) { patch_len(b, at); }
static void field(struct buf *b, unsigned tag, const void *data, size_t n) {
  put_u8(b, tag);
  put_u32(b, (uint32_t)n);
  if (n) buf_put(b, data, n);
}
static void field_u32(struct buf *b, unsigned tag, uint32_t v) {
  put_u8(b, tag);
  put_u32(b, 4);
  put_u32(b, v);
}
static void field_u8(struct buf *b, unsigned tag, unsigned v) {
  put_u8(b, tag);
  put_u32(b, 1);
  put_u8(b, v);
}
static void field_u64(struct buf *b, unsigned tag, uint64_t v) {
  put_u8(b, tag);
  put_u32(b, 8);
  put_u64(b, v);
}
static void field_str(struct buf *b, unsigned tag, const char *s) { field(b, tag, s, strlen(s)); }
/* A field whose content is written next; its length is patched by nest_end. */
static size_t nest_begin(struct buf *b, unsigned tag) {
  size_t at;
  put_u8(b, tag);
  at = b->len;
  put_u32(b, 0);
  return at;
}
static void nest_end(struct buf *b, size_t at) { patch_len(b, at); }

/* A request's fields, in order of appearance. */
struct req_field {
  unsigned tag;
  const unsigned char *p;
  uint32_t len;
};
#define MAX_FIELDS 512
struct request {
  uint32_t seq;
  unsigned kind;
  int n;
  struct req_field f[MAX_FIELDS];
};

static int parse_request(const unsigned char *p, uint32_t len, struct request *r) {
  uint32_t at = 5;
  if (len < 5) return -1;
  r->seq = get_u32(p);
  r->kind = p[4];
  r->n = 0;
  while (at < len) {
    uint32_t flen;
    if (len - at < 5 || r->n >= MAX_FIELDS) return -1;
    flen = get_u32(p + at + 1);
    if (flen > len - at - 5) return -1;
    r->f[r->n].tag = p[at];
    r->f[r->n].len = flen;
    r->f[r->n].p = p + at + 5;
    r->n++;
    at += 5 + flen;
  }
  return 0;
}

static const struct req_field *req_get(const struct request *r, unsigned tag) {
  int i;
  for (i = 0; i < r->n; i++)
    if (r->f[i].tag == tag) return &r->f[i];
  return NULL;
}
static int req_u32(const struct request *r, unsigned tag, uint32_t *out) {
  const struct req_field *f = req_get(r, tag);
  if (!f || f->len != 4) return 0;
  *out = get_u32(f->p);
  return 1;
}
static int req_u64(const struct request *r, unsigned tag, uint64_t *out) {
  const struct req_field *f = req_get(r, tag);
  if (!f || f->len != 8) return 0;
  *out = get_u64(f->p);
  return 1;
}
/* A name of a command: [a-z0-9_-]{1,63}. */
static int req_name(const struct request *r, char *out) {
  const struct req_field *f = req_get(r, 'n');
  uint32_t i;
  if (!f || f->len == 0 || f->len > 63) return 0;
  for (i = 0; i < f->len; i++) {
    unsigned char c = f->p[i];
    if (!(islower(c) || isdigit(c) || c == '_' || c == '-')) return 0;
  }
  memcpy(out, f->p, f->len);
  out[f->len] = 0;
  return 1;
}

/* ---- clients ---- */

struct client {
  int fd;
  unsigned id; /* never reused: a command's answer goes to the client that asked, if it is still there */
  struct buf in, out;
};
static struct client clients[MAX_CLIENTS];
static unsigned next_client_id = 1;

static struct client *client_by_id(unsigned id) {
  int i;
  for (i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd >= 0 && clients[i].id == id) return &clients[i];
  return NULL;
}

static void client_drop(struct client *c) {
  if (c->fd < 0) return;
  close(c->fd);
  c->fd = -1;
  buf_free(&c->in);
  buf_free(&c->out);
}

static void send_error(struct client *c, uint32_t seq, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  size_t at;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  at = frame_begin(&c->out, seq, K_ERROR);
  field_str(&c->out, 'e', msg);
  frame_end(&c->out, at);
}

/* ---- the recorder ---- */

struct segment {
  unsigned long long ts_ns;
  uint32_t ifindex;
  uint32_t origlen;
  unsigned char dir; /* 0 in, 1 out */
  unsigned char hlen;
  char ifname[IF_NAMESIZE];
  unsigned char hdr[MAX_HEADER];
};
static struct segment *ring;
static unsigned long long seg_next = 1; /* the sequence number the next segment gets */
static unsigned long long kernel_drops;
static int capture_fd = -1;
static char capture_error[200];
static int capture_wanted = 1;

/* /proc/net/ip_tables_names, opened while the agent is still root (the file is root's, mode 0440). A lab
 * command gets it as fd 3 (TCPLAB_IPT_NAMES_FD=3): tcplab-sock reads there which legacy tables exist, since
 * reading a legacy table makes it, and from then on every `iptables` a student types warns "iptables-legacy
 * tables present". -1 when the kernel has no legacy iptables loaded. */
static int ipt_names_fd = -1;

static void capture_open(void) {
  int one = 1, rcvbuf = 1 << 20;
  if (!capture_wanted) {
    snprintf(capture_error, sizeof capture_error, "capture is off in this lab (TCPLAB_CAPTURE=0)");
    return;
  }
  ring = calloc(RING, sizeof *ring);
  if (!ring) {
    snprintf(capture_error, sizeof capture_error, "no memory for the segment ring");
    return;
  }
  capture_fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (capture_fd < 0) {
    snprintf(capture_error, sizeof capture_error, "packet socket: %s", strerror(errno));
    return;
  }
  if (setsockopt(capture_fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0 ||
      setsockopt(capture_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0) {
    snprintf(capture_error, sizeof capture_error, "setsockopt: %s", strerror(errno));
    close(capture_fd);
    capture_fd = -1;
  }
}

/* The length of the TCP header, at most 20 bytes of it, that an ICMP error quotes at q (n bytes there): the
 * quoted IP header must say TCP and carry at least the ports and the sequence number (8 bytes). 0 if not. */
static size_t quoted_tcp(const unsigned char *q, size_t n, int v6) {
  size_t ih;
  if (v6) {
    if (n < 40 + 8 || q[6] != 6) return 0;
    ih = 40;
  } else {
    if (n < 20 + 8 || (q[0] >> 4) != 4 || q[9] != 6) return 0;
    ih = (size_t)(q[0] & 0x0F) * 4;
    if (ih < 20 || n < ih + 8) return 0;
  }
  return ih + (n - ih < 20 ? n - ih : 20);
}

/* The length of the IP+TCP headers of a TCP packet (what is kept of it), of the IP and ICMP headers and the
 * quoted IP and TCP headers of an ICMP destination unreachable about a TCP segment, or 0 for anything else. */
static size_t tcp_headers(const unsigned char *p, size_t len) {
  size_t ihl, doff, n, q;
  if (len < 20) return 0;
  switch (p[0] >> 4) {
  case 4:
    ihl = (size_t)(p[0] & 0x0F) * 4;
    if (ihl < 20) return 0;
    if (((p[6] << 8) | p[7]) & 0x1FFF) return 0; /* a later fragment carries no TCP header */
    if (p[9] == 1) { /* ICMP type 3: destination unreachable */
      if (len < ihl + 8 || p[ihl] != 3) return 0;
      q = quoted_tcp(p + ihl + 8, len - ihl - 8, 0);
      if (q == 0) return 0;
      n = ihl + 8 + q;
      break;
    }
    if (p[9] != 6 || len < ihl + 20) return 0;
    doff = (size_t)(p[ihl + 12] >> 4) * 4;
    n = ihl + doff;
    break;
  case 6:
    if (len >= 48 && p[6] == 58) { /* ICMPv6 type 1: destination unreachable */
      if (p[40] != 1) return 0;
      q = quoted_tcp(p + 48, len - 48, 1);
      if (q == 0) return 0;
      n = 48 + q;
      break;
    }
    if (len < 60 || p[6] != 6) return 0; /* next header TCP, no extension headers */
    doff = (size_t)(p[40 + 12] >> 4) * 4;
    n = 40 + doff;
    break;
  default:
    return 0;
  }
  if (n > MAX_HEADER) n = MAX_HEADER;
  return n < len ? n : len;
}

/* Would this machine's kernel take in a segment that arrived? A frame addressed to it, not to all (broadcast)
 * or a group (multicast): a router forwards neither, and TCP takes a unicast segment in neither. And for IPv4
 * a header whose checksum holds and whose length fits what arrived, that is no fragment (a first fragment
 * waits for the rest, which a forger need never send). A root student can put any frame on the wire with a
 * packet socket; one that fails here dies with no rule, so it must not count as having arrived. `len` bytes
 * of the packet were read, `whole` is its length. */
static int taken_in(const unsigned char *p, size_t len, size_t whole, unsigned char pkttype) {
  size_t ihl, tot, i;
  uint32_t sum = 0;
  if (pkttype != PACKET_HOST) return 0;
  if ((p[0] >> 4) != 4) return 1;
  ihl = (size_t)(p[0] & 0x0F) * 4;
  if (ihl < 20 || len < ihl) return 0;
  tot = (size_t)((p[2] << 8) | p[3]);
  if (tot < ihl || tot > whole) return 0;
  if (((p[6] << 8) | p[7]) & 0x3FFF) return 0; /* more fragments, or an offset */
  for (i = 0; i < ihl; i += 2) sum += (uint32_t)((p[i] << 8) | p[i + 1]);
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return sum == 0xFFFF;
}

static unsigned long long last_activity_ms;
static void activity(void);

/* Read every packet waiting on the socket. Returns how many TCP segments were kept. */
static int capture_read(void) {
  int kept = 0, budget = 4096;
  while (capture_fd >= 0 && budget-- > 0) {
    struct sockaddr_ll addr;
    struct iovec iov;
    struct msghdr msg;
    struct cmsghdr *c;
    struct ifreq ifr;
    struct timespec ts;
    unsigned char pkt[SNAP];
    union {
      char buf[CMSG_SPACE(sizeof(struct timespec)) + 64];
      struct cmsghdr align;
    } ctl;
    ssize_t n;
    size_t h, len;
    int got_ts = 0;
    struct segment *s;

    iov.iov_base = pkt;
    iov.iov_len = sizeof pkt;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &addr;
    msg.msg_namelen = sizeof addr;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    n = recvmsg(capture_fd, &msg, MSG_TRUNC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        snprintf(capture_error, sizeof capture_error, "recvmsg: %s", strerror(errno));
        close(capture_fd);
        capture_fd = -1;
      }
      break;
    }
    if (addr.sll_protocol != htons(ETHERTYPE_IP) && addr.sll_protocol != htons(ETHERTYPE_IPV6)) continue;
    /* A frame addressed to another machine's link address never entered this one (its kernel drops it): a
     * tunnel or a flooding bridge hands it over all the same, and kept as "in" it would say a segment arrived
     * here that the student had sent to nobody. */
    if (addr.sll_pkttype == PACKET_OTHERHOST) continue;
    len = (size_t)n < sizeof pkt ? (size_t)n : sizeof pkt;
    h = tcp_headers(pkt, len);
    if (h == 0) continue;
    if (addr.sll_pkttype != PACKET_OUTGOING && !taken_in(pkt, len, (size_t)n, addr.sll_pkttype)) continue;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = addr.sll_ifindex;
    /* The name now: labs rename and re-create interfaces (tcplab-net's tunnels). */
    if (ioctl(capture_fd, SIOCGIFNAME, &ifr) != 0) continue;
    if (strcmp(ifr.ifr_name, "lo") == 0) continue;
    for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
          c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        got_ts = 1;
      }
    if (!got_ts) clock_gettime(CLOCK_REALTIME, &ts);
    s = &ring[seg_next % RING];
    s->ts_ns = (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
    s->ifindex = (uint32_t)addr.sll_ifindex;
    s->origlen = (uint32_t)(n > MAX_ORIGLEN ? MAX_ORIGLEN : n);
    s->dir = addr.sll_pkttype == PACKET_OUTGOING ? 1 : 0;
    s->hlen = (unsigned char)h;
    memcpy(s->ifname, ifr.ifr_name, IF_NAMESIZE);
    memcpy(s->hdr, pkt, h);
    seg_next++;
    kept++;
  }
  return kept;
}

static void capture_stats(void) {
  struct {
    unsigned int packets, drops;
  } ps;
  socklen_t pl = sizeof ps;
  /* Reading the counters resets them: add up. */
  if (capture_fd >= 0 && getsockopt(capture_fd, SOL_PACKET, PACKET_STATISTICS, &ps, &pl) == 0) kernel_drops += ps.drops;
}

/* ---- the sockets, through sock_diag ---- */

struct sock_row {
  unsigned char family, state, timer, has_info;
  uint32_t retrans, expires, rqueue, wqueue;
  uint16_t sport, dport;
  unsigned char src[16], dst[16];
  /* tcp_info */
  uint32_t rto_us, retrans_now, total_retrans, unacked, lost, cwnd;
  uint64_t bytes_sent, bytes_retrans, bytes_acked, bytes_received;
};
static struct sock_row *rows;
static size_t nrows, rows_cap;
static unsigned long long rows_clock_ns;
static int diag_fd = -1;
/* Both families in one dump (TCPDIAG_GETSOCK, see diag_dump) until the kernel says it has no such request. */
static int diag_one_walk = 1;
static char diag_error[200];

static uint64_t fingerprint;

/* A dump walks every bucket of the kernel's TCP hash table, and a container's network namespace shares the
 * host's (262,144 buckets on a 24 GB host: about a millisecond of CPU per walk) unless the host sets
 * net.ipv4.tcp_child_ehash_entries. A SOCK_DIAG_BY_FAMILY request names one family, so IPv4 and IPv6 take
 * two walks; the older TCPDIAG_GETSOCK request (struct inet_diag_req, what ss used first) dumps both families
 * in one walk, with the same messages and tcp_info. family AF_UNSPEC asks for that one. */
static int diag_dump(int family) {
  union {
    struct {
      struct nlmsghdr nlh;
      struct inet_diag_req_v2 r;
    } v2;
    struct {
      struct nlmsghdr nlh;
      struct inet_diag_req r;
    } v1;
  } req;
  struct sockaddr_nl sa;
  static unsigned char rbuf[65536];
  size_t len;
  memset(&req, 0, sizeof req);
  if (family == AF_UNSPEC) {
    len = sizeof req.v1;
    req.v1.nlh.nlmsg_type = TCPDIAG_GETSOCK;
    req.v1.r.idiag_family = AF_INET;
    req.v1.r.idiag_states = ~0u;
    req.v1.r.idiag_ext = 1 << (INET_DIAG_INFO - 1);
  } else {
    len = sizeof req.v2;
    req.v2.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.v2.r.sdiag_family = (unsigned char)family;
    req.v2.r.sdiag_protocol = IPPROTO_TCP;
    req.v2.r.idiag_states = ~0u;
    req.v2.r.idiag_ext = 1 << (INET_DIAG_INFO - 1);
  }
  req.v2.nlh.nlmsg_len = (uint32_t)len;
  req.v2.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.v2.nlh.nlmsg_seq = (uint32_t)family;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  if (sendto(diag_fd, &req, len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) return -1;
  for (;;) {
    ssize_t got = recv(diag_fd, rbuf, sizeof rbuf, 0);
    struct nlmsghdr *h;
    int n;
    if (got < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    n = (int)got;
    for (h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      struct inet_diag_msg *m;
      struct rtattr *a;
      int alen;
      struct sock_row *row;
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(h);
        errno = -e->error;
        return -1;
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY && h->nlmsg_type != TCPDIAG_GETSOCK) continue;
      m = NLMSG_DATA(h);
      if (nrows == rows_cap) {
        rows_cap = rows_cap ? rows_cap * 2 : 64;
        rows = realloc(rows, rows_cap * sizeof *rows);
        if (!rows) die(1, "out of memory");
      }
      row = &rows[nrows++];
      memset(row, 0, sizeof *row);
      row->family = m->idiag_family == AF_INET6 ? 6 : 4;
      row->state = m->idiag_state;
      row->timer = m->idiag_timer;
      row->retrans = m->idiag_retrans;
      row->expires = m->idiag_expires;
      row->rqueue = m->idiag_rqueue;
      row->wqueue = m->idiag_wqueue;
      row->sport = ntohs(m->id.idiag_sport);
      row->dport = ntohs(m->id.idiag_dport);
      memcpy(row->src, m->id.idiag_src, 16);
      memcpy(row->dst, m->id.idiag_dst, 16);
      a = (struct rtattr *)(m + 1);
      alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
      for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type == INET_DIAG_INFO) {
          struct tcp_info ti;
          size_t l = RTA_PAYLOAD(a) < sizeof ti ? RTA_PAYLOAD(a) : sizeof ti;
          memset(&ti, 0, sizeof ti);
          memcpy(&ti, RTA_DATA(a), l);
          row->has_info = 1;
          row->rto_us = ti.tcpi_rto;
          row->retrans_now = ti.tcpi_retrans;
          row->total_retrans = ti.tcpi_total_retrans;
          row->unacked = ti.tcpi_unacked;
          row->lost = ti.tcpi_lost;
          row->cwnd = ti.tcpi_snd_cwnd;
          row->bytes_sent = ti.tcpi_bytes_sent;
          row->bytes_retrans = ti.tcpi_bytes_retrans;
          row->bytes_acked = ti.tcpi_bytes_acked;
          row->bytes_received = ti.tcpi_bytes_received;
        }
      }
    }
  }
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  while (n--) {
    h ^= *c++;
    h *= 1099511628211ULL;
  }
  return h;
}

/* A socket dump walks the kernel's whole TCP hash table, which every network namespace shares with the host
 * (262,144 buckets here: about 1.2 ms of CPU), however few sockets the node has. While someone waits for a
 * change, the agent first asks the network namespace's own TCP counters, a few microseconds: a segment sent
 * (even one a firewall drops before it leaves) or received, a retransmission, a socket hashed or unhashed
 * (listen, connect, close), a TIME_WAIT that began or ended, each moves one of them. Only when they moved, or
 * when the last dump is POLL_MAX_MS old (for what moves none: data read by its program, a FIN queued behind
 * data; up to DUMP_IDLE_MAX_MS once nothing has changed for that long), does it dump. "inuse" and "tw" of sockstat are this namespace's; its other figures are the host's. */
static int read_small(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n;
  if (fd < 0) return -1;
  n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = 0;
  return 0;
}

/* The number after `key` in text, hashed into h; 0 when key is not there. */
static int hash_number_after(uint64_t *h, const char *text, const char *key) {
  const char *q = strstr(text, key);
  if (!q) return 0;
  q += strlen(key);
  *h = fnv(*h, q, strspn(q, "0123456789"));
  *h = fnv(*h, "/", 1);
  return 1;
}

static int tcp_counters(uint64_t *sig) {
  char b[8192], *p;
  uint64_t h = 1469598103934665603ULL;
  /* The second "Tcp:" line of snmp holds the values. */
  if (read_small("/proc/net/snmp", b, sizeof b) != 0) return 0;
  p = strstr(b, "\nTcp:");
  if (!p || !(p = strstr(p + 5, "\nTcp:"))) return 0;
  h = fnv(h, p, strcspn(p + 1, "\n") + 1);
  if (read_small("/proc/net/sockstat", b, sizeof b) != 0 || !hash_number_after(&h, b, "TCP: inuse ") ||
      !hash_number_after(&h, b, " tw "))
    return 0;
  /* Without IPv6 in the kernel there is no sockstat6, and no TCP6 socket either. */
  if (read_small("/proc/net/sockstat6", b, sizeof b) == 0 && !hash_number_after(&h, b, "TCP6: inuse ")) return 0;
  *sig = h;
  return 1;
}
static uint64_t counters_at_dump;
static int counters_at_dump_ok;
static long long dumped_at_ms;

/* Read every TCP socket of the node. Returns 1 if what a lab can check changed since the last read (the time
 * left on a timer does not count: it changes all the time). */
static int sockets_read(void) {
  uint64_t h = 1469598103934665603ULL;
  size_t i;
  int failed;
  nrows = 0;
  counters_at_dump_ok = tcp_counters(&counters_at_dump);
  dumped_at_ms = mono_ms();
  diag_error[0] = 0;
  if (diag_fd < 0) {
    diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (diag_fd < 0) {
      snprintf(diag_error, sizeof diag_error, "sock_diag: %s", strerror(errno));
      return 0;
    }
  }
  rows_clock_ns = real_ns();
  failed = diag_one_walk ? diag_dump(AF_UNSPEC) : -1;
  if (diag_one_walk && failed && (errno == EINVAL || errno == ENOENT || errno == EOPNOTSUPP)) {
    /* A kernel without the older request: two dumps from now on, on a fresh socket. */
    diag_one_walk = 0;
    nrows = 0;
    close(diag_fd);
    diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (diag_fd < 0) {
      snprintf(diag_error, sizeof diag_error, "sock_diag: %s", strerror(errno));
      return 0;
    }
  }
  if (!diag_one_walk) failed = diag_dump(AF_INET) != 0 || diag_dump(AF_INET6) != 0;
  if (failed) {
    snprintf(diag_error, sizeof diag_error, "sock_diag: %s", strerror(errno));
    close(diag_fd);
    diag_fd = -1;
    return 0;
  }
  for (i = 0; i < nrows; i++) {
    struct sock_row *r = &rows[i];
    h = fnv(h, &r->family, 4);
    h = fnv(h, &r->retrans, 4);
    h = fnv(h, &r->rqueue, 8);
    h = fnv(h, &r->sport, 4);
    h = fnv(h, r->src, 32);
    h = fnv(h, &r->retrans_now, 8);
  }
  if (h != fingerprint) {
    fingerprint = h;
    return 1;
  }
  return 0;
}

static void put_sockets(struct buf *b) {
  size_t i;
  field_u64(b, 'T', rows_clock_ns);
  if (diag_error[0]) field_str(b, 'E', diag_error);
  for (i = 0; i < nrows; i++) {
    struct sock_row *r = &rows[i];
    size_t at = nest_begin(b, 'k');
    put_u8(b, r->family);
    put_u8(b, r->state);
    put_u8(b, r->timer);
    put_u8(b, r->has_info);
    put_u32(b, r->retrans);
    put_u32(b, r->expires);
    put_u32(b, r->rqueue);
    put_u32(b, r->wqueue);
    put_u32(b, ((uint32_t)r->sport << 16) | r->dport);
    buf_put(b, r->src, 16);
    buf_put(b, r->dst, 16);
    put_u32(b, r->rto_us);
    put_u32(b, r->retrans_now);
    put_u32(b, r->total_retrans);
    put_u32(b, r->unacked);
    put_u32(b, r->lost);
    put_u32(b, r->cwnd);
    put_u64(b, r->bytes_sent);
    put_u64(b, r->bytes_retrans);
    put_u64(b, r->bytes_acked);
    put_u64(b, r->bytes_received);
    nest_end(b, at);
  }
}

/* ---- commands ---- */

struct command {
  int used;
  char name[64]; /* "" for a foreground command nobody will ask about again */
  pid_t pid;
  int out_fd;  /* merged stdout and stderr; -1 once closed */
  int in_fd;   /* its standard input, while it is open for writes */
  struct buf in_pending;
  int running;
  int exit_code, signal, timed_out, start_failed;
  char start_error[160];
  unsigned char head[KEEP_HALF], tail[KEEP_HALF];
  size_t head_len, tail_len, tail_pos;
  unsigned long long total;
  unsigned long long started_ns, ended_ns;
  /* foreground: who waits for the answer */
  int foreground;
  unsigned client_id;
  uint32_t seq;
  long long deadline_ms, kill_ms;
  unsigned long long order; /* for eviction: oldest finished goes first */
};
static struct command commands[MAX_COMMANDS];
static unsigned long long command_order;

static void keep_output(struct command *c, const unsigned char *p, size_t n) {
  c->total += n;
  while (n && c->head_len < KEEP_HALF) {
    c->head[c->head_len++] = *p++;
    n--;
  }
  while (n) {
    size_t room = KEEP_HALF - c->tail_pos, k = n < room ? n : room;
    memcpy(c->tail + c->tail_pos, p, k);
    c->tail_pos = (c->tail_pos + k) % KEEP_HALF;
    if (c->tail_len < KEEP_HALF) c->tail_len = c->tail_len + k > KEEP_HALF ? KEEP_HALF : c->tail_len + k;
    p += k;
    n -= k;
  }
}

/* Output: the head, and the tail (in order); 'c' says how many bytes lie between them, dropped. */
static void put_output(struct buf *b, const struct command *c) {
  unsigned long long cut = c->total - c->head_len - c->tail_len;
  size_t at = nest_begin(b, 'o');
  buf_put(b, c->head, c->head_len);
  if (c->tail_len) {
    size_t start = c->tail_len < KEEP_HALF ? 0 : c->tail_pos;
    size_t first = KEEP_HALF - start < c->tail_len ? KEEP_HALF - start : c->tail_len;
    buf_put(b, c->tail + start, first);
    buf_put(b, c->tail, c->tail_len - first);
  }
  nest_end(b, at);
  field_u32(b, 'h', (uint32_t)c->head_len);
  field_u64(b, 'c', cut);
}

static void put_status(struct buf *b, const struct command *c) {
  field_str(b, 'n', c->name);
  field_u8(b, 'r', c->running ? 1 : 0);
  if (!c->running) {
    field_u32(b, 'x', (uint32_t)c->exit_code);
    if (c->signal) field_u32(b, 'g', (uint32_t)c->signal);
    if (c->timed_out) field(b, 't', "", 0);
  }
  if (c->start_failed) field_str(b, 'f', c->start_error);
  field_u32(b, 'p', (uint32_t)c->pid);
  field_u64(b, 'S', c->started_ns);
  if (c->ended_ns) field_u64(b, 'E', c->ended_ns);
  put_output(b, c);
}

static struct command *command_named(const char *name) {
  int i;
  for (i = 0; i < MAX_COMMANDS; i++)
    if (commands[i].used && commands[i].name[0] && strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

/* The command whose process group this is (a command leads a group of its own); its record may outlive it,
 * and so may what it left running in its group. */
static struct command *command_by_pid(pid_t pid) {
  int i;
  for (i = 0; i < MAX_COMMANDS; i++)
    if (commands[i].used && commands[i].pid == pid) return &commands[i];
  return NULL;
}

static void command_release(struct command *c) {
  if (c->out_fd >= 0) close(c->out_fd);
  if (c->in_fd >= 0) close(c->in_fd);
  buf_free(&c->in_pending);
  c->used = 0;
}

/* A free slot: an unused one, else the oldest record of a command that has ended and nobody waits for. */
static struct command *command_slot(void) {
  int i;
  struct command *oldest = NULL;
  for (i = 0; i < MAX_COMMANDS; i++)
    if (!commands[i].used) return &commands[i];
  for (i = 0; i < MAX_COMMANDS; i++) {
    struct command *c = &commands[i];
    if (!c->running && !c->foreground && (!oldest || c->order < oldest->order)) oldest = c;
  }
  if (oldest) command_release(oldest);
  return oldest;
}

static unsigned long long change_token = 1;
/* The agent's own looks while someone waits: when the next is due, and the pause after it. */
static long long poll_next, poll_interval = POLL_MIN_MS;
static long long last_change_ms;
static void changed(void) {
  change_token++;
  last_change_ms = mono_ms();
  activity();
  poll_interval = POLL_MIN_MS;
  if (poll_next) poll_next = mono_ms() + POLL_FIRST_MS;
}
/* Output arrives in bursts: it counts as a change at most every OUTPUT_BUMP_MS. */
#define OUTPUT_BUMP_MS 20
static int output_pending;
static long long last_output_bump;

static void drain_output(struct command *c) {
  unsigned char tmp[16384];
  int rounds = 64;
  while (c->out_fd >= 0 && rounds-- > 0) {
    ssize_t n = read(c->out_fd, tmp, sizeof tmp);
    if (n > 0) {
      keep_output(c, tmp, (size_t)n);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      close(c->out_fd);
      c->out_fd = -1;
    }
    break;
  }
}

static void answer_foreground(struct command *c) {
  struct client *cl = client_by_id(c->client_id);
  if (cl) {
    size_t at = frame_begin(&cl->out, c->seq, K_OK | K_RUN);
    put_status(&cl->out, c);
    frame_end(&cl->out, at);
  }
  c->foreground = 0;
  if (!c->name[0]) command_release(c);
}

static void command_ended(struct command *c, int status) {
  drain_output(c);
  /* What the command wrote before it ended is all here; a child it left behind may still hold the pipe, but
   * its output is not the command's. */
  if (c->out_fd >= 0) {
    close(c->out_fd);
    c->out_fd = -1;
  }
  if (c->in_fd >= 0) {
    close(c->in_fd);
    c->in_fd = -1;
  }
  c->running = 0;
  c->ended_ns = real_ns();
  c->order = ++command_order;
  if (WIFEXITED(status)) c->exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) {
    c->signal = WTERMSIG(status);
    c->exit_code = 128 + c->signal;
  }
  /* As coreutils' timeout says it: 124 when the time ran out. */
  if (c->timed_out) c->exit_code = 124;
  changed();
  if (c->foreground) answer_foreground(c);
}

/* Write what b holds to a non-blocking fd, as much as it takes now: 0 when done or it would block, -1 when
 * the other end is gone (b keeps what was not written). */
static int drain(int fd, struct buf *b) {
  while (buf_unread(b)) {
    ssize_t n = write(fd, b->p + b->off, buf_unread(b));
    if (n > 0) {
      b->off += (size_t)n;
      continue;
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
  }
  return 0;
}

static void flush_stdin(struct command *c) {
  if (c->in_fd < 0 || drain(c->in_fd, &c->in_pending) == 0) return;
  /* The command closed its input: what was not read is lost, as in a terminal. */
  c->in_pending.off = c->in_pending.len;
  close(c->in_fd);
  c->in_fd = -1;
}

/* Start argv. stdin_bytes: its whole standard input (then EOF); NULL with keep_open: a pipe that stays open
 * (a terminal where nothing is typed yet); NULL otherwise: /dev/null. */
static int command_start(struct command *c, char **argv, const unsigned char *stdin_bytes, size_t stdin_len, int keep_open) {
  int out[2], in[2] = {-1, -1}, err[2];
  pid_t pid;
  char host[128] = "", hostenv[160];
  char *envp[6];
  /* Close-on-exec from the start: no other command started meanwhile may inherit an end (a stdin pipe held
   * open by someone else never ends). */
  if (pipe2(out, O_CLOEXEC) != 0) return -1;
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return -1;
  }
  if ((stdin_bytes || keep_open) && pipe2(in, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    return -1;
  }
  gethostname(host, sizeof host - 1);
  snprintf(hostenv, sizeof hostenv, "HOSTNAME=%s", host);
  envp[0] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  envp[1] = "HOME=/tmp";
  envp[2] = hostenv;
  envp[3] = "LANG=C.UTF-8";
  envp[4] = ipt_names_fd >= 0 ? "TCPLAB_IPT_NAMES_FD=3" : NULL;
  envp[5] = NULL;
  pid = fork();
  if (pid < 0) {
    int e = errno;
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    if (in[0] >= 0) {
      close(in[0]);
      close(in[1]);
    }
    errno = e;
    return -1;
  }
  if (pid == 0) {
    sigset_t none;
    int s, fd, e;
    setpgid(0, 0);
    /* The agent's own files are private (umask 077); what a lab command writes in /tmp, the student may read. */
    umask(022);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    if (in[0] >= 0) dup2(in[0], 0);
    else {
      fd = open("/dev/null", O_RDONLY);
      dup2(fd, 0);
    }
    dup2(out[1], 1);
    dup2(out[1], 2);
    /* Nothing of the agent's goes on: its sockets and pipes are close-on-exec, and these are closed here. */
    close(out[0]);
    close(out[1]);
    close(err[0]);
    if (in[0] >= 0) {
      close(in[0]);
      close(in[1]);
    }
    if (ipt_names_fd >= 0) {
      /* err[1] (close-on-exec) must not be the 3 that the names go to. */
      if (err[1] == 3) err[1] = fcntl(3, F_DUPFD_CLOEXEC, 4);
      if (ipt_names_fd != 3) dup2(ipt_names_fd, 3);
      else fcntl(3, F_SETFD, 0);
    }
    execvpe(argv[0], argv, envp);
    e = errno;
    if (write(err[1], &e, sizeof e) < 0) _exit(127);
    _exit(e == ENOENT ? 127 : 126);
  }
  close(out[1]);
  close(err[1]);
  if (in[0] >= 0) close(in[0]);
  {
    /* The exec failed if the child wrote its errno before the close-on-exec pipe closed. */
    int e = 0;
    ssize_t n;
    do n = read(err[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    close(err[0]);
    if (n == (ssize_t)sizeof e) {
      c->start_failed = 1;
      snprintf(c->start_error, sizeof c->start_error, "%s: %s", argv[0], e == ENOENT ? "command not found" : strerror(e));
      keep_output(c, (const unsigned char *)c->start_error, strlen(c->start_error));
    }
  }
  cloexec(out[0]);
  nonblock(out[0]);
  c->out_fd = out[0];
  c->in_fd = -1;
  if (in[1] >= 0) {
    cloexec(in[1]);
    nonblock(in[1]);
    c->in_fd = in[1];
    if (stdin_bytes) {
      buf_put(&c->in_pending, stdin_bytes, stdin_len);
      flush_stdin(c);
      /* Everything given, then EOF, as `printf %s "$INPUT" | cmd`; flush closes it once written. */
    }
  }
  setpgid(pid, pid); /* as the child does: no signal to the group can come before it exists */
  c->pid = pid;
  c->running = 1;
  c->started_ns = real_ns();
  c->order = ++command_order;
  changed();
  return 0;
}

/* stdin given as bytes ends once written: close the pipe when nothing is pending. */
static void stdin_done(struct command *c, int close_when_empty) {
  flush_stdin(c);
  if (close_when_empty && c->in_fd >= 0 && !buf_unread(&c->in_pending)) {
    close(c->in_fd);
    c->in_fd = -1;
  }
}
/* Which commands close their stdin once the given bytes are written (RUN with 'I'). */
static unsigned char stdin_closes[MAX_COMMANDS];

static void handle_run(struct client *cl, const struct request *r) {
  char name[64] = "";
  char *argv[128];
  char *strings = NULL;
  int argc = 0, i, background = req_get(r, 'B') != NULL, keep_open;
  const struct req_field *in = req_get(r, 'I');
  uint32_t timeout = DEFAULT_TIMEOUT_MS;
  struct command *c, *old;
  size_t total = 0, at = 0;
  if (req_get(r, 'n') && !req_name(r, name)) return send_error(cl, r->seq, "bad command name");
  if (background && !name[0]) return send_error(cl, r->seq, "a background command needs a name");
  req_u32(r, 'T', &timeout);
  for (i = 0; i < r->n; i++)
    if (r->f[i].tag == 'a') {
      if (argc >= 127) return send_error(cl, r->seq, "too many arguments");
      total += r->f[i].len + 1;
      argc++;
    }
  if (argc == 0) return send_error(cl, r->seq, "nothing to run");
  strings = malloc(total);
  if (!strings) return send_error(cl, r->seq, "out of memory");
  argc = 0;
  for (i = 0; i < r->n; i++)
    if (r->f[i].tag == 'a') {
      if (memchr(r->f[i].p, 0, r->f[i].len)) {
        free(strings);
        return send_error(cl, r->seq, "an argument holds a NUL byte");
      }
      memcpy(strings + at, r->f[i].p, r->f[i].len);
      strings[at + r->f[i].len] = 0;
      argv[argc++] = strings + at;
      at += r->f[i].len + 1;
    }
  argv[argc] = NULL;
  /* A name run again replaces its record; the earlier process, if still running, goes on unnamed. */
  if (name[0] && (old = command_named(name)) != NULL) {
    if (old->running || old->foreground) old->name[0] = 0;
    else command_release(old);
  }
  c = command_slot();
  if (!c) {
    free(strings);
    return send_error(cl, r->seq, "too many commands running at once");
  }
  memset(c, 0, sizeof *c);
  c->used = 1;
  c->out_fd = c->in_fd = -1;
  strcpy(c->name, name);
  keep_open = background && !in;
  if (command_start(c, argv, in ? in->p : NULL, in ? in->len : 0, keep_open) != 0) {
    int e = errno;
    /* argv's strings live in `strings`: the message is sent before they are freed. */
    send_error(cl, r->seq, "could not start %s: %s", argv[0], strerror(e));
    free(strings);
    c->used = 0;
    return;
  }
  free(strings);
  stdin_closes[c - commands] = in != NULL;
  stdin_done(c, in != NULL);
  if (background) {
    size_t f = frame_begin(&cl->out, r->seq, K_OK | K_RUN);
    field_u32(&cl->out, 'p', (uint32_t)c->pid);
    frame_end(&cl->out, f);
    return;
  }
  c->foreground = 1;
  c->client_id = cl->id;
  c->seq = r->seq;
  c->deadline_ms = mono_ms() + timeout;
  c->kill_ms = 0;
}

static void handle_signal(struct client *cl, const struct request *r) {
  char name[64];
  uint32_t sig = SIGINT;
  struct command *c;
  size_t at;
  if (!req_name(r, name)) return send_error(cl, r->seq, "bad command name");
  req_u32(r, 'g', &sig);
  if (sig < 1 || sig >= NSIG) return send_error(cl, r->seq, "bad signal %u", sig);
  c = command_named(name);
  if (!c) return send_error(cl, r->seq, "no command named %s", name);
  /* The whole process group, as Ctrl-C in a terminal signals the foreground job. */
  if (c->running) kill(-c->pid, (int)sig);
  at = frame_begin(&cl->out, r->seq, K_OK | K_SIGNAL);
  field_u8(&cl->out, 'r', c->running ? 1 : 0);
  frame_end(&cl->out, at);
}

static void handle_write(struct client *cl, const struct request *r, int close_it) {
  char name[64];
  struct command *c;
  const struct req_field *d = req_get(r, 'd');
  size_t at;
  if (!req_name(r, name)) return send_error(cl, r->seq, "bad command name");
  c = command_named(name);
  if (!c || !c->running || c->in_fd < 0) return send_error(cl, r->seq, "%s is not running with an open input", name);
  if (d && d->len) buf_put(&c->in_pending, d->p, d->len);
  stdin_done(c, close_it);
  if (close_it) stdin_closes[c - commands] = 1;
  at = frame_begin(&cl->out, r->seq, K_OK | r->kind);
  frame_end(&cl->out, at);
}

/* ---- iptables counters: the one fork of a look, only when asked ---- */

struct counters_job {
  int used;
  pid_t pid;
  int fd;
  struct buf out;
  int done, status;
  uint64_t sig; /* nf_tables' fingerprint taken just before the fork */
  int sig_ok;
};

/* The counters change only when the kernel's rules or their counts do, and iptables-save costs a fork and
 * an exec (about 10 ms of CPU) where asking the kernel costs microseconds. So the agent keeps the last
 * iptables-save's text with a fingerprint of what nf_tables itself says (its tables, chains with their policy
 * counters, and rules with their counter expressions, through NETLINK_NETFILTER), and forks again only when
 * that fingerprint changed. The fingerprint is taken before the fork: a change while iptables-save runs makes
 * the next one differ. A kernel that does not answer (no nf_tables, no permission) means a fork every time. */
static struct {
  int fd;
  int valid;
  uint64_t sig;
  struct buf text;
} ipt_cache = {-1, 0, 0, {0}};

static int nft_dump(uint16_t msg, uint64_t *h) {
  struct {
    struct nlmsghdr nh;
    struct nfgenmsg g;
  } req;
  static uint32_t seq;
  unsigned char buf[65536];
  memset(&req, 0, sizeof req);
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | msg;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = ++seq;
  req.g.nfgen_family = NFPROTO_IPV4;
  req.g.version = NFNETLINK_V0;
  if (send(ipt_cache.fd, &req, sizeof req, 0) != (ssize_t)sizeof req) return -1;
  for (;;) {
    ssize_t n = recv(ipt_cache.fd, buf, sizeof buf, 0);
    struct nlmsghdr *nh;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
      if (nh->nlmsg_seq != seq) continue;
      if (nh->nlmsg_type == NLMSG_DONE) return 0;
      if (nh->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(nh);
        errno = e->error ? -e->error : EIO;
        return -1;
      }
      /* Everything after the header: the message type and its attributes, counters included. */
      *h = fnv(*h, &nh->nlmsg_type, sizeof nh->nlmsg_type);
      *h = fnv(*h, NLMSG_DATA(nh), nh->nlmsg_len - NLMSG_HDRLEN);
    }
  }
}

/* The fingerprint of the node's IPv4 rules and counters; 0 when the kernel did not say. */
static int nft_fingerprint(uint64_t *sig) {
  uint64_t h = 1469598103934665603ULL;
  if (ipt_cache.fd < 0) {
    /* The kernel answers at once; a second's limit all the same, so that nothing can hold the agent's loop. */
    struct timeval tv = {1, 0};
    ipt_cache.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (ipt_cache.fd < 0) return 0;
    setsockopt(ipt_cache.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  if (nft_dump(NFT_MSG_GETTABLE, &h) || nft_dump(NFT_MSG_GETCHAIN, &h) || nft_dump(NFT_MSG_GETRULE, &h)) {
    /* A fresh socket next time: a dump cut short leaves answers behind in this one. */
    close(ipt_cache.fd);
    ipt_cache.fd = -1;
    return 0;
  }
  *sig = h;
  return 1;
}

/* ---- looks, possibly waiting ---- */

struct look {
  int used;
  unsigned client_id;
  uint32_t seq;
  struct request_copy {
    unsigned char *bytes;
    uint32_t len;
  } req;
  unsigned long long token;
  long long deadline_ms; /* a long poll: answer at the latest then */
  int waits;
  struct counters_job ipt;
  int wants_ipt;
  int due; /* answered as soon as its counters (if asked for) are in */
};
#define MAX_LOOKS 64
static struct look looks[MAX_LOOKS];

static void activity(void) { last_activity_ms = (unsigned long long)mono_ms(); }

/* Processes runnable (R) or in uninterruptible sleep (D), other than the agent: a submission's answer has
 * settled when there are none. With ours_only, only those in the process group of a command the agent runs
 * (a lab's command, a task's probe, a submission's answer; not a student's own shell): a state that a check
 * wants to last must last while those could run, not while they waited for a CPU that another lab's fork
 * bomb kept busy. */
static int busy_count_of(int ours_only) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  int n = 0;
  pid_t me = getpid();
  if (!d) return -1;
  while ((e = readdir(d)) != NULL) {
    char path[300], text[512], *p;
    int fd;
    ssize_t len;
    pid_t pid;
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    pid = (pid_t)atoi(e->d_name);
    if (pid == me) continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    len = read(fd, text, sizeof text - 1);
    close(fd);
    if (len <= 0) continue;
    text[len] = 0;
    p = strrchr(text, ')');
    if (!p || p[1] != ' ' || (p[2] != 'R' && p[2] != 'D')) continue;
    if (ours_only) {
      /* ") S ppid pgrp ...": the process group, and whether a running command of ours leads it. */
      int ppid = 0, pgrp = 0;
      struct command *c;
      if (sscanf(p + 4, "%d %d", &ppid, &pgrp) != 2) continue;
      c = command_by_pid((pid_t)pgrp);
      if (!c) continue;
    }
    n++;
  }
  closedir(d);
  return n;
}
static int busy_count(void) { return busy_count_of(0); }

static void put_segments(struct buf *b, uint64_t from, uint32_t max) {
  unsigned long long oldest = seg_next > RING ? seg_next - RING : 1, s;
  uint32_t count = 0;
  if (capture_fd < 0 && !ring) {
    field_str(b, 'F', capture_error[0] ? capture_error : "the recorder is not running");
    return;
  }
  if (capture_fd < 0) field_str(b, 'F', capture_error[0] ? capture_error : "the recorder stopped");
  capture_stats();
  if (from < oldest) from = oldest;
  if (from > seg_next) from = seg_next;
  field_u64(b, 'O', oldest);
  field_u64(b, 'D', kernel_drops);
  for (s = from; s < seg_next && count < max; s++, count++) {
    const struct segment *g = &ring[s % RING];
    size_t at = nest_begin(b, 'G');
    put_u64(b, s);
    put_u64(b, g->ts_ns);
    put_u32(b, g->ifindex);
    put_u32(b, g->origlen);
    put_u8(b, g->dir);
    buf_put(b, g->ifname, IF_NAMESIZE);
    buf_put(b, g->hdr, g->hlen);
    nest_end(b, at);
  }
  field_u64(b, 'N', s);
}

static void look_answer(struct look *l) {
  struct client *cl = client_by_id(l->client_id);
  struct request r;
  size_t at;
  int i;
  uint64_t from;
  uint32_t max = 4096;
  if (cl && parse_request(l->req.bytes, l->req.len, &r) == 0) {
    /* Another reader may be waiting on the same state: a change seen here is a change for everyone. */
    if (sockets_read()) changed();
    at = frame_begin(&cl->out, l->seq, K_OK | K_LOOK);
    field_u64(&cl->out, 't', change_token);
    put_sockets(&cl->out);
    if (req_get(&r, 'b')) field_u32(&cl->out, 'b', (uint32_t)busy_count());
    if (req_get(&r, 'q')) field_u32(&cl->out, 'q', (uint32_t)busy_count_of(1));
    if (req_u64(&r, 's', &from)) {
      req_u32(&r, 'm', &max);
      put_segments(&cl->out, from, max);
    }
    for (i = 0; i < r.n; i++) {
      char name[64];
      struct command *c;
      size_t m;
      if (r.f[i].tag != 'c' || r.f[i].len == 0 || r.f[i].len > 63) continue;
      memcpy(name, r.f[i].p, r.f[i].len);
      name[r.f[i].len] = 0;
      c = command_named(name);
      m = nest_begin(&cl->out, 'm');
      if (c) put_status(&cl->out, c);
      else field_str(&cl->out, 'n', name);
      nest_end(&cl->out, m);
    }
    if (l->wants_ipt) {
      if (WIFEXITED(l->ipt.status) && WEXITSTATUS(l->ipt.status) == 0)
        field(&cl->out, 'i', l->ipt.out.p ? l->ipt.out.p + l->ipt.out.off : (const unsigned char *)"", buf_unread(&l->ipt.out));
      else {
        char msg[300];
        size_t n = buf_unread(&l->ipt.out);
        snprintf(msg, sizeof msg, "iptables-save failed (status %d): %.*s", l->ipt.status, (int)(n > 200 ? 200 : n),
                 l->ipt.out.p ? (const char *)l->ipt.out.p + l->ipt.out.off : "");
        field_str(&cl->out, 'I', msg);
      }
    }
    frame_end(&cl->out, at);
  }
  free(l->req.bytes);
  if (l->ipt.fd >= 0) close(l->ipt.fd);
  buf_free(&l->ipt.out);
  memset(l, 0, sizeof *l);
  l->ipt.fd = -1;
}

static int ipt_start(struct look *l) {
  int p[2];
  pid_t pid;
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid == 0) {
    int s, null = open("/dev/null", O_RDWR);
    char *argv[] = {"iptables-save", "-c", NULL};
    char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    for (s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    dup2(null, 0);
    dup2(p[1], 1);
    dup2(p[1], 2);
    close(p[0]);
    close(p[1]);
    execvpe(argv[0], argv, envp);
    _exit(127);
  }
  close(p[1]);
  cloexec(p[0]);
  nonblock(p[0]);
  l->ipt.used = 1;
  l->ipt.pid = pid;
  l->ipt.fd = p[0];
  return 0;
}

static void handle_look(struct client *cl, const struct request *r, const unsigned char *raw, uint32_t len) {
  struct look *l = NULL;
  uint32_t wait = 0;
  uint64_t token = 0;
  int i;
  for (i = 0; i < MAX_LOOKS; i++)
    if (!looks[i].used) {
      l = &looks[i];
      break;
    }
  if (!l) return send_error(cl, r->seq, "too many looks at once");
  memset(l, 0, sizeof *l);
  l->ipt.fd = -1;
  l->used = 1;
  l->client_id = cl->id;
  l->seq = r->seq;
  l->req.bytes = malloc(len);
  if (!l->req.bytes) {
    l->used = 0;
    return send_error(cl, r->seq, "out of memory");
  }
  memcpy(l->req.bytes, raw, len);
  l->req.len = len;
  req_u32(r, 'w', &wait);
  if (wait > 60000) wait = 60000;
  l->waits = req_u64(r, 't', &token) && wait > 0;
  l->token = token;
  l->deadline_ms = mono_ms() + wait;
  l->wants_ipt = req_get(r, 'i') != NULL;
  activity();
}

/* A look is due at once, or (if it waits) when something changed or its time is up. Its counters, if asked
 * for, are read then, so that they are as fresh as its sockets; it is answered when they are in. */
static int look_due(struct look *l, long long now) {
  if (!l->waits) return 1;
  if (change_token != l->token) return 1;
  return now >= l->deadline_ms;
}

/* The rules' fingerprint at the last look that read counters: while a look that asks for counters waits, a rule
 * added or removed, or a counter that moved, since then is a change (a rule moves no TCP counter). */
static uint64_t rules_read;
static int rules_read_ok;

static void counters_begin(struct look *l) {
  uint64_t sig = 0;
  int ok = nft_fingerprint(&sig);
  rules_read = sig;
  rules_read_ok = ok;
  if (ok && ipt_cache.valid && ipt_cache.sig == sig) {
    buf_put(&l->ipt.out, ipt_cache.text.p ? ipt_cache.text.p + ipt_cache.text.off : (const unsigned char *)"",
            buf_unread(&ipt_cache.text));
    l->ipt.status = 0;
    l->ipt.done = 1;
    return;
  }
  l->ipt.sig = sig;
  l->ipt.sig_ok = ok;
  if (ipt_start(l) != 0) {
    l->ipt.status = 127 << 8;
    buf_put(&l->ipt.out, "could not fork", 14);
    l->ipt.done = 1;
  }
}

/* An iptables-save that succeeded is the text for its fingerprint from now on. */
static void counters_done(struct look *l) {
  if (!l->ipt.sig_ok || !WIFEXITED(l->ipt.status) || WEXITSTATUS(l->ipt.status) != 0) return;
  buf_free(&ipt_cache.text);
  buf_put(&ipt_cache.text, l->ipt.out.p ? l->ipt.out.p + l->ipt.out.off : (const unsigned char *)"", buf_unread(&l->ipt.out));
  ipt_cache.sig = l->ipt.sig;
  ipt_cache.valid = 1;
}

static void handle_hello(struct client *cl, const struct request *r) {
  size_t at = frame_begin(&cl->out, r->seq, K_OK | K_HELLO);
  field_u32(&cl->out, 'v', PROTOCOL);
  field_str(&cl->out, 'V', VERSION);
  field_u32(&cl->out, 'p', (uint32_t)getpid());
  field_u32(&cl->out, 'u', (uint32_t)getuid());
  if (capture_fd < 0) field_str(&cl->out, 'F', capture_error[0] ? capture_error : "the recorder is not running");
  frame_end(&cl->out, at);
}

/* Every waiting look of this client answers now (the reader has what it waited for from another node). */
static void handle_wake(struct client *cl, const struct request *r) {
  int i;
  size_t at;
  for (i = 0; i < MAX_LOOKS; i++)
    if (looks[i].used && looks[i].client_id == cl->id && looks[i].waits) looks[i].deadline_ms = 0;
  at = frame_begin(&cl->out, r->seq, K_OK | K_WAKE);
  frame_end(&cl->out, at);
}

static void handle_frame(struct client *cl, const unsigned char *p, uint32_t len) {
  static struct request r;
  if (parse_request(p, len, &r) != 0) {
    send_error(cl, len >= 4 ? get_u32(p) : 0, "malformed request");
    return;
  }
  switch (r.kind) {
  case K_HELLO:
    handle_hello(cl, &r);
    break;
  case K_LOOK:
    handle_look(cl, &r, p, len);
    break;
  case K_RUN:
    handle_run(cl, &r);
    break;
  case K_SIGNAL:
    handle_signal(cl, &r);
    break;
  case K_WRITE:
    handle_write(cl, &r, 0);
    break;
  case K_CLOSE:
    handle_write(cl, &r, 1);
    break;
  case K_WAKE:
    handle_wake(cl, &r);
    break;
  default:
    send_error(cl, r.seq, "unknown request %u", r.kind);
  }
}

/* ---- the loop ---- */

static int listen_fd = -1, sig_fd = -1;

static int peer_uid(int fd) {
  struct ucred cr;
  socklen_t l = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) != 0) return -1;
  return (int)cr.uid;
}

static void accept_clients(void) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), i;
    if (fd < 0) return;
    /* Only tcplab's own relays: a student's process (root, but not AGENT_UID) is refused. */
    if (peer_uid(fd) != AGENT_UID) {
      close(fd);
      continue;
    }
    for (i = 0; i < MAX_CLIENTS; i++)
      if (clients[i].fd < 0) break;
    if (i == MAX_CLIENTS) {
      close(fd);
      continue;
    }
    memset(&clients[i], 0, sizeof clients[i]);
    clients[i].fd = fd;
    clients[i].id = next_client_id++;
  }
}

static void client_read(struct client *c) {
  for (;;) {
    ssize_t n;
    buf_reserve(&c->in, 65536);
    n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
    if (n > 0) {
      c->in.len += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    client_drop(c);
    return;
  }
  while (buf_unread(&c->in) >= 4) {
    uint32_t len = get_u32(c->in.p + c->in.off);
    if (len > MAX_REQUEST) {
      client_drop(c);
      return;
    }
    if (buf_unread(&c->in) < 4 + (size_t)len) break;
    handle_frame(c, c->in.p + c->in.off + 4, len);
    c->in.off += 4 + len;
  }
}

static void client_write(struct client *c) {
  if (c->fd >= 0 && drain(c->fd, &c->out) < 0) {
    client_drop(c);
    return;
  }
  if (c->fd >= 0 && buf_unread(&c->out) > MAX_CLIENT_BACKLOG) client_drop(c); /* a reader that stopped reading */
}

static void reap(void) {
  for (;;) {
    int status, i;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (i = 0; i < MAX_COMMANDS; i++)
      if (commands[i].used && commands[i].running && commands[i].pid == pid) {
        command_ended(&commands[i], status);
        break;
      }
    for (i = 0; i < MAX_LOOKS; i++)
      if (looks[i].used && looks[i].wants_ipt && looks[i].ipt.pid == pid && !looks[i].ipt.done) {
        struct look *l = &looks[i];
        unsigned char tmp[16384];
        ssize_t n;
        while (l->ipt.fd >= 0 && (n = read(l->ipt.fd, tmp, sizeof tmp)) > 0)
          if (buf_unread(&l->ipt.out) < IPTABLES_MAX) buf_put(&l->ipt.out, tmp, (size_t)n);
        l->ipt.status = status;
        l->ipt.done = 1;
        counters_done(l);
      }
  }
}

static int serve(void) {
  struct sockaddr_un sa;
  socklen_t salen;
  sigset_t mask;
  int i;

  for (i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;
  for (i = 0; i < MAX_LOOKS; i++) looks[i].ipt.fd = -1;
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sig_fd < 0) die(1, "signalfd: %s", strerror(errno));

  capture_open();

  listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd < 0) die(1, "socket: %s", strerror(errno));
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path + 1, SOCKET_NAME, strlen(SOCKET_NAME));
  salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(SOCKET_NAME));
  if (bind(listen_fd, (struct sockaddr *)&sa, salen) != 0) die(1, "bind @%s: %s", SOCKET_NAME, strerror(errno));
  if (listen(listen_fd, 16) != 0) die(1, "listen: %s", strerror(errno));
  if (chdir("/") != 0) die(1, "chdir /: %s", strerror(errno));
  umask(077);

  for (;;) {
    struct pollfd pfd[3 + MAX_CLIENTS + 2 * MAX_COMMANDS + MAX_LOOKS];
    void *owner[3 + MAX_CLIENTS + 2 * MAX_COMMANDS + MAX_LOOKS];
    int kind[3 + MAX_CLIENTS + 2 * MAX_COMMANDS + MAX_LOOKS];
    int n = 0, waiting = 0, waiting_ipt = 0, r;
    long long now = mono_ms(), timeout = -1;

#define ADD(fd_, ev_, k_, o_) \
  do { \
    pfd[n].fd = (fd_); \
    pfd[n].events = (short)(ev_); \
    pfd[n].revents = 0; \
    kind[n] = (k_); \
    owner[n] = (o_); \
    n++; \
  } while (0)

    ADD(listen_fd, POLLIN, 0, NULL);
    ADD(sig_fd, POLLIN, 1, NULL);
    if (capture_fd >= 0) ADD(capture_fd, POLLIN, 2, NULL);
    for (i = 0; i < MAX_CLIENTS; i++)
      if (clients[i].fd >= 0) ADD(clients[i].fd, POLLIN | (buf_unread(&clients[i].out) ? POLLOUT : 0), 3, &clients[i]);
    for (i = 0; i < MAX_COMMANDS; i++) {
      struct command *c = &commands[i];
      if (!c->used) continue;
      if (c->out_fd >= 0) ADD(c->out_fd, POLLIN, 4, c);
      if (c->in_fd >= 0 && buf_unread(&c->in_pending)) ADD(c->in_fd, POLLOUT, 5, c);
      if (c->running && c->foreground) {
        long long t = (c->kill_ms ? c->kill_ms : c->deadline_ms) - now;
        if (t < 0) t = 0;
        if (timeout < 0 || t < timeout) timeout = t;
      }
    }
    for (i = 0; i < MAX_LOOKS; i++) {
      struct look *l = &looks[i];
      if (!l->used) continue;
      if (l->wants_ipt && !l->ipt.done && l->ipt.fd >= 0) ADD(l->ipt.fd, POLLIN, 6, l);
      if (l->due) {
        /* Due, its counters not in yet: their pipe above wakes the loop. */
        if (!l->wants_ipt || l->ipt.done) timeout = 0;
      } else if (l->waits) {
        long long t = l->deadline_ms - now;
        waiting = 1;
        if (l->wants_ipt) waiting_ipt = 1;
        if (t < 0) t = 0;
        if (timeout < 0 || t < timeout) timeout = t;
      } else
        timeout = 0;
    }
    /* Someone waits for a change: look at the sockets ourselves, soon after anything happened, then less and
     * less often. Nobody waits: no looking at all. */
    if (waiting) {
      long long t;
      if (poll_next == 0) poll_next = now;
      t = poll_next - now;
      if (t < 0) t = 0;
      if (timeout < 0 || t < timeout) timeout = t;
    } else
      poll_next = 0;
    if (output_pending) {
      long long t = last_output_bump + OUTPUT_BUMP_MS - now;
      if (t < 0) t = 0;
      if (timeout < 0 || t < timeout) timeout = t;
    }

    r = poll(pfd, (nfds_t)n, (int)timeout);
    if (r < 0 && errno != EINTR) die(1, "poll: %s", strerror(errno));
    now = mono_ms();
    for (i = 0; r > 0 && i < n; i++) {
      if (!pfd[i].revents) continue;
      switch (kind[i]) {
      case 0:
        accept_clients();
        break;
      case 1: {
        struct signalfd_siginfo si;
        while (read(sig_fd, &si, sizeof si) == sizeof si) {
        }
        reap();
        break;
      }
      case 2:
        /* The kernel's TCP has this segment, or will have in a moment: changed() looks again soon. */
        if (capture_read() > 0) changed();
        break;
      case 3: {
        struct client *c = owner[i];
        if (c->fd < 0) break;
        if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) client_read(c);
        break;
      }
      case 4: {
        struct command *c = owner[i];
        if (c->used && c->out_fd >= 0) {
          drain_output(c);
          output_pending = 1;
        }
        break;
      }
      case 5: {
        struct command *c = owner[i];
        if (c->used) stdin_done(c, stdin_closes[c - commands]);
        break;
      }
      case 6: {
        struct look *l = owner[i];
        unsigned char tmp[16384];
        ssize_t k;
        if (!l->used || l->ipt.fd < 0) break;
        while ((k = read(l->ipt.fd, tmp, sizeof tmp)) > 0)
          if (buf_unread(&l->ipt.out) < IPTABLES_MAX) buf_put(&l->ipt.out, tmp, (size_t)k);
        if (k == 0 || (k < 0 && errno != EAGAIN)) {
          close(l->ipt.fd);
          l->ipt.fd = -1;
        }
        break;
      }
      }
    }
    /* A child may have ended without its pipe being read to the end first: the signalfd is read each round. */
    reap();

    /* Time limits of foreground commands: SIGTERM to the group, then SIGKILL a second later. */
    for (i = 0; i < MAX_COMMANDS; i++) {
      struct command *c = &commands[i];
      if (!c->used || !c->running || !c->foreground) continue;
      if (!c->kill_ms && now >= c->deadline_ms) {
        c->timed_out = 1;
        kill(-c->pid, SIGTERM);
        c->kill_ms = now + KILL_AFTER_MS;
      } else if (c->kill_ms && now >= c->kill_ms) {
        kill(-c->pid, SIGKILL);
        c->kill_ms = now + 60000;
      }
    }

    if (output_pending && now - last_output_bump >= OUTPUT_BUMP_MS) {
      output_pending = 0;
      last_output_bump = now;
      changed();
    }
    if (waiting && poll_next && now >= poll_next) {
      uint64_t c;
      long long quiet = now - last_change_ms;
      long long dump_every = quiet < POLL_MAX_MS ? POLL_MAX_MS : quiet > DUMP_IDLE_MAX_MS ? DUMP_IDLE_MAX_MS : quiet;
      int same = counters_at_dump_ok && now - dumped_at_ms < dump_every && tcp_counters(&c) && c == counters_at_dump;
      uint64_t rules;
      if (!same && sockets_read()) changed();
      else if (waiting_ipt && rules_read_ok && nft_fingerprint(&rules) && rules != rules_read) {
        rules_read = rules;
        changed();
      }
      else if ((unsigned long long)now - last_activity_ms > (unsigned long long)poll_interval)
        poll_interval = poll_interval * 2 > POLL_MAX_MS ? POLL_MAX_MS : poll_interval * 2;
      poll_next = now + poll_interval;
    }

    for (i = 0; i < MAX_LOOKS; i++) {
      struct look *l = &looks[i];
      if (!l->used) continue;
      if (!l->due && look_due(l, now)) {
        l->due = 1;
        if (l->wants_ipt) counters_begin(l);
      }
      if (l->due && (!l->wants_ipt || l->ipt.done)) look_answer(l);
    }
    for (i = 0; i < MAX_CLIENTS; i++)
      if (clients[i].fd >= 0) client_write(&clients[i]);
  }
  return 0;
}

/* ---- connect: the engine's end, through docker exec ---- */

static int relay(void) {
  struct sockaddr_un sa;
  socklen_t salen;
  int fd = -1, tries;
  unsigned char b[65536];
  int in_open = 1, shut = 0;
  struct buf to_agent = {0}, to_engine = {0};
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path + 1, SOCKET_NAME, strlen(SOCKET_NAME));
  salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(SOCKET_NAME));
  if (getuid() != AGENT_UID) die(2, "connect runs as uid %d (docker exec --user %d)", AGENT_UID, AGENT_UID);
  /* Right after the node starts, the agent may not listen yet. */
  for (tries = 0; tries < 500; tries++) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die(3, "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, salen) == 0) break;
    close(fd);
    fd = -1;
    usleep(10000);
  }
  if (fd < 0) die(3, "the agent does not answer in this machine");
  /* The other end must be the agent's user: a name in the abstract namespace can be taken by anyone. */
  if (peer_uid(fd) != AGENT_UID) die(3, "the socket @%s is not the agent's", SOCKET_NAME);
  signal(SIGPIPE, SIG_IGN);
  nonblock(0);
  nonblock(1);
  nonblock(fd);
  for (;;) {
    struct pollfd p[3];
    int n = 0, r;
    p[n].fd = fd;
    p[n].events = (short)(POLLIN | (buf_unread(&to_agent) ? POLLOUT : 0));
    n++;
    p[n].fd = in_open && buf_unread(&to_agent) < (1u << 20) ? 0 : -1;
    p[n].events = POLLIN;
    n++;
    p[n].fd = buf_unread(&to_engine) ? 1 : -1;
    p[n].events = POLLOUT;
    n++;
    r = poll(p, (nfds_t)n, -1);
    if (r < 0 && errno != EINTR) return 1;
    if (p[1].revents) {
      ssize_t k = read(0, b, sizeof b);
      if (k > 0) buf_put(&to_agent, b, (size_t)k);
      else if (k == 0 || errno != EAGAIN) in_open = 0;
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t k = read(fd, b, sizeof b);
      if (k > 0) buf_put(&to_engine, b, (size_t)k);
      else if (k == 0 || errno != EAGAIN) {
        /* The agent went away (or, after the engine's end of input, finished): deliver what it said. */
        while (buf_unread(&to_engine)) {
          ssize_t w = write(1, to_engine.p + to_engine.off, buf_unread(&to_engine));
          if (w <= 0 && errno != EAGAIN) break;
          if (w > 0) to_engine.off += (size_t)w;
          else {
            struct pollfd q = {1, POLLOUT, 0};
            poll(&q, 1, 1000);
          }
        }
        if (!in_open) return 0;
        die(3, "the agent closed the connection");
      }
    }
    if (buf_unread(&to_agent)) {
      ssize_t w = write(fd, to_agent.p + to_agent.off, buf_unread(&to_agent));
      if (w > 0) to_agent.off += (size_t)w;
      else if (w < 0 && errno != EAGAIN) die(3, "the agent closed the connection");
    }
    if (buf_unread(&to_engine)) {
      ssize_t w = write(1, to_engine.p + to_engine.off, buf_unread(&to_engine));
      if (w > 0) to_engine.off += (size_t)w;
      else if (w < 0 && errno != EAGAIN) return 0;
    }
    if (!in_open && !buf_unread(&to_agent) && !shut) {
      /* The engine is done: nothing more will be asked; the answers still due come back. */
      shutdown(fd, SHUT_WR);
      shut = 1;
    }
  }
}

/* ---- student: root with NET_ADMIN and NET_RAW only ---- */

/* NET_ADMIN allows TCP_REPAIR, made for checkpointing: a socket in repair mode connect()s straight to
 * ESTABLISHED with the sequence numbers it is given, and nothing is sent. Two such sockets are a connection
 * that no handshake made, whose states every check reads as real; a student has no use for it but that. So
 * the student's processes run under a seccomp filter that refuses setsockopt(IPPROTO_TCP, TCP_REPAIR) (EPERM),
 * and with it every call of another ABI (i386's socketcall would hide the option from the filter; x32) and
 * io_uring, whose commands can set socket options without the setsockopt call. The filter is inherited by
 * every process the student starts and cannot be removed. */
static void no_repair(void) {
#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "tcplab-agent: no seccomp arch for this machine"
#endif
#define REFUSE BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
      REFUSE,
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1), /* x32 */
      REFUSE,
#endif
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      REFUSE,
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setsockopt, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      /* level and optname are ints: the kernel reads the low 32 bits of each argument (little-endian). */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TCP_REPAIR, 0, 1),
      REFUSE,
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(1, "no_new_privs: %s", strerror(errno));
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) die(1, "seccomp: %s", strerror(errno));
}

/* A terminal's size, before the shell reads it. The engine makes an exec's terminal with no size (0x0) and
 * sets the client's size only after the process has started (docker exec -it, or a browser's terminal). A
 * shell that read the size first takes 80 columns, and if the resize's SIGWINCH came before its handler was
 * in place, it keeps them: a long command line then wraps over its own prompt. So, in a terminal of no size,
 * wait (up to a second) for the resize's SIGWINCH, blocked first so that one that comes between the look and
 * the wait is not missed; a terminal that never gets a size starts as before. */
static void sized_terminal(void) {
  struct winsize ws;
  struct timespec end, now, left;
  sigset_t winch, old;
  if (!isatty(0)) return;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  if (sigprocmask(SIG_BLOCK, &winch, &old) != 0) return;
  clock_gettime(CLOCK_MONOTONIC, &end);
  end.tv_sec += 1;
  while (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_col == 0) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    left.tv_sec = end.tv_sec - now.tv_sec;
    left.tv_nsec = end.tv_nsec - now.tv_nsec;
    if (left.tv_nsec < 0) {
      left.tv_sec--;
      left.tv_nsec += 1000000000L;
    }
    if (left.tv_sec < 0) break;
    if (sigtimedwait(&winch, NULL, &left) < 0 && errno == EAGAIN) break;
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
}

static int student(int argc, char **argv) {
  int i = 2, on_eof = 0, fd;
  if (i < argc && strcmp(argv[i], "--interrupt-on-eof") == 0) {
    on_eof = 1;
    i++;
  }
  if (i < argc && strcmp(argv[i], "--") == 0) i++;
  if (i >= argc) die(2, "usage: tcplab-agent student [--interrupt-on-eof] [--] CMD...");
  if (getuid() == 0) {
    bound_to(NET_CAPS);
    if (capset3(NET_CAPS, NET_CAPS, 0) != 0) die(1, "capset: %s", strerror(errno));
  } else {
    /* Not root (a shell of the student's already): whatever it has, it keeps no more than now. */
  }
  no_repair();
  /* The student's processes are the first the kernel ends when the machine runs out of memory, not the
   * agent or the lab's commands. */
  fd = open("/proc/self/oom_score_adj", O_WRONLY);
  if (fd >= 0) {
    if (write(fd, "500", 3) < 0) {
    }
    close(fd);
  }
  if (!on_eof) {
    sized_terminal();
    execvp(argv[i], argv + i);
    die(127, "%s: %s", argv[i], strerror(errno));
  }
  {
    int in[2], status, sfd, exited = 0;
    pid_t pid;
    char b[4096];
    sigset_t chld, old;
    if (pipe(in) != 0) die(1, "pipe: %s", strerror(errno));
    /* CMD's end is read from a signalfd, beside our own input: blocked before the fork so that an end that
     * comes at once is not missed. */
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, &old) != 0) die(1, "sigprocmask: %s", strerror(errno));
    sfd = signalfd(-1, &chld, SFD_CLOEXEC);
    if (sfd < 0) die(1, "signalfd: %s", strerror(errno));
    pid = fork();
    if (pid < 0) die(1, "fork: %s", strerror(errno));
    if (pid == 0) {
      sigprocmask(SIG_SETMASK, &old, 0);
      setpgid(0, 0);
      dup2(in[0], 0);
      close(in[0]);
      close(in[1]);
      execvp(argv[i], argv + i);
      fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
      _exit(127);
    }
    close(in[0]);
    setpgid(pid, pid);
    signal(SIGINT, SIG_IGN);
    /* Until CMD ends on its own (the student's prompt is back: this program ends with its status, and the
     * engine sees the command end), or our input ends first (the Ctrl-C). Waiting on our input alone kept a
     * command that had ended looking like one still running, with this program left for a later `kill -9 -1`
     * of the student's to end (exit 137). */
    for (;;) {
      struct pollfd p[2] = {{0, POLLIN, 0}, {sfd, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (p[1].revents) {
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof si) < 0) {
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
          exited = 1;
          break;
        }
      }
      if (p[0].revents) {
        ssize_t k = read(0, b, sizeof b);
        if (k > 0) continue;
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        break;
      }
    }
    if (!exited) {
      kill(-pid, SIGINT);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    close(in[1]);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
  }
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  if (strcmp(cmd, "connect") == 0) return relay();
  if (strcmp(cmd, "student") == 0) return student(argc, argv);
  if (strcmp(cmd, "version") == 0) {
    printf("tcplab-agent %s (protocol %d)\n", VERSION, PROTOCOL);
    return 0;
  }
  if (argc > 1 && strcmp(cmd, "--no-capture") != 0) die(2, "usage: tcplab-agent [--no-capture] | connect | student CMD... | version");
  capture_wanted = !(argc > 1 && strcmp(cmd, "--no-capture") == 0);
  ipt_names_fd = open("/proc/net/ip_tables_names", O_RDONLY | O_CLOEXEC);
  /* Never one of 0-2 or 3 itself: those a command's child sets up. */
  if (ipt_names_fd >= 0 && ipt_names_fd <= 3) {
    int moved = fcntl(ipt_names_fd, F_DUPFD_CLOEXEC, 10);
    close(ipt_names_fd);
    ipt_names_fd = moved;
  }
  become_agent();
  return serve();
}
