/* tcplab-bound PIPE OUT KEEP READY: what tcplab-run puts between a background command and its output file.
 * Reads the command's output from the FIFO PIPE and keeps only its first and last KEEP bytes in OUT, with
 * "[... N bytes cut ...]" between them (as src/runtime/bounded-output.ts does for foreground commands): a
 * command that prints without end must not fill the node's 16 MB /tmp. While the output is whole it is appended
 * to OUT as it comes; past that, OUT is rewritten whole (a temporary file renamed over it, so a reader never sees
 * half of it) at most every 50 ms while output comes, and once more at the end.
 * It creates READY once it holds the pipe and can take SIGUSR1: tcplab-run lets go of its own end then.
 * SIGUSR1 says the command has exited: write what the pipe holds now, then let tcplab-run record the exit code
 * (this process exits; a copy of it goes on in the background while a child of the command keeps the pipe open).
 * C rather than Python: one runs beside every background command, and Python costs 4 MB of a 64 MB node. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t exited;
static int wake[2];

static void on_usr1(int sig) {
  char c = 0;
  (void)sig;
  exited = 1;
  (void)!write(wake[1], &c, 1);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static const char *out_path;
static char *tmp_path;
static unsigned char *head, *tail;
static size_t keep, head_len, tail_len;
static unsigned long long total;

/* Length of b without a UTF-8 sequence that its end cuts short. */
static size_t utf8_end(const unsigned char *b, size_t n) {
  size_t k;
  for (k = 1; k <= 4 && k <= n; k++) {
    unsigned char c = b[n - k];
    size_t need;
    if ((c & 0xC0) == 0x80) continue;
    need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return need <= k ? n : n - k;
  }
  return n;
}

/* Offset of the first byte of b that does not continue a sequence begun before it. */
static size_t utf8_start(const unsigned char *b, size_t n) {
  size_t k = 0;
  while (k < 3 && k < n && (b[k] & 0xC0) == 0x80) k++;
  return k;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static void render(void) {
  int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  if (total == head_len + tail_len) {
    write_all(fd, head, head_len);
    write_all(fd, tail, tail_len);
  } else {
    size_t h = utf8_end(head, head_len), t = utf8_start(tail, tail_len);
    char marker[64];
    int m = snprintf(marker, sizeof marker, "\n[... %llu bytes cut ...]\n", total - h - (tail_len - t));
    write_all(fd, head, h);
    write_all(fd, marker, (size_t)m);
    write_all(fd, tail + t, tail_len - t);
  }
  close(fd);
  rename(tmp_path, out_path);
}

int main(int argc, char **argv) {
  int src, direct, dirty = 0, detached = 0;
  double written = 0, exited_at = 0;
  static unsigned char chunk[65536];
  struct sigaction sa;
  if (argc != 5) {
    fprintf(stderr, "usage: tcplab-bound PIPE OUT KEEP READY\n");
    return 2;
  }
  out_path = argv[2];
  keep = (size_t)strtoul(argv[3], 0, 10);
  tmp_path = malloc(strlen(out_path) + 5);
  head = malloc(keep + 1);
  tail = malloc(2 * keep + sizeof chunk);
  if (!tmp_path || !head || !tail || pipe(wake) < 0) return 1;
  sprintf(tmp_path, "%s.tmp", out_path);
  fcntl(wake[1], F_SETFL, O_NONBLOCK);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, 0);
  src = open(argv[1], O_RDONLY);
  if (src < 0) return 1;
  close(open(argv[4], O_WRONLY | O_CREAT, 0644));
  direct = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  for (;;) {
    struct pollfd p[2] = {{src, POLLIN, 0}, {wake[0], POLLIN, 0}};
    int wait = -1, got = 0;
    if (dirty) {
      double left = written + 0.05 - now();
      wait = left > 0 ? (int)(left * 1000) + 1 : 0;
    }
    if (exited && !detached) wait = 0;
    if (poll(p, 2, wait) < 0 && errno != EINTR) break;
    if (p[1].revents & POLLIN) (void)!read(wake[0], chunk, sizeof chunk);
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(src, chunk, sizeof chunk);
      unsigned char *c = chunk;
      if (n == 0) break;
      if (n < 0) {
        if (errno != EINTR && errno != EAGAIN) break;
        n = 0;
      }
      got = n > 0;
      total += (unsigned long long)n;
      if (head_len < keep) {
        size_t take = (size_t)n < keep - head_len ? (size_t)n : keep - head_len;
        memcpy(head + head_len, c, take);
        head_len += take;
        if (tail_len == 0 && direct >= 0) write_all(direct, c, take); /* still whole: written as it comes */
        c += take;
        n -= (ssize_t)take;
      }
      if (n > 0) {
        memcpy(tail + tail_len, c, (size_t)n);
        tail_len += (size_t)n;
        if (tail_len > keep) {
          memmove(tail, tail + tail_len - keep, keep);
          tail_len = keep;
        }
        dirty = 1;
      }
    }
    if (dirty && now() >= written + 0.05) {
      render();
      dirty = 0;
      written = now();
    }
    if (exited && !detached) {
      if (exited_at == 0) exited_at = now();
      /* Drained, or a child keeps writing: either way the exit code must not wait any longer. */
      if (!got || now() - exited_at > 0.5) {
        if (dirty) render();
        dirty = 0;
        written = now();
        detached = 1;
        if (fork() > 0) _exit(0);
      }
    }
  }
  if (dirty) render();
  return 0;
}
