/*
 * Records every change a process makes to files under one directory, for
 * the crash-image simulator (tests/src/powerloss.rs).
 *
 * Loaded with LD_PRELOAD into the workload process. CS_TRACE_ROOT names the
 * directory to watch (an absolute, canonical path); CS_TRACE_OUT the trace
 * file (keep it on tmpfs). Every intercepted call that touches a file under
 * the root is performed and logged under one lock, so the trace order is the
 * order the calls happened in:
 *
 *   record = op u8 | fd-or-0 i32 | offset i64 | len u32 | path-len u16 | path | data
 *
 * ops: 'O' open (data = flags as decimal text; path = the file), 'W' write
 * (data at offset), 'S' fsync/fdatasync (a barrier for the file), 'T'
 * ftruncate (offset = new size), 'R' rename (path = "from\0to"), 'L' link
 * ("from\0to"), 'U' unlink, 'M' mkdir, 'D' fsync of a directory (path).
 * Files are named by path; the simulator follows renames and links.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int out_fd = -1;
static char root[PATH_MAX];
static size_t root_len = 0;
#define MAX_FDS 4096
static char *paths[MAX_FDS];
static int dsync[MAX_FDS];

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_link)(const char *, const char *);
static int (*real_linkat)(int, const char *, int, const char *, int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_mkdir)(const char *, mode_t);

static void init(void) __attribute__((constructor));
static void init(void) {
#define R(name) real_##name = dlsym(RTLD_NEXT, #name)
  R(write); R(pwrite); R(pwrite64); R(writev); R(pwritev); R(open); R(open64);
  R(openat); R(openat64); R(close); R(fsync); R(fdatasync); R(ftruncate);
  R(ftruncate64); R(rename); R(renameat); R(link); R(linkat); R(unlink);
  R(unlinkat); R(mkdir);
  const char *r = getenv("CS_TRACE_ROOT");
  const char *o = getenv("CS_TRACE_OUT");
  if (r && o) {
    strncpy(root, r, sizeof root - 1);
    root_len = strlen(root);
    out_fd = real_open(o, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  }
}

/* The absolute path of `p` (relative to the cwd or to dirfd). */
static void absolute(int dirfd, const char *p, char *out) {
  if (p[0] == '/') {
    strncpy(out, p, PATH_MAX - 1);
    out[PATH_MAX - 1] = 0;
    return;
  }
  char base[PATH_MAX];
  if (dirfd == AT_FDCWD || dirfd < 0) {
    if (!getcwd(base, sizeof base)) base[0] = 0;
  } else if (dirfd < MAX_FDS && paths[dirfd]) {
    strncpy(base, paths[dirfd], sizeof base - 1);
    base[sizeof base - 1] = 0;
  } else {
    base[0] = 0;
  }
  snprintf(out, PATH_MAX, "%s/%s", base, p);
}

static int watched(const char *abs) {
  return out_fd >= 0 && root_len > 0 && strncmp(abs, root, root_len) == 0 &&
         (abs[root_len] == '/' || abs[root_len] == 0);
}

static void emit(char op, int fd, int64_t off, const char *path, const void *data, uint32_t len) {
  if (out_fd < 0) return;
  uint16_t plen = path ? (uint16_t)strlen(path) : 0;
  unsigned char h[1 + 4 + 8 + 4 + 2];
  h[0] = (unsigned char)op;
  memcpy(h + 1, &fd, 4);
  memcpy(h + 5, &off, 8);
  memcpy(h + 13, &len, 4);
  memcpy(h + 17, &plen, 2);
  struct iovec iov[3] = {{h, sizeof h}, {(void *)path, plen}, {(void *)data, len}};
  size_t total = sizeof h + plen + len;
  ssize_t n = real_writev ? real_writev(out_fd, iov, 3) : -1;
  if (n != (ssize_t)total) abort(); /* a short trace would silently lie */
}

static void emit2(char op, const char *a, const char *b) {
  char buf[2 * PATH_MAX + 1];
  size_t la = strlen(a), lb = strlen(b);
  memcpy(buf, a, la);
  buf[la] = 0;
  memcpy(buf + la + 1, b, lb);
  uint16_t plen = (uint16_t)(la + 1 + lb);
  unsigned char h[1 + 4 + 8 + 4 + 2];
  int fd = 0;
  int64_t off = 0;
  uint32_t len = 0;
  h[0] = (unsigned char)op;
  memcpy(h + 1, &fd, 4);
  memcpy(h + 5, &off, 8);
  memcpy(h + 13, &len, 4);
  memcpy(h + 17, &plen, 2);
  struct iovec iov[2] = {{h, sizeof h}, {buf, plen}};
  if (real_writev(out_fd, iov, 2) != (ssize_t)(sizeof h + plen)) abort();
}

