/*
 * vtape LD_PRELOAD shim: makes a vtape device socket (LIBDIR/changer,
 * LIBDIR/drive0, ...) look like a Linux SCSI generic node (/dev/sgN) to
 * unmodified, dynamically linked programs (mtx, tapeinfo, sg3_utils, stenc,
 * PBS, pmt/pmtx through fcntl.ioctl).
 *
 * Model (docs/preload.md has the user's view, docs/vtape-protocol.md the
 * wire format):
 *  - open() of a vtape device path returns a SOCK_STREAM socket connected to
 *    the daemon.  That socket IS the fake sg fd, so it survives dup, exec and
 *    being handed to another process as stdin.
 *  - The socket is bound to an abstract address "\0vtape-preload:..." that
 *    also carries what fstat and SCSI_IOCTL_GET_IDLUN report.  Any process
 *    with the shim recognises a fake fd by S_ISSOCK + getsockname(); plain
 *    protocol clients (vtape.client, the daemon's own sockets) have no such
 *    name and are never touched.
 *  - ioctl(SG_IO) becomes one VTQ1 request and one VTR1 reply
 *    (docs/vtape-protocol.md); the sg_io_hdr outputs follow the mainline sg
 *    driver rules.
 *
 * Only raw syscalls and the "real" libc functions (dlsym RTLD_NEXT) are used
 * internally so that the shim never re-enters itself.  No Python, no
 * dependencies beyond libc (+ libdl on old glibc).  64-bit Linux only.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#if !defined(__LP64__)
#error "the vtape preload shim supports 64-bit Linux only (sg_io_hdr layout, struct stat)"
#endif

#define EXPORT __attribute__((visibility("default")))

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "struct stat64 == struct stat");

/* ---- sg v3 interface (our own definition; offsets checked against the spec) ---- */

struct vt_sg_io_hdr {
    int interface_id;
    int dxfer_direction;
    unsigned char cmd_len;
    unsigned char mx_sb_len;
    unsigned short iovec_count;
    unsigned int dxfer_len;
    void *dxferp;
    unsigned char *cmdp;
    unsigned char *sbp;
    unsigned int timeout;
    unsigned int flags;
    int pack_id;
    void *usr_ptr;
    unsigned char status;
    unsigned char masked_status;
    unsigned char msg_status;
    unsigned char sb_len_wr;
    unsigned short host_status;
    unsigned short driver_status;
    int resid;
    unsigned int duration;
    unsigned int info;
};
_Static_assert(offsetof(struct vt_sg_io_hdr, dxferp) == 16, "sg_io_hdr layout");
_Static_assert(offsetof(struct vt_sg_io_hdr, usr_ptr) == 56, "sg_io_hdr layout");
_Static_assert(offsetof(struct vt_sg_io_hdr, status) == 64, "sg_io_hdr layout");
_Static_assert(offsetof(struct vt_sg_io_hdr, resid) == 72, "sg_io_hdr layout");
_Static_assert(sizeof(struct vt_sg_io_hdr) == 88, "sg_io_hdr size");

struct vt_sg_iovec { void *iov_base; size_t iov_len; };

struct vt_sg_scsi_id {
    int host_no, channel, scsi_id, lun, scsi_type;
    short h_cmd_per_lun, d_queue_depth;
    int unused[2];
};

#define SG_DXFER_NONE (-1)
#define SG_DXFER_TO_DEV (-2)
#define SG_DXFER_FROM_DEV (-3)
#define SG_DXFER_TO_FROM_DEV (-4)
#define SG_DXFER_UNKNOWN (-5)

#define IOC_SG_SET_TIMEOUT 0x2201u
#define IOC_SG_GET_TIMEOUT 0x2202u
#define IOC_SG_EMULATED_HOST 0x2203u
#define IOC_SG_GET_COMMAND_Q 0x2270u
#define IOC_SG_SET_COMMAND_Q 0x2271u
#define IOC_SG_GET_RESERVED_SIZE 0x2272u
#define IOC_SG_SET_RESERVED_SIZE 0x2275u
#define IOC_SG_GET_SCSI_ID 0x2276u
#define IOC_SG_GET_LOW_DMA 0x227au
#define IOC_SG_SET_FORCE_PACK_ID 0x227bu
#define IOC_SG_GET_PACK_ID 0x227cu
#define IOC_SG_GET_NUM_WAITING 0x227du
#define IOC_SG_GET_SG_TABLESIZE 0x227fu
#define IOC_SG_GET_VERSION_NUM 0x2282u
#define IOC_SG_IO 0x2285u
#define IOC_SG_SET_KEEP_ORPHAN 0x2287u
#define IOC_SG_GET_KEEP_ORPHAN 0x2288u
#define IOC_SCSI_GET_IDLUN 0x5382u
#define IOC_SCSI_GET_BUS_NUMBER 0x5386u
/* Generic VFS ioctls a real sg node accepts; the socket handles them too. */
#define IOC_FIONCLEX 0x5450u
#define IOC_FIOCLEX 0x5451u
#define IOC_FIONBIO 0x5421u
#define IOC_FIOASYNC 0x5452u

/* 3.5.36: >= 30000 for mtx, < 40000 so nobody switches to sg_io_v4. */
#define SG_VERSION 30536
#define SG_MAJOR 21
#define SG_DEFAULT_TIMEOUT_USER 6000 /* 60 s in USER_HZ, the sg default */
#define SG_DEFAULT_RESERVED 32768
#define SENSE_BUFFERSIZE 96          /* kernel SCSI_SENSE_BUFFERSIZE */

