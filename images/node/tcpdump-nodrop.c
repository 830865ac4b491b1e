/* Preloaded by /usr/local/bin/tcpdump (see there). Debian's tcpdump, started as root, switches to its own
 * user (initgroups, setgid, setuid), which needs CAP_SETUID and CAP_SETGID; a lab node has only NET_ADMIN and
 * NET_RAW, so tcpdump refuses to capture. Seen as a non-root user, tcpdump skips that switch: this makes
 * getuid() and geteuid() answer "nobody" inside tcpdump only. Nothing gains a privilege: the process keeps the
 * node's capability set, and opening a capture socket needs only NET_RAW.
 * Built with tcc in the image's build stage, without libc headers (hence the declarations below). */
typedef unsigned int uid_t;
void *dlsym(void *handle, const char *name);
#define RTLD_NEXT ((void *)-1l)
#define NOBODY 65534u

uid_t getuid(void) { return NOBODY; }
uid_t geteuid(void) { return NOBODY; }

/* After opening the device tcpdump calls setuid(getuid()) "to let the user own the process"; that is a no-op
 * here (the process is root and stays so). Any other setuid goes to libc's. */
int setuid(uid_t uid) {
  int (*real)(uid_t);
  if (uid == NOBODY) return 0;
  real = (int (*)(uid_t))dlsym(RTLD_NEXT, "setuid");
  return real(uid);
}
