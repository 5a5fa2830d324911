// rampart-setelem: add or delete elements of nftables sets over netlink, all in one transaction, without the
// cost of nft's parser (50,000 dynamic blocks in a fraction of `nft -f`'s time).
// Usage: rampart-setelem FAMILY TABLE [FILE]   (FILE, or standard input)
//   each line: "a SET ADDR [TIMEOUT_MS]" (add), "e SET ADDR" (add an interval's end: the address after its last,
//   flagged as an end), "o SET ADDR" (add the start of an interval open to the end of the address space, marked as
//   nft marks it) or "d SET ADDR" (delete); ADDR is an IPv4 or IPv6 address. Interval sets take their elements in
//   nft's encoding, ascending (the caller's business: see intervalLines in the compiler).
// Exit 0 when the kernel accepted the whole transaction; 1 (or 2 for bad input) with a message on stderr.
// Built by scripts/bootstrap from libnftnl and libmnl; Rampart falls back to nft when it is missing.
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libmnl/libmnl.h>
#include <libnftnl/set.h>
#include <libnftnl/common.h>

#define PER_MSG 1000

// Split a line in place into its space-separated fields (at most four); returns how many, or 5 for more.
static int split_fields(char *s, char *f[4]) {
  int n = 0;
  for (;;) {
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    if (!*s) return n;
    if (n == 4) return 5;
    f[n++] = s;
    while (*s && *s != ' ' && *s != '\t' && *s != '\r') s++;
    if (*s) *s++ = 0;
  }
}

static int family_of(const char *s) {
  if (!strcmp(s, "inet")) return NFPROTO_INET;
  if (!strcmp(s, "ip")) return NFPROTO_IPV4;
  if (!strcmp(s, "ip6")) return NFPROTO_IPV6;
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) { fprintf(stderr, "usage: %s FAMILY TABLE [FILE]\n", argv[0]); return 2; }
  FILE *in = argc == 4 ? fopen(argv[3], "r") : stdin;
  if (!in) { perror(argv[3]); return 2; }
  int family = family_of(argv[1]);
  const char *table = argv[2];
  if (family < 0) { fprintf(stderr, "unknown family %s\n", argv[1]); return 2; }

  size_t cap = 1 << 20, len = 0;
  char *input = malloc(cap);
  size_t n;
  while ((n = fread(input + len, 1, cap - len - 1, in)) > 0) {
    len += n;
    if (cap - len < 4096) { cap *= 2; input = realloc(input, cap); }
  }
  input[len] = 0;
  size_t lines = 1;
  for (size_t i = 0; i < len; i++) if (input[i] == '\n') lines++;

  size_t bufsize = lines * 96 + (1 << 16);
  char *buf = malloc(bufsize);
  struct mnl_nlmsg_batch *batch = mnl_nlmsg_batch_start(buf, bufsize);
  uint32_t seq = (uint32_t)time(NULL);
  nftnl_batch_begin(mnl_nlmsg_batch_current(batch), seq++);
  mnl_nlmsg_batch_next(batch);

  int messages = 0, count = 0;
  struct nftnl_set *set = NULL;
  char cur_op = 0, cur_set[64] = "";
  char *save = NULL;
  for (char *line = strtok_r(input, "\n", &save);; line = strtok_r(NULL, "\n", &save)) {
    // Fields: op (a, d, e or o), set name, address, and for "a" optionally a timeout in milliseconds.
    char op = 0, *f[4] = {0}, *end = NULL;
    const char *name = "", *addr = "";
    unsigned long long timeout = 0;
    int fields = 0;
    if (line) {
      char copy[81];
      size_t clen = strnlen(line, 80);
      memcpy(copy, line, clen);
      copy[clen] = 0;
      fields = split_fields(line, f);
      if (fields >= 1 && f[0][0] && !f[0][1]) op = f[0][0];
      if (fields >= 3) name = f[1], addr = f[2];
      if (fields == 4) {
        errno = 0;
        timeout = strtoull(f[3], &end, 10);
      }
      if (fields < 3 || fields > 4 || !op || !strchr("adeo", op) || ((op == 'e' || op == 'o') && fields != 3) || strlen(name) > 63 || strlen(addr) > 63 ||
          (fields == 4 && (errno || *end || f[3][0] < '0' || f[3][0] > '9'))) {
        fprintf(stderr, "bad line: %s\n", copy);
        return 2;
      }
    }
    char kind = op;
    if (op == 'e' || op == 'o') op = 'a'; // one message kind: ends and open starts are elements added with a mark
    int flush = set && (!line || op != cur_op || strcmp(name, cur_set) || count == PER_MSG);
    if (flush) {
      struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch), cur_op == 'a' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
                                                   family, (cur_op == 'a' ? NLM_F_CREATE : 0) | NLM_F_ACK, seq++);
      nftnl_set_elems_nlmsg_build_payload(nlh, set);
      nftnl_set_free(set);
      set = NULL;
      mnl_nlmsg_batch_next(batch);
      messages++;
    }
    if (!line) break;
    if (!set) {
      set = nftnl_set_alloc();
      nftnl_set_set_str(set, NFTNL_SET_TABLE, table);
      nftnl_set_set_str(set, NFTNL_SET_NAME, name);
      cur_op = op;
      snprintf(cur_set, sizeof cur_set, "%s", name);
      count = 0;
    }
    unsigned char key[16];
    int klen;
    if (inet_pton(AF_INET, addr, key) == 1) klen = 4;
    else if (inet_pton(AF_INET6, addr, key) == 1) klen = 16;
    else { fprintf(stderr, "not an address: %s\n", addr); return 2; }
    struct nftnl_set_elem *e = nftnl_set_elem_alloc();
    nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, klen);
    if (op == 'a' && fields == 4 && timeout > 0) nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeout);
    if (kind == 'e') nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
    if (kind == 'o') {
      // nft's element user data: one attribute, "flags" (type 1, 4 bytes, host order) = open interval (1).
      unsigned char udata[6] = {1, 4};
      uint32_t open = 1;
      memcpy(udata + 2, &open, sizeof open);
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA, udata, sizeof udata);
    }
    nftnl_set_elem_add(set, e);
    count++;
  }
  nftnl_batch_end(mnl_nlmsg_batch_current(batch), seq++);
  mnl_nlmsg_batch_next(batch);
  if (messages == 0) return 0;

  struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
  if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) { perror("netlink"); return 1; }
  int size = (int)mnl_nlmsg_batch_size(batch) + (1 << 16);
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
  int rcv = 1 << 22;
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
  // Acknowledgements without a copy of the request: a refused batch of big messages then reports the kernel's
  // reason instead of overflowing the receive buffer with echoed elements.
  int one = 1;
  setsockopt(mnl_socket_get_fd(nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch)) < 0) { perror("send"); return 1; }

  // One acknowledgement per message; an error for any of them means the kernel aborted the whole transaction.
  int acks = 0, failed = 0;
  char rbuf[1 << 16];
  while (acks < messages) {
    int ret = mnl_socket_recvfrom(nl, rbuf, sizeof rbuf);
    if (ret < 0) { perror("recv"); return 1; }
    for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; mnl_nlmsg_ok(h, ret); h = mnl_nlmsg_next(h, &ret)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      struct nlmsgerr *err = mnl_nlmsg_get_payload(h);
      acks++;
      if (err->error) {
        if (!failed) fprintf(stderr, "kernel refused the transaction: %s\n", strerror(-err->error));
        failed = 1;
      }
    }
    if (failed) break;
  }
  mnl_socket_close(nl);
  return failed ? 1 : 0;
}