#define DID_ERROR 7
#define DRIVER_SENSE 0x08
#define SAM_CHECK_CONDITION 0x02

/* ---- wire format, docs/vtape-protocol.md (little-endian) ---- */

#define REQ_HEADER 36
#define REP_HEADER 20
#define MAX_TRANSFER (16u * 1024 * 1024)
#define MAX_WIRE_SENSE 255

#define NAME_PREFIX "vtape-preload:"
#define CONNECT_BUSY_LIMIT_MS 30000

/* Device identity, carried in the fake fd's abstract socket name. */
struct vt_dev {
    unsigned long long sdev, sino; /* st_dev/st_ino of the socket file */
    unsigned int minor;            /* sg minor, unique per device path */
    int type;                      /* SCSI peripheral type: 1 tape, 8 changer */
    int host, id;                  /* SCSI address reported by GET_IDLUN */
};

/* ---- real functions ---- */

#define REAL(name) real_##name
#define DECLARE_REAL(ret, name, ...) static ret (*real_##name)(__VA_ARGS__)
DECLARE_REAL(int, open, const char *, int, ...);
DECLARE_REAL(int, open64, const char *, int, ...);
DECLARE_REAL(int, openat, int, const char *, int, ...);
DECLARE_REAL(int, openat64, int, const char *, int, ...);
DECLARE_REAL(int, __open_2, const char *, int);
DECLARE_REAL(int, __open64_2, const char *, int);
DECLARE_REAL(int, __openat_2, int, const char *, int);
DECLARE_REAL(int, __openat64_2, int, const char *, int);
DECLARE_REAL(int, close, int);
DECLARE_REAL(int, ioctl, int, unsigned long, ...);
DECLARE_REAL(ssize_t, read, int, void *, size_t);
DECLARE_REAL(ssize_t, write, int, const void *, size_t);
DECLARE_REAL(int, poll, struct pollfd *, nfds_t, int);
DECLARE_REAL(int, stat, const char *, struct stat *);
DECLARE_REAL(int, stat64, const char *, struct stat64 *);
DECLARE_REAL(int, lstat, const char *, struct stat *);
DECLARE_REAL(int, lstat64, const char *, struct stat64 *);
DECLARE_REAL(int, fstat, int, struct stat *);
DECLARE_REAL(int, fstat64, int, struct stat64 *);
DECLARE_REAL(int, fstatat, int, const char *, struct stat *, int);
DECLARE_REAL(int, fstatat64, int, const char *, struct stat64 *, int);
DECLARE_REAL(int, __xstat, int, const char *, struct stat *);
DECLARE_REAL(int, __xstat64, int, const char *, struct stat64 *);
DECLARE_REAL(int, __lxstat, int, const char *, struct stat *);
DECLARE_REAL(int, __lxstat64, int, const char *, struct stat64 *);
DECLARE_REAL(int, __fxstat, int, int, struct stat *);
DECLARE_REAL(int, __fxstat64, int, int, struct stat64 *);
DECLARE_REAL(int, __fxstatat, int, int, const char *, struct stat *, int);
DECLARE_REAL(int, __fxstatat64, int, int, const char *, struct stat64 *, int);
DECLARE_REAL(int, statx, int, const char *, int, unsigned int, struct statx *);

/* Resolve lazily: a missing symbol (e.g. __xstat on a future glibc) only
 * matters if somebody calls our wrapper of it, and then ENOSYS is honest. */
#define RESOLVE(name)                                                  \
    do {                                                               \
        if (!real_##name)                                              \
            *(void **)&real_##name = dlsym(RTLD_NEXT, #name);          \
    } while (0)
#define NEED(name, fail)                                               \
    do {                                                               \
        RESOLVE(name);                                                 \
        if (!real_##name) { errno = ENOSYS; return fail; }             \
    } while (0)

/* Raw syscalls for the shim's own use, so that it never calls itself. */
static int sys_fstat(int fd, struct stat *st) { return (int)syscall(SYS_fstat, fd, st); }
static int sys_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    return (int)syscall(SYS_newfstatat, dirfd, path, st, flags);
}
static int sys_close(int fd) { return (int)syscall(SYS_close, fd); }

/* ---- process-local cache: fd -> verdict, keyed by the socket's inode ---- */

#define CACHE_FDS 4096
struct fd_slot {
    unsigned long long sdev, sino; /* the socket inode this slot describes */
    int known, ours;
    struct vt_dev dev;
    int timeout_user, reserved;    /* SG_SET_TIMEOUT / SG_SET_RESERVED_SIZE */
};
static struct fd_slot slots[CACHE_FDS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

/* One command in flight per socket (threads sharing an fd would interleave frames). */
#define IO_STRIPES 64
static pthread_mutex_t io_locks[IO_STRIPES];
static unsigned int name_counter;

static void reset_locks_in_child(void)
{
    /* A fork while another thread held a lock must not deadlock the child. */
    pthread_mutex_init(&slots_lock, NULL);
    for (int i = 0; i < IO_STRIPES; i++)
        pthread_mutex_init(&io_locks[i], NULL);
}

__attribute__((constructor)) static void shim_init(void)
{
    for (int i = 0; i < IO_STRIPES; i++)
        pthread_mutex_init(&io_locks[i], NULL);
    pthread_atfork(NULL, NULL, reset_locks_in_child);
}

static unsigned int fnv1a(const char *s)
{
    unsigned int h = 2166136261u;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 16777619u; }
    return h;
}

/* Parse our abstract name back into a vt_dev. */
static int parse_name(const struct sockaddr_un *sa, socklen_t len, struct vt_dev *dev)
{
    size_t n;
    char buf[sizeof sa->sun_path + 1];
    if (len <= offsetof(struct sockaddr_un, sun_path) + 1 || sa->sun_family != AF_UNIX
        || sa->sun_path[0] != '\0')
        return 0;
    n = len - offsetof(struct sockaddr_un, sun_path) - 1;
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, sa->sun_path + 1, n);
    buf[n] = '\0';
    if (strncmp(buf, NAME_PREFIX, sizeof NAME_PREFIX - 1) != 0)
        return 0;
    return sscanf(buf + sizeof NAME_PREFIX - 1, "%*x:%*x:%llx:%llx:%x:%d:%d:%d",
                  &dev->sdev, &dev->sino, &dev->minor, &dev->type, &dev->host, &dev->id) == 6;
}