static int track_open(int fd, int dirfd, const char *p, int flags) {
  if (fd < 0 || fd >= MAX_FDS || out_fd < 0) return fd;
  char abs[PATH_MAX];
  absolute(dirfd, p, abs);
  free(paths[fd]);
  paths[fd] = NULL;
  dsync[fd] = 0;
  if (!watched(abs)) return fd;
  paths[fd] = strdup(abs);
  dsync[fd] = (flags & (O_DSYNC | O_SYNC)) != 0;
  char fl[32];
  int n = snprintf(fl, sizeof fl, "%d", flags);
  emit('O', fd, 0, abs, fl, (uint32_t)n);
  return fd;
}

static int tracked(int fd) { return fd >= 0 && fd < MAX_FDS && paths[fd] != NULL; }

static void log_write(int fd, int64_t off, const void *buf, size_t n) {
  if (n == 0) return;
  emit('W', fd, off, paths[fd], buf, (uint32_t)n);
  if (dsync[fd]) emit('S', fd, 0, paths[fd], NULL, 0);
}

#define OPEN_BODY(call)                                                        \
  mode_t mode = 0;                                                             \
  if (flags & (O_CREAT | O_TMPFILE)) {                                         \
    va_list ap;                                                                \
    va_start(ap, flags);                                                       \
    mode = va_arg(ap, mode_t);                                                 \
    va_end(ap);                                                                \
  }                                                                            \
  pthread_mutex_lock(&lock);                                                   \
  int fd = call;                                                               \
  track_open(fd, DIRFD, path, flags);                                          \
  pthread_mutex_unlock(&lock);                                                 \
  return fd;

#define DIRFD AT_FDCWD
int open(const char *path, int flags, ...) { OPEN_BODY(real_open(path, flags, mode)) }
int open64(const char *path, int flags, ...) { OPEN_BODY(real_open64(path, flags, mode)) }
#undef DIRFD
#define DIRFD dirfd
int openat(int dirfd, const char *path, int flags, ...) { OPEN_BODY(real_openat(dirfd, path, flags, mode)) }
int openat64(int dirfd, const char *path, int flags, ...) { OPEN_BODY(real_openat64(dirfd, path, flags, mode)) }
#undef DIRFD

int close(int fd) {
  pthread_mutex_lock(&lock);
  if (fd >= 0 && fd < MAX_FDS) {
    free(paths[fd]);
    paths[fd] = NULL;
  }
  int r = real_close(fd);
  pthread_mutex_unlock(&lock);
  return r;
}

ssize_t write(int fd, const void *buf, size_t n) {
  if (fd == out_fd || !tracked(fd)) return real_write(fd, buf, n);
  pthread_mutex_lock(&lock);
  off_t off = lseek(fd, 0, SEEK_CUR);
  ssize_t r = real_write(fd, buf, n);
  if (r > 0) log_write(fd, off, buf, (size_t)r);
  pthread_mutex_unlock(&lock);
  return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  if (!tracked(fd)) return real_pwrite(fd, buf, n, off);
  pthread_mutex_lock(&lock);
  ssize_t r = real_pwrite(fd, buf, n, off);
  if (r > 0) log_write(fd, off, buf, (size_t)r);
  pthread_mutex_unlock(&lock);
  return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
  if (!tracked(fd)) return real_pwrite64(fd, buf, n, off);
  pthread_mutex_lock(&lock);
  ssize_t r = real_pwrite64(fd, buf, n, off);
  if (r > 0) log_write(fd, off, buf, (size_t)r);
  pthread_mutex_unlock(&lock);
  return r;
}

static void log_iov(int fd, int64_t off, const struct iovec *iov, int cnt, ssize_t r) {
  for (int i = 0; i < cnt && r > 0; i++) {
    size_t n = iov[i].iov_len < (size_t)r ? iov[i].iov_len : (size_t)r;
    log_write(fd, off, iov[i].iov_base, n);
    off += (int64_t)n;
    r -= (ssize_t)n;
  }
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  if (fd == out_fd || !tracked(fd)) return real_writev(fd, iov, cnt);
  pthread_mutex_lock(&lock);
  off_t off = lseek(fd, 0, SEEK_CUR);
  ssize_t r = real_writev(fd, iov, cnt);
  log_iov(fd, off, iov, cnt, r);
  pthread_mutex_unlock(&lock);
  return r;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
  if (!tracked(fd)) return real_pwritev(fd, iov, cnt, off);
  pthread_mutex_lock(&lock);
  ssize_t r = real_pwritev(fd, iov, cnt, off);
  log_iov(fd, off, iov, cnt, r);
  pthread_mutex_unlock(&lock);
  return r;
}

