#define _GNU_SOURCE
// rampart-notify: the service manager's notification channel for rampartd (Node.js cannot send unix datagrams).
// Usage: rampart-notify            (NOTIFY_SOCKET in the environment, as systemd sets it for Type=notify units)
// Reads lines on stdin ("READY=1", "WATCHDOG=1", "STATUS=...", "STOPPING=1", ...) and sends each line as one
// datagram to $NOTIFY_SOCKET: a path ("/run/systemd/notify") or an abstract address ("@name"). Exits 0 when stdin
// closes (rampartd ended), so it never outlives the daemon. rampartd keeps it running for its whole life: systemd
// attributes a message to the unit by the sender's control group, which a short-lived sender (systemd-notify)
// may leave before the message is read. The unit therefore needs NotifyAccess=all.
// A line that cannot be sent is reported on stderr and the next one is tried. Empty lines are skipped; a line
// longer than MAX_LINE bytes is refused (stderr).
// Exit 0 at the end of stdin, 2 on a missing or unusable NOTIFY_SOCKET, 1 when the socket cannot be made.
// Built by scripts/bootstrap and images/build next to rampart-setelem.
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_LINE 4096

int main(int argc, char **argv) {
  (void)argv;
  if (argc != 1) {
    fprintf(stderr, "usage: rampart-notify (NOTIFY_SOCKET set; one message a line on stdin)\n");
    return 2;
  }
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) {
    fprintf(stderr, "rampart-notify: NOTIFY_SOCKET is not set\n");
    return 2;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  size_t len = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof addr.sun_path) {
    fprintf(stderr, "rampart-notify: unsupported NOTIFY_SOCKET (a path or an @abstract name): %s\n", path);
    return 2;
  }
  memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0'; // abstract namespace: no terminating NUL counted
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/' ? 1 : 0));

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fprintf(stderr, "rampart-notify: socket: %s\n", strerror(errno));
    return 1;
  }
  // A stuck receiver must not block the channel for long: the next line (a later ping) is what matters.
  struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) >= 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    if (n == 0) continue;
    if (n > MAX_LINE) {
      fprintf(stderr, "rampart-notify: a message of %zd bytes is over %d, not sent\n", n, MAX_LINE);
      continue;
    }
    ssize_t sent;
    do sent = sendto(fd, line, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&addr, alen);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) fprintf(stderr, "rampart-notify: sending to %s: %s\n", path, strerror(errno));
  }
  free(line);
  close(fd);
  return 0;
}