/* Is fd one of our fake sg fds?  Fills *dev and returns the cache slot index
 * (or CACHE_FDS when fd is beyond the cache), -1 if not ours. */
static int fake_fd(int fd, struct vt_dev *dev)
{
    struct stat st;
    struct sockaddr_un sa;
    socklen_t len = sizeof sa;
    int ours, idx = fd >= 0 && fd < CACHE_FDS ? fd : -1;

    if (fd < 0 || sys_fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return -1;
    /* trylock, never lock: a signal handler writing to a socket must not deadlock on a
     * lookup it interrupted.  Without the lock the answer is simply computed afresh. */
    if (idx >= 0 && pthread_mutex_trylock(&slots_lock) == 0) {
        struct fd_slot *s = &slots[idx];
        if (s->known && s->sdev == (unsigned long long)st.st_dev && s->sino == (unsigned long long)st.st_ino) {
            ours = s->ours;
            if (ours)
                *dev = s->dev;
            pthread_mutex_unlock(&slots_lock);
            return ours ? idx : -1;
        }
        pthread_mutex_unlock(&slots_lock);
    }
    memset(&sa, 0, sizeof sa);
    ours = getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && parse_name(&sa, len, dev);
    if (idx >= 0 && pthread_mutex_trylock(&slots_lock) == 0) {
        struct fd_slot *s = &slots[idx];
        memset(s, 0, sizeof *s);
        s->known = 1;
        s->ours = ours;
        s->sdev = st.st_dev;
        s->sino = st.st_ino;
        s->timeout_user = SG_DEFAULT_TIMEOUT_USER;
        s->reserved = SG_DEFAULT_RESERVED;
        if (ours)
            s->dev = *dev;
        pthread_mutex_unlock(&slots_lock);
    }
    return ours ? (idx >= 0 ? idx : CACHE_FDS) : -1;
}

/* The socket inode, for the per-socket command lock. */
static unsigned long socket_ino(int fd)
{
    struct stat st;
    return sys_fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : (unsigned long)fd;
}

/* ---- recognising a device path ---- */

/* Absolute form of (dirfd, path) without resolving symlinks yet. */
static int absolute_path(int dirfd, const char *path, char *out, size_t outlen)
{
    char base[PATH_MAX];
    if (path[0] == '/') {
        if (strlen(path) >= outlen) return -1;
        strcpy(out, path);
        return 0;
    }
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base)) return -1;
    } else {
        char link[64];
        ssize_t n;
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        n = readlink(link, base, sizeof base - 1);
        if (n <= 0) return -1;
        base[n] = '\0';
    }
    if ((size_t)snprintf(out, outlen, "%s/%s", base, path) >= outlen) return -1;
    return 0;
}

/* Device basenames the daemon creates; LIBDIR/control (JSON) is not a device. */
static int device_name(const char *base, int *type, int *id)
{
    if (strcmp(base, "changer") == 0) { *type = 8; *id = 0; return 1; }
    if (strncmp(base, "drive", 5) == 0 && base[5]) {
        const char *p = base + 5;
        for (; *p; p++)
            if (*p < '0' || *p > '9') return 0;
        *type = 1;
        *id = atoi(base + 5) + 1;
        return 1;
    }
    return 0;
}

/* If (dirfd, path) names a vtape device socket, fill *dev and the resolved
 * path (for connect).  A device is a socket named changer/driveN whose
 * directory holds library.json.  Symlinks are resolved first. */
static int device_path(int dirfd, const char *path, struct vt_dev *dev, char *resolved)
{
    char abs[PATH_MAX], marker[PATH_MAX + 16];
    struct stat st, mst;
    char *slash;
    int saved = errno, ok = 0;

    if (!path || !*path) return 0;
    if (sys_fstatat(dirfd, path, &st, 0) != 0 || !S_ISSOCK(st.st_mode)) goto out;
    if (absolute_path(dirfd, path, abs, sizeof abs) != 0) goto out;
    if (!realpath(abs, resolved)) goto out;
    slash = strrchr(resolved, '/');
    if (!slash || !device_name(slash + 1, &dev->type, &dev->id)) goto out;
    snprintf(marker, sizeof marker, "%.*s/library.json", (int)(slash - resolved), resolved);
    if (sys_fstatat(AT_FDCWD, marker, &mst, 0) != 0 || !S_ISREG(mst.st_mode)) goto out;
    *slash = '\0';
    dev->host = (int)(fnv1a(resolved) % 200) + 10; /* one SCSI host per library */
    *slash = '/';
    dev->minor = (fnv1a(resolved) & 0xfffffu) | 0x100u; /* never 0, stable per path */
    dev->sdev = st.st_dev;
    dev->sino = st.st_ino;
    ok = 1;
out:
    errno = saved;
    return ok;
}

