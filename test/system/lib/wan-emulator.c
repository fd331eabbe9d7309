/*
 * wan-emulator: one-way delay and random loss for every IP packet routed through a TUN device.
 *
 *   wan-emulator --dev NAME --delay-us N [--loss-ppm N] [--seed N] [--limit-mb N]
 *
 * Attaches to the existing TUN device NAME (IFF_TUN | IFF_NO_PI), reads each packet the kernel
 * routes into it, drops it with probability loss-ppm / 10^6 (a seeded splitmix64, so a run can be
 * repeated), otherwise holds it for delay-us and writes it back, in arrival order. The kernel then
 * forwards it as a packet that came in on NAME. Used by wan.ts (policy routing in a router network
 * namespace sends both directions through one device, so each direction gets the same delay).
 *
 * Prints one JSON line when ready, one on SIGUSR1 and one on SIGTERM/SIGINT (then exits 0):
 *   {"stats":{"seq":N,"pkts_in":..,"bytes_in":..,"pkts_out":..,"lost":..,"overflow":..,
 *    "write_errors":..,"max_queue_bytes":..,"late_max_us":..,"late_avg_us":..}}
 * late_*: how far past its due time a packet was written (the emulator's own timing error).
 * The queue is bounded by --limit-mb (default 256); a packet beyond it is dropped and counted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_PKT 65536
#define RING (1u << 18) /* queued packets at most; far above 1 Gbit/s x 100 ms of 9000-byte packets */
#define READ_BATCH 64

struct pkt {
  uint64_t due_ns;
  uint32_t len;
  unsigned char *data;
};

static struct pkt ring[RING];
static uint32_t head, tail; /* head: oldest queued; tail: next free */
static volatile sig_atomic_t want_stats, want_exit;
static uint64_t rng_state;

static struct {
  uint64_t seq, pkts_in, bytes_in, pkts_out, lost, overflow, write_errors, max_queue_bytes;
  uint64_t late_max_ns, late_sum_ns;
} st;
static uint64_t queue_bytes;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, fast and good enough for a drop decision. */
static uint64_t next_random(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void on_signal(int sig) {
  if (sig == SIGUSR1)
    want_stats = 1;
  else
    want_exit = 1;
}

static void print_stats(void) {
  st.seq++;
  printf("{\"stats\":{\"seq\":%llu,\"pkts_in\":%llu,\"bytes_in\":%llu,\"pkts_out\":%llu,\"lost\":%llu,"
         "\"overflow\":%llu,\"write_errors\":%llu,\"max_queue_bytes\":%llu,\"late_max_us\":%.1f,"
         "\"late_avg_us\":%.1f}}\n",
         (unsigned long long)st.seq, (unsigned long long)st.pkts_in, (unsigned long long)st.bytes_in,
         (unsigned long long)st.pkts_out, (unsigned long long)st.lost, (unsigned long long)st.overflow,
         (unsigned long long)st.write_errors, (unsigned long long)st.max_queue_bytes,
         st.late_max_ns / 1000.0, st.pkts_out ? st.late_sum_ns / 1000.0 / st.pkts_out : 0.0);
  fflush(stdout);
}

static void usage(void) {
  fprintf(stderr, "usage: wan-emulator --dev NAME --delay-us N [--loss-ppm N] [--seed N] [--limit-mb N]\n");
  exit(2);
}

static uint64_t num_arg(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || end == s) usage();
  return v;
}

int main(int argc, char **argv) {
  const char *dev = NULL;
  uint64_t delay_ns = 0, loss_ppm = 0, limit = 256ull << 20;
  rng_state = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--dev"))
      dev = argv[i + 1];
    else if (!strcmp(argv[i], "--delay-us"))
      delay_ns = num_arg(argv[i + 1]) * 1000u;
    else if (!strcmp(argv[i], "--loss-ppm"))
      loss_ppm = num_arg(argv[i + 1]);
    else if (!strcmp(argv[i], "--seed"))
      rng_state = num_arg(argv[i + 1]);
    else if (!strcmp(argv[i], "--limit-mb"))
      limit = num_arg(argv[i + 1]) << 20;
    else
      usage();
  }
  if (!dev || strlen(dev) >= IFNAMSIZ || loss_ppm > 1000000 || argc % 2 == 0) usage();

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    perror("wan-emulator: open /dev/net/tun");
    return 1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    perror("wan-emulator: TUNSETIFF");
    return 1;
  }
  /* Wake up on time, not up to 50 us late (the default timer slack), and before the programs
   * whose packets we carry (a real link does not slow down when the hosts are busy). */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  struct sched_param sp = {.sched_priority = 10};
  int realtime = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* Signals are delivered only inside ppoll, so the loop never sees a half-updated queue. */
  sigset_t blocked, during_poll;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR1);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigprocmask(SIG_BLOCK, &blocked, &during_poll);
  sigdelset(&during_poll, SIGUSR1);
  sigdelset(&during_poll, SIGTERM);
  sigdelset(&during_poll, SIGINT);

  printf("{\"ready\":true,\"dev\":\"%s\",\"delay_us\":%llu,\"loss_ppm\":%llu,\"realtime\":%s}\n", dev,
         (unsigned long long)(delay_ns / 1000u), (unsigned long long)loss_ppm, realtime ? "true" : "false");
  fflush(stdout);

  unsigned char buf[MAX_PKT];
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  while (!want_exit) {
    if (want_stats) {
      want_stats = 0;
      print_stats();
    }
    struct timespec timeout, *tp = NULL;
    if (head != tail) {
      uint64_t now = now_ns(), due = ring[head % RING].due_ns;
      uint64_t wait = due > now ? due - now : 0;
      timeout.tv_sec = (time_t)(wait / 1000000000u);
      timeout.tv_nsec = (long)(wait % 1000000000u);
      tp = &timeout;
    }
    int n = ppoll(&pfd, 1, tp, &during_poll);
    if (n < 0 && errno != EINTR) {
      perror("wan-emulator: ppoll");
      return 1;
    }
    if (n > 0 && (pfd.revents & POLLIN)) {
      for (int i = 0; i < READ_BATCH; i++) {
        ssize_t len = read(fd, buf, sizeof buf);
        if (len <= 0) break;
        st.pkts_in++;
        st.bytes_in += (uint64_t)len;
        if (loss_ppm && next_random() % 1000000u < loss_ppm) {
          st.lost++;
          continue;
        }
        if (tail - head >= RING || queue_bytes + (uint64_t)len > limit) {
          st.overflow++;
          continue;
        }
        unsigned char *copy = malloc((size_t)len);
        if (!copy) {
          st.overflow++;
          continue;
        }
        memcpy(copy, buf, (size_t)len);
        struct pkt *p = &ring[tail % RING];
        p->due_ns = now_ns() + delay_ns;
        p->len = (uint32_t)len;
        p->data = copy;
        tail++;
        queue_bytes += (uint64_t)len;
        if (queue_bytes > st.max_queue_bytes) st.max_queue_bytes = queue_bytes;
      }
    }
    uint64_t now = now_ns();
    while (head != tail && ring[head % RING].due_ns <= now) {
      struct pkt *p = &ring[head % RING];
      if (write(fd, p->data, p->len) < 0)
        st.write_errors++;
      else
        st.pkts_out++;
      uint64_t late = now - p->due_ns;
      st.late_sum_ns += late;
      if (late > st.late_max_ns) st.late_max_ns = late;
      queue_bytes -= p->len;
      free(p->data);
      head++;
    }
  }
  print_stats();
  return 0;
}