static int sync_call(int fd, int (*real)(int)) {
  if (!tracked(fd)) return real(fd);
  pthread_mutex_lock(&lock);
  int r = real(fd);
  if (r == 0) {
    struct stat st;
    char op = (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) ? 'D' : 'S';
    emit(op, fd, 0, paths[fd], NULL, 0);
  }
  pthread_mutex_unlock(&lock);
  return r;
}

int fsync(int fd) { return sync_call(fd, real_fsync); }
int fdatasync(int fd) { return sync_call(fd, real_fdatasync); }

int ftruncate(int fd, off_t len) {
  if (!tracked(fd)) return real_ftruncate(fd, len);
  pthread_mutex_lock(&lock);
  int r = real_ftruncate(fd, len);
  if (r == 0) emit('T', fd, len, paths[fd], NULL, 0);
  pthread_mutex_unlock(&lock);
  return r;
}

int ftruncate64(int fd, off64_t len) {
  if (!tracked(fd)) return real_ftruncate64(fd, len);
  pthread_mutex_lock(&lock);
  int r = real_ftruncate64(fd, len);
  if (r == 0) emit('T', fd, len, paths[fd], NULL, 0);
  pthread_mutex_unlock(&lock);
  return r;
}

static int two_paths(char op, int fa, const char *a, int fb, const char *b, int r_is_zero_needed,
                     int (*call)(void *), void *ctx) {
  char pa[PATH_MAX], pb[PATH_MAX];
  pthread_mutex_lock(&lock);
  absolute(fa, a, pa);
  absolute(fb, b, pb);
  int r = call(ctx);
  if ((r == 0 || !r_is_zero_needed) && r == 0 && (watched(pa) || watched(pb))) emit2(op, pa, pb);
  pthread_mutex_unlock(&lock);
  return r;
}

struct rn { int fa; const char *a; int fb; const char *b; int flags; };
static int do_renameat(void *c) { struct rn *x = c; return real_renameat(x->fa, x->a, x->fb, x->b); }
static int do_linkat(void *c) { struct rn *x = c; return real_linkat(x->fa, x->a, x->fb, x->b, x->flags); }

int rename(const char *a, const char *b) {
  struct rn x = {AT_FDCWD, a, AT_FDCWD, b, 0};
  return two_paths('R', AT_FDCWD, a, AT_FDCWD, b, 1, do_renameat, &x);
}
int renameat(int fa, const char *a, int fb, const char *b) {
  struct rn x = {fa, a, fb, b, 0};
  return two_paths('R', fa, a, fb, b, 1, do_renameat, &x);
}
int link(const char *a, const char *b) {
  struct rn x = {AT_FDCWD, a, AT_FDCWD, b, 0};
  return two_paths('L', AT_FDCWD, a, AT_FDCWD, b, 1, do_linkat, &x);
}
int linkat(int fa, const char *a, int fb, const char *b, int flags) {
  struct rn x = {fa, a, fb, b, flags};
  return two_paths('L', fa, a, fb, b, 1, do_linkat, &x);
}

int unlink(const char *p) {
  char abs[PATH_MAX];
  pthread_mutex_lock(&lock);
  absolute(AT_FDCWD, p, abs);
  int r = real_unlink(p);
  if (r == 0 && watched(abs)) emit('U', 0, 0, abs, NULL, 0);
  pthread_mutex_unlock(&lock);
  return r;
}

int unlinkat(int dirfd, const char *p, int flags) {
  char abs[PATH_MAX];
  pthread_mutex_lock(&lock);
  absolute(dirfd, p, abs);
  int r = real_unlinkat(dirfd, p, flags);
  if (r == 0 && watched(abs)) emit('U', 0, 0, abs, NULL, 0);
  pthread_mutex_unlock(&lock);
  return r;
}

int mkdir(const char *p, mode_t m) {
  char abs[PATH_MAX];
  pthread_mutex_lock(&lock);
  absolute(AT_FDCWD, p, abs);
  int r = real_mkdir(p, m);
  if (r == 0 && watched(abs)) emit('M', 0, 0, abs, NULL, 0);
  pthread_mutex_unlock(&lock);
  return r;
}