/* ---- the fake stat ---- */

static void fake_stat(struct stat *st, const struct vt_dev *dev)
{
    st->st_mode = S_IFCHR | 0660;
    st->st_rdev = makedev(SG_MAJOR, dev->minor);
    st->st_dev = (dev_t)dev->sdev;
    st->st_ino = (ino_t)dev->sino;
    st->st_size = 0;
    st->st_blocks = 0;
    st->st_nlink = 1;
}

static void fake_statx(struct statx *stx, const struct vt_dev *dev)
{
    stx->stx_mode = S_IFCHR | 0660;
    stx->stx_rdev_major = SG_MAJOR;
    stx->stx_rdev_minor = dev->minor;
    stx->stx_dev_major = major((dev_t)dev->sdev);
    stx->stx_dev_minor = minor((dev_t)dev->sdev);
    stx->stx_ino = dev->sino;
    stx->stx_size = 0;
    stx->stx_blocks = 0;
    stx->stx_nlink = 1;
}

/* After a successful real stat-family call on a path: fake it if it is a device. */
static void fix_path_stat(int dirfd, const char *path, struct stat *st)
{
    struct vt_dev dev;
    char resolved[PATH_MAX];
    if (S_ISSOCK(st->st_mode) && device_path(dirfd, path, &dev, resolved))
        fake_stat(st, &dev);
}

static void fix_fd_stat(int fd, struct stat *st)
{
    struct vt_dev dev;
    if (S_ISSOCK(st->st_mode) && fake_fd(fd, &dev) >= 0)
        fake_stat(st, &dev);
}

/* ---- open ---- */

static int sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    return nanosleep(&ts, NULL);
}

/* connect(), tolerating a path longer than sun_path and a full backlog. */
static int connect_device(int sock, const char *resolved)
{
    struct sockaddr_un sa;
    int dirfd = -1, rc, waited = 0;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(resolved) < sizeof sa.sun_path) {
        strcpy(sa.sun_path, resolved);
    } else {
        /* Reach the socket through an O_PATH handle on its directory. */
        char dir[PATH_MAX];
        const char *slash = strrchr(resolved, '/');
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - resolved), resolved);
        NEED(open, -1);
        dirfd = REAL(open)(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0) return -1;
        if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dirfd, slash + 1)
            >= sizeof sa.sun_path) {
            sys_close(dirfd);
            errno = ENAMETOOLONG;
            return -1;
        }
    }
    for (;;) {
        rc = connect(sock, (struct sockaddr *)&sa, sizeof sa);
        if (rc == 0 || errno == EISCONN) { rc = 0; break; }
        if (errno == EINTR) continue;
        /* Non-blocking AF_UNIX connect says EAGAIN while the backlog is full:
         * a busy daemon, so wait a little, but never forever. */
        if ((errno == EAGAIN || errno == EINPROGRESS) && waited < CONNECT_BUSY_LIMIT_MS) {
            sleep_ms(10);
            waited += 10;
            continue;
        }
        if (errno == EAGAIN || errno == EINPROGRESS) errno = EBUSY;
        rc = -1;
        break;
    }
    if (dirfd >= 0) {
        int saved = errno;
        sys_close(dirfd);
        errno = saved;
    }
    return rc;
}

/* Open a device: a connected socket carrying our identity in its name. */
static int open_device(const char *resolved, const struct vt_dev *dev, int flags)
{
    struct sockaddr_un me;
    socklen_t melen;
    int fd, n, saved, bufsize = 4 << 20;

    if ((flags & O_DIRECTORY)) { errno = ENOTDIR; return -1; }
    if ((flags & O_CREAT) && (flags & O_EXCL)) { errno = EEXIST; return -1; }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | ((flags & O_CLOEXEC) ? SOCK_CLOEXEC : 0), 0);
    if (fd < 0) return -1;
    memset(&me, 0, sizeof me);
    me.sun_family = AF_UNIX;
    n = snprintf(me.sun_path + 1, sizeof me.sun_path - 1, NAME_PREFIX "%x:%x:%llx:%llx:%x:%d:%d:%d",
                 (unsigned)getpid(), __atomic_add_fetch(&name_counter, 1, __ATOMIC_RELAXED),
                 dev->sdev, dev->sino, dev->minor, dev->type, dev->host, dev->id);
    melen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    if (bind(fd, (struct sockaddr *)&me, melen) != 0) goto fail;
    /* Big buffers: PBS moves 256 KiB records (capped by net.core.*mem_max). */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
    if (connect_device(fd, resolved) != 0) goto fail;
    /* The fd's O_NONBLOCK mirrors the open flags (PBS reads and clears it). */
    if (!(flags & O_NONBLOCK)) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) goto fail;
    }
    if (fd < CACHE_FDS) {
        struct stat st;
        if (sys_fstat(fd, &st) == 0) {
            pthread_mutex_lock(&slots_lock);
            struct fd_slot *s = &slots[fd];
            memset(s, 0, sizeof *s);
            s->known = s->ours = 1;
            s->sdev = st.st_dev;
            s->sino = st.st_ino;
            s->dev = *dev;
            s->timeout_user = SG_DEFAULT_TIMEOUT_USER;
            s->reserved = SG_DEFAULT_RESERVED;
            pthread_mutex_unlock(&slots_lock);
        }
    }
    return fd;
fail:
    saved = errno;
    sys_close(fd);
    errno = saved;
    return -1;
}

/* Called after the real open failed.  Opening a socket file fails with ENXIO,
 * so ordinary opens pay nothing for the shim. */
static int open_fallback(int dirfd, const char *path, int flags)
{
    struct vt_dev dev;
    char resolved[PATH_MAX];
    int saved = errno;
    if (saved != ENXIO || (flags & O_PATH) || !device_path(dirfd, path, &dev, resolved)) {
        errno = saved;
        return -1;
    }
    return open_device(resolved, &dev, flags);
}

static mode_t open_mode(int flags, va_list ap)
{
    return ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? (mode_t)va_arg(ap, int) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
    va_list ap; mode_t mode; int fd;
    va_start(ap, flags); mode = open_mode(flags, ap); va_end(ap);
    NEED(open, -1);
    fd = REAL(open)(path, flags, mode);
    return fd >= 0 ? fd : open_fallback(AT_FDCWD, path, flags);
}

EXPORT int open64(const char *path, int flags, ...)
{
    va_list ap; mode_t mode; int fd;
    va_start(ap, flags); mode = open_mode(flags, ap); va_end(ap);
    NEED(open64, -1);
    fd = REAL(open64)(path, flags, mode);
    return fd >= 0 ? fd : open_fallback(AT_FDCWD, path, flags);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap; mode_t mode; int fd;
    va_start(ap, flags); mode = open_mode(flags, ap); va_end(ap);
    NEED(openat, -1);
    fd = REAL(openat)(dirfd, path, flags, mode);
    return fd >= 0 ? fd : open_fallback(dirfd, path, flags);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap; mode_t mode; int fd;
    va_start(ap, flags); mode = open_mode(flags, ap); va_end(ap);
    NEED(openat64, -1);
    fd = REAL(openat64)(dirfd, path, flags, mode);
    return fd >= 0 ? fd : open_fallback(dirfd, path, flags);
}

/* The _FORTIFY_SOURCE entry points (sg3_utils calls __open64_2). */
EXPORT int __open_2(const char *path, int flags)
{
    int fd;
    NEED(__open_2, -1);
    fd = REAL(__open_2)(path, flags);
    return fd >= 0 ? fd : open_fallback(AT_FDCWD, path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
    int fd;
    NEED(__open64_2, -1);
    fd = REAL(__open64_2)(path, flags);
    return fd >= 0 ? fd : open_fallback(AT_FDCWD, path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    int fd;
    NEED(__openat_2, -1);
    fd = REAL(__openat_2)(dirfd, path, flags);
    return fd >= 0 ? fd : open_fallback(dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    int fd;
    NEED(__openat64_2, -1);
    fd = REAL(__openat64_2)(dirfd, path, flags);
    return fd >= 0 ? fd : open_fallback(dirfd, path, flags);
}

EXPORT int close(int fd)
{
    /* Closing a fake fd just closes the socket: the daemon must not rewind or
     * unload on close.  Forget the cached verdict for this fd number. */
    if (fd >= 0 && fd < CACHE_FDS)
        __atomic_store_n(&slots[fd].known, 0, __ATOMIC_RELAXED); /* lock-free: close is async-signal-safe */
    NEED(close, -1);
    return REAL(close)(fd);
}

/* ---- stat family ---- */

EXPORT int stat(const char *path, struct stat *st)
{
    int rc;
    NEED(stat, -1);
    if ((rc = REAL(stat)(path, st)) == 0) fix_path_stat(AT_FDCWD, path, st);
    return rc;
}

EXPORT int stat64(const char *path, struct stat64 *st64)
{
    int rc;
    struct stat *st = (struct stat *)st64; /* same layout on 64-bit */
    NEED(stat64, -1);
    if ((rc = REAL(stat64)(path, st64)) == 0) fix_path_stat(AT_FDCWD, path, st);
    return rc;
}

/* lstat of the socket itself is faked; lstat of a symlink to it is a symlink. */
EXPORT int lstat(const char *path, struct stat *st)
{
    int rc;
    NEED(lstat, -1);
    if ((rc = REAL(lstat)(path, st)) == 0) fix_path_stat(AT_FDCWD, path, st);
    return rc;
}

EXPORT int lstat64(const char *path, struct stat64 *st64)
{
    int rc;
    struct stat *st = (struct stat *)st64; /* same layout on 64-bit */
    NEED(lstat64, -1);
    if ((rc = REAL(lstat64)(path, st64)) == 0) fix_path_stat(AT_FDCWD, path, st);
    return rc;
}

EXPORT int fstat(int fd, struct stat *st)
{
    int rc;
    NEED(fstat, -1);
    if ((rc = REAL(fstat)(fd, st)) == 0) fix_fd_stat(fd, st);
    return rc;
}

EXPORT int fstat64(int fd, struct stat64 *st64)
{
    int rc;
    struct stat *st = (struct stat *)st64; /* same layout on 64-bit */
    NEED(fstat64, -1);
    if ((rc = REAL(fstat64)(fd, st64)) == 0) fix_fd_stat(fd, st);
    return rc;
}

static void fix_at_stat(int dirfd, const char *path, struct stat *st, int flags)
{
    if ((flags & AT_EMPTY_PATH) && path && !*path)
        fix_fd_stat(dirfd, st);
    else
        fix_path_stat(dirfd, path, st);
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    int rc;
    NEED(fstatat, -1);
    if ((rc = REAL(fstatat)(dirfd, path, st, flags)) == 0) fix_at_stat(dirfd, path, st, flags);
    return rc;
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st64, int flags)
{
    int rc;
    struct stat *st = (struct stat *)st64; /* same layout on 64-bit */
    NEED(fstatat64, -1);
    if ((rc = REAL(fstatat64)(dirfd, path, st64, flags)) == 0) fix_at_stat(dirfd, path, st, flags);
    return rc;
}

/* Not a glibc export, but some programs declare and call it by this name. */
EXPORT int newfstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    int rc = sys_fstatat(dirfd, path, st, flags);
    if (rc == 0) fix_at_stat(dirfd, path, st, flags);
    return rc;
}

/* Pre-2.33 glibc ABI: binaries built against it call these. */
EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
    int rc;
    NEED(__xstat, -1);
    if ((rc = REAL(__xstat)(ver, path, st)) == 0) fix_path_stat(AT_FDCWD, path, st);
    return rc;
}

EXPORT int __xstat64(int ver, const char *path, struct stat64 *st64)
{
    int rc;
    struct stat *st = (struct stat *)st64; /* same layout on 64-bit */
    NEED(__xstat64, -1);
    if ((rc = REAL(__xstat64)(ver, path, st64)) == 0) fix_path_stat(AT_FDCWD, path, st);
    return rc;
}

EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
    int rc;
    NEED(__lxstat, -1);
    if ((rc = REAL(__lxstat)(ver, path, st)) == 0) fix_path_stat(AT_FDCWD, path, st);
    return rc;
}

EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st64)
{
    int rc;
    struct stat *st = (struct stat *)st64; /* same layout on 64-bit */
    NEED(__lxstat64, -1);
    if ((rc = REAL(__lxstat64)(ver, path, st64)) == 0) fix_path_stat(AT_FDCWD, path, st);
    return rc;
}

EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
    int rc;
    NEED(__fxstat, -1);
    if ((rc = REAL(__fxstat)(ver, fd, st)) == 0) fix_fd_stat(fd, st);
    return rc;
}

EXPORT int __fxstat64(int ver, int fd, struct stat64 *st64)
{
    int rc;
    struct stat *st = (struct stat *)st64; /* same layout on 64-bit */
    NEED(__fxstat64, -1);
    if ((rc = REAL(__fxstat64)(ver, fd, st64)) == 0) fix_fd_stat(fd, st);
    return rc;
}

EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
    int rc;
    NEED(__fxstatat, -1);
    if ((rc = REAL(__fxstatat)(ver, dirfd, path, st, flags)) == 0) fix_at_stat(dirfd, path, st, flags);
    return rc;
}

EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st64, int flags)
{
    int rc;
    struct stat *st = (struct stat *)st64; /* same layout on 64-bit */
    NEED(__fxstatat64, -1);
    if ((rc = REAL(__fxstatat64)(ver, dirfd, path, st64, flags)) == 0) fix_at_stat(dirfd, path, st, flags);
    return rc;
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx)
{
    int rc;
    struct vt_dev dev;
    char resolved[PATH_MAX];
    NEED(statx, -1);
    rc = REAL(statx)(dirfd, path, flags, mask, stx);
    if (rc != 0 || !S_ISSOCK(stx->stx_mode))
        return rc;
    if ((flags & AT_EMPTY_PATH) && !*path) {
        if (fake_fd(dirfd, &dev) >= 0) fake_statx(stx, &dev);
    } else if (device_path(dirfd, path, &dev, resolved)) {
        fake_statx(stx, &dev);
    }
    return rc;
}

/* ---- read/write/poll: the sg async interface is not offered ---- */

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    struct vt_dev dev;
    if (fake_fd(fd, &dev) >= 0) { errno = EINVAL; return -1; }
    NEED(read, -1);
    return REAL(read)(fd, buf, n);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    struct vt_dev dev;
    if (fake_fd(fd, &dev) >= 0) { errno = EINVAL; return -1; }
    NEED(write, -1);
    return REAL(write)(fd, buf, n);
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    struct vt_dev dev;
    for (nfds_t i = 0; i < n; i++)
        if (fds[i].fd >= 0 && fake_fd(fds[i].fd, &dev) >= 0) { errno = EINVAL; return -1; }
    NEED(poll, -1);
    return REAL(poll)(fds, n, timeout);
}

/* ---- framing: O_NONBLOCK-safe, short-transfer-safe, EINTR-safe ---- */

static int wait_fd(int fd, short events)
{
    struct pollfd p = { fd, events, 0 };
    NEED(poll, -1);
    for (;;) {
        int rc = REAL(poll)(&p, 1, -1);
        if (rc > 0) return 0;
        if (rc < 0 && errno != EINTR) return -1;
    }
}

/* Send every byte of iov[0..cnt) (the array is consumed). */
static int send_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        struct msghdr m;
        ssize_t n;
        memset(&m, 0, sizeof m);
        m.msg_iov = iov;
        m.msg_iovlen = cnt > 1024 ? 1024 : cnt;
        n = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wait_fd(fd, POLLOUT) != 0) return -1;
                continue;
            }
            return -1;
        }
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0 && n > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Receive exactly len bytes; -1 with errno EPIPE on EOF. */
static int recv_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n > 0) { p += n; len -= (size_t)n; continue; }
        if (n == 0) { errno = EPIPE; return -1; }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_fd(fd, POLLIN) != 0) return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The caller's data buffer as an iovec list (sg_iovec when iovec_count > 0),
 * trimmed to dxfer_len.  Returns the count, or -1 (EINVAL/ENOMEM). */
static int user_iovecs(const struct vt_sg_io_hdr *h, struct iovec **out, size_t *total)
{
    struct iovec *v;
    size_t left = h->dxfer_len;
    int n = 0;
    *total = 0;
    if (h->iovec_count == 0) {
        v = calloc(1, sizeof *v);
        if (!v) { errno = ENOMEM; return -1; }
        v[0].iov_base = h->dxferp;
        v[0].iov_len = h->dxfer_len;
        *total = h->dxfer_len;
        *out = v;
        return h->dxfer_len ? 1 : 0;
    }
    const struct vt_sg_iovec *sv = h->dxferp;
    v = calloc(h->iovec_count, sizeof *v);
    if (!v) { errno = ENOMEM; return -1; }
    for (int i = 0; i < h->iovec_count && left > 0; i++) {
        size_t l = sv[i].iov_len < left ? sv[i].iov_len : left;
        if (!sv[i].iov_base && l) { free(v); errno = EFAULT; return -1; }
        v[n].iov_base = sv[i].iov_base;
        v[n].iov_len = l;
        left -= l;
        *total += l;
        n++;
    }
    *out = v;
    return n;
}

/* Scatter len received bytes into the caller's buffers. */
static int recv_into_iov(int fd, struct iovec *v, int cnt, size_t len)
{
    for (int i = 0; i < cnt && len > 0; i++) {
        size_t l = v[i].iov_len < len ? v[i].iov_len : len;
        if (recv_all(fd, v[i].iov_base, l) != 0) return -1;
        len -= l;
    }
    return len == 0 ? 0 : -1;
}

/* One SG_IO v3 command over the socket.  0 = the command reached the device
 * (whatever its SCSI status); -1 with errno for transport problems. */
static int do_sg_io(int fd, struct vt_sg_io_hdr *h)
{
    unsigned char req[REQ_HEADER], rep[REP_HEADER], sense[256];
    struct iovec *uv = NULL, *sendv = NULL;
    size_t total = 0;
    uint32_t out_len = 0, in_len = 0, data_len, resid;
    unsigned int status, host, sense_len;
    int ucnt, rc = -1, dir;
    pthread_mutex_t *lock;

    if (!h) { errno = EFAULT; return -1; }
    if (h->interface_id != 'S') { errno = EINVAL; return -1; } /* 'Q' = sg_io_v4: not offered */
    if (h->cmd_len < 6 || h->cmd_len > 16) { errno = EINVAL; return -1; }
    if (!h->cmdp) { errno = EFAULT; return -1; }
    if (h->dxfer_len > MAX_TRANSFER) { errno = EINVAL; return -1; }
    if (h->dxfer_len && !h->dxferp) { errno = EFAULT; return -1; }
    if (h->mx_sb_len && !h->sbp) { errno = EFAULT; return -1; }
    dir = h->dxfer_direction;
    switch (dir) {
    case SG_DXFER_NONE: break;
    case SG_DXFER_TO_DEV: out_len = h->dxfer_len; break;
    /* TO_FROM_DEV and UNKNOWN move data in, as the sg driver reports them. */
    case SG_DXFER_FROM_DEV: case SG_DXFER_TO_FROM_DEV: case SG_DXFER_UNKNOWN:
        in_len = h->dxfer_len; break;
    default: errno = EINVAL; return -1;
    }
    ucnt = user_iovecs(h, &uv, &total);
    if (ucnt < 0) return -1;
    if (out_len > total) out_len = (uint32_t)total;
    if (in_len > total) in_len = (uint32_t)total;

    memset(req, 0, sizeof req);
    memcpy(req, "VTQ1", 4);
    put32(req + 4, out_len);
    put32(req + 8, in_len);
    put32(req + 12, h->timeout);
    req[16] = h->cmd_len;
    memcpy(req + 20, h->cmdp, h->cmd_len);

    sendv = calloc((size_t)ucnt + 1, sizeof *sendv);
    if (!sendv) { free(uv); errno = ENOMEM; return -1; }
    sendv[0].iov_base = req;
    sendv[0].iov_len = sizeof req;
    int scnt = 1;
    if (out_len)
        for (int i = 0; i < ucnt; i++) sendv[scnt++] = uv[i];

    lock = &io_locks[socket_ino(fd) % IO_STRIPES];
    pthread_mutex_lock(lock);
    if (send_all(fd, sendv, scnt) != 0 || recv_all(fd, rep, sizeof rep) != 0)
        goto transport;
    if (memcmp(rep, "VTR1", 4) != 0) goto desync;
    status = rep[4];
    host = rep[5];
    sense_len = rep[6];
    data_len = get32(rep + 8);
    resid = get32(rep + 12);
    if (data_len > in_len) goto desync;
    memset(sense, 0, sizeof sense);
    if (sense_len && recv_all(fd, sense, sense_len) != 0) goto transport;
    if (data_len && recv_into_iov(fd, uv, ucnt, data_len) != 0) goto transport;
    pthread_mutex_unlock(lock);

    /* Output rules of the mainline sg driver (spec 1.2). */
    h->status = (unsigned char)status;
    h->masked_status = (unsigned char)((status >> 1) & 0x7f);
    h->msg_status = 0;
    h->sb_len_wr = 0;
    h->host_status = (unsigned short)host;
    h->driver_status = 0;
    h->info = 0;
    if ((status & 0x7e) == SAM_CHECK_CONDITION && h->mx_sb_len > 0 && sense_len > 0) {
        unsigned int len = 8u + sense[7];
        if (len > h->mx_sb_len) len = h->mx_sb_len;
        if (len > SENSE_BUFFERSIZE) len = SENSE_BUFFERSIZE;
        memcpy(h->sbp, sense, len);
        h->sb_len_wr = (unsigned char)len;
        h->driver_status = DRIVER_SENSE;
    }
    if (dir == SG_DXFER_NONE)
        resid = h->dxfer_len;          /* no data phase: nothing moved */
    else if (resid > h->dxfer_len)
        resid = h->dxfer_len;
    h->resid = (int)resid;
    h->duration = get32(rep + 16) / 1000;
    if (h->masked_status || h->host_status || h->driver_status)
        h->info |= 1;                  /* SG_INFO_CHECK */
    rc = 0;
    goto done;

desync:
    /* The stream can no longer be trusted: make every later command fail fast. */
    shutdown(fd, SHUT_RDWR);
    pthread_mutex_unlock(lock);
    errno = EIO;
    goto done;
transport:
    /* Daemon gone (EOF, ECONNRESET, EPIPE) or a socket error: EIO as from a
     * device that vanished mid-command. */
    shutdown(fd, SHUT_RDWR);
    pthread_mutex_unlock(lock);
    errno = EIO;
done:
    free(sendv);
    free(uv);
    return rc;
}

/* ---- ioctl ---- */

static int slot_get(int idx, int which)
{
    int v;
    if (idx >= CACHE_FDS) return which ? SG_DEFAULT_RESERVED : SG_DEFAULT_TIMEOUT_USER;
    pthread_mutex_lock(&slots_lock);
    v = which ? slots[idx].reserved : slots[idx].timeout_user;
    pthread_mutex_unlock(&slots_lock);
    return v;
}

static void slot_set(int idx, int which, int v)
{
    if (idx >= CACHE_FDS) return;
    pthread_mutex_lock(&slots_lock);
    if (which) slots[idx].reserved = v; else slots[idx].timeout_user = v;
    pthread_mutex_unlock(&slots_lock);
}

#define ARG_INT(p) do { if (!(p)) { errno = EFAULT; return -1; } } while (0)

static int fake_ioctl(int fd, int idx, const struct vt_dev *dev, unsigned int req, void *arg)
{
    int *ip = arg;
    switch (req) {
    case IOC_SG_IO:
        return do_sg_io(fd, arg);
    case IOC_SG_GET_VERSION_NUM:
        ARG_INT(ip); *ip = SG_VERSION; return 0;
    case IOC_SG_SET_TIMEOUT:
        ARG_INT(ip);
        if (*ip < 0) { errno = EIO; return -1; } /* what sg says to a negative timeout */
        slot_set(idx, 0, *ip);
        return 0;
    case IOC_SG_GET_TIMEOUT:
        return slot_get(idx, 0);   /* the value itself is the ioctl result */
    case IOC_SCSI_GET_IDLUN:
        ARG_INT(ip);
        /* id | lun<<8 | channel<<16 | host<<24, lun 0 (mtx puts it in the CDB) */
        ip[0] = (dev->id & 0xff) | (0 << 8) | (0 << 16) | ((dev->host & 0xff) << 24);
        ip[1] = (int)dev->minor;
        return 0;
    case IOC_SCSI_GET_BUS_NUMBER:
        ARG_INT(ip); *ip = dev->host; return 0;
    case IOC_SG_GET_SCSI_ID: {
        struct vt_sg_scsi_id *s = arg;
        ARG_INT(s);
        memset(s, 0, sizeof *s);
        s->host_no = dev->host;
        s->scsi_id = dev->id;
        s->scsi_type = dev->type;
        s->h_cmd_per_lun = 1;
        s->d_queue_depth = 1;
        return 0;
    }
    case IOC_SG_EMULATED_HOST: case IOC_SG_GET_LOW_DMA: case IOC_SG_GET_NUM_WAITING:
    case IOC_SG_GET_KEEP_ORPHAN: case IOC_SG_GET_COMMAND_Q:
        ARG_INT(ip); *ip = 0; return 0;
    case IOC_SG_GET_PACK_ID:
        ARG_INT(ip); *ip = -1; return 0;  /* nothing waiting */
    case IOC_SG_GET_SG_TABLESIZE:
        ARG_INT(ip); *ip = 128; return 0;
    case IOC_SG_GET_RESERVED_SIZE:
        ARG_INT(ip); *ip = slot_get(idx, 1); return 0;
    case IOC_SG_SET_RESERVED_SIZE:
        ARG_INT(ip);
        if (*ip < 0) { errno = EINVAL; return -1; }
        slot_set(idx, 1, *ip);
        return 0;
    case IOC_SG_SET_COMMAND_Q: case IOC_SG_SET_FORCE_PACK_ID: case IOC_SG_SET_KEEP_ORPHAN:
        return 0;
    case IOC_FIOCLEX: case IOC_FIONCLEX: case IOC_FIONBIO: case IOC_FIOASYNC:
        return REAL(ioctl)(fd, req, arg);  /* generic fd ioctls, valid on any node */
    default:
        /* MTIOCTOP, MTIOCGET, TCGETS, HDIO_*...: what a real sg node says. */
        errno = ENOTTY;
        return -1;
    }
}

EXPORT int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    void *arg;
    struct vt_dev dev;
    int idx;
    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    NEED(ioctl, -1);
    idx = fake_fd(fd, &dev);
    if (idx < 0)
        return REAL(ioctl)(fd, request, arg);
    return fake_ioctl(fd, idx, &dev, (unsigned int)request, arg);
}
