#define _GNU_SOURCE
// rampart-counters: print the named counters of nftables tables over netlink, one dump request per table, without
// nft's cache (which loads every rule, map and set element of the table first: seconds for a big ruleset).
// Usage: rampart-counters [-n NETNS] [-c] [-l] FAMILY [TABLE...]
//   -n NETNS  enter the named network namespace (/run/netns/NETNS) first: cheaper than `ip netns exec`, which also
//             makes a mount namespace and remounts /sys on every call
//   -c        also print "conntrack COUNT MAX" from the namespace's nf_conntrack sysctls (nothing without conntrack)
//   -l        also print every interface's 64-bit counters (rtnetlink), one line each:
//             "link IFINDEX NAME UP OPERSTATE RX_BYTES RX_PACKETS RX_ERRORS RX_DROPPED TX_BYTES TX_PACKETS TX_ERRORS TX_DROPPED"
//             (UP: 1 if administratively up; OPERSTATE: RFC 2863 number as the kernel reports it)
// Output: one line per counter, "TABLE NAME PACKETS BYTES". A table that does not exist prints nothing.
// Exit 0 on success, 1 on a netlink failure, 2 on bad arguments.
// Built by scripts/bootstrap from libnftnl and libmnl; Rampart falls back to `nft -j list counters` when it is missing.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libmnl/libmnl.h>
#include <libnftnl/object.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

static int family_of(const char *s) {
  if (!strcmp(s, "inet")) return NFPROTO_INET;
  if (!strcmp(s, "ip")) return NFPROTO_IPV4;
  if (!strcmp(s, "ip6")) return NFPROTO_IPV6;
  return -1;
}

static int print_counter(const struct nlmsghdr *nlh, void *data) {
  const char *table = data;
  struct nftnl_obj *o = nftnl_obj_alloc();
  if (!o) return MNL_CB_ERROR;
  if (nftnl_obj_nlmsg_parse(nlh, o) < 0) { nftnl_obj_free(o); return MNL_CB_ERROR; }
  // The dump may also carry other tables' objects on old kernels that ignore the table filter.
  const char *t = nftnl_obj_get_str(o, NFTNL_OBJ_TABLE);
  if (nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) == NFT_OBJECT_COUNTER && t && !strcmp(t, table)) {
    printf("%s %s %" PRIu64 " %" PRIu64 "\n", table, nftnl_obj_get_str(o, NFTNL_OBJ_NAME), nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS),
           nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES));
  }
  nftnl_obj_free(o);
  return MNL_CB_OK;
}

static int link_attr(const struct nlattr *attr, void *data) {
  const struct nlattr **tb = data;
  int type = mnl_attr_get_type(attr);
  if (mnl_attr_type_valid(attr, IFLA_MAX) < 0) return MNL_CB_OK;
  tb[type] = attr;
  return MNL_CB_OK;
}

static int print_link(const struct nlmsghdr *nlh, void *data) {
  (void)data;
  const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
  const struct nlattr *tb[IFLA_MAX + 1] = {0};
  if (mnl_attr_parse(nlh, sizeof(*ifm), link_attr, tb) < 0 || !tb[IFLA_IFNAME]) return MNL_CB_OK;
  struct rtnl_link_stats64 st;
  memset(&st, 0, sizeof st);
  if (tb[IFLA_STATS64]) {
    size_t n = mnl_attr_get_payload_len(tb[IFLA_STATS64]);
    memcpy(&st, mnl_attr_get_payload(tb[IFLA_STATS64]), n < sizeof st ? n : sizeof st);
  }
  unsigned operstate = tb[IFLA_OPERSTATE] ? mnl_attr_get_u8(tb[IFLA_OPERSTATE]) : 0;
  printf("link %d %s %d %u %llu %llu %llu %llu %llu %llu %llu %llu\n", ifm->ifi_index, mnl_attr_get_str(tb[IFLA_IFNAME]), (ifm->ifi_flags & IFF_UP) ? 1 : 0,
         operstate, (unsigned long long)st.rx_bytes, (unsigned long long)st.rx_packets, (unsigned long long)st.rx_errors,
         (unsigned long long)st.rx_dropped, (unsigned long long)st.tx_bytes, (unsigned long long)st.tx_packets,
         (unsigned long long)st.tx_errors, (unsigned long long)st.tx_dropped);
  return MNL_CB_OK;
}

/** Dump every interface with its 64-bit counters. */
static int dump_links(void) {
  struct mnl_socket *rt = mnl_socket_open(NETLINK_ROUTE);
  if (!rt || mnl_socket_bind(rt, 0, MNL_SOCKET_AUTOPID) < 0) { perror("rtnetlink"); return -1; }
  static char buf[1 << 16];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = (uint32_t)time(NULL);
  struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
  ifm->ifi_family = AF_UNSPEC;
  uint32_t seq = nlh->nlmsg_seq;
  unsigned int portid = mnl_socket_get_portid(rt);
  if (mnl_socket_sendto(rt, nlh, nlh->nlmsg_len) < 0) { perror("send"); return -1; }
  for (;;) {
    int ret = mnl_socket_recvfrom(rt, buf, sizeof buf);
    if (ret < 0) { perror("recv"); return -1; }
    ret = mnl_cb_run(buf, ret, seq, portid, print_link, NULL);
    if (ret == MNL_CB_STOP) break;
    if (ret < 0) { perror("link dump"); return -1; }
  }
  mnl_socket_close(rt);
  return 0;
}

static long read_number(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long v = -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

int main(int argc, char **argv) {
  int arg = 1, conntrack = 0, links = 0;
  const char *netns = NULL;
  while (arg < argc && argv[arg][0] == '-') {
    if (!strcmp(argv[arg], "-c")) { conntrack = 1; arg++; }
    else if (!strcmp(argv[arg], "-l")) { links = 1; arg++; }
    else if (!strcmp(argv[arg], "-n") && arg + 1 < argc) { netns = argv[arg + 1]; arg += 2; }
    else { fprintf(stderr, "unknown option %s\n", argv[arg]); return 2; }
  }
  if (argc - arg < 1 || (argc - arg < 2 && !conntrack && !links)) { fprintf(stderr, "usage: %s [-n NETNS] [-c] [-l] FAMILY [TABLE...]\n", argv[0]); return 2; }
  if (netns) {
    if (!*netns || strlen(netns) > 64 || strchr(netns, '/') || !strcmp(netns, ".") || !strcmp(netns, "..")) { fprintf(stderr, "bad namespace name\n"); return 2; }
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", netns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) { perror(path); return 1; }
    close(fd);
  }
  int family = family_of(argv[arg]);
  if (family < 0) { fprintf(stderr, "unknown family %s\n", argv[arg]); return 2; }
  arg++;
  if (links && dump_links() < 0) return 1;
  if (conntrack) {
    long count = read_number("/proc/sys/net/netfilter/nf_conntrack_count");
    long max = read_number("/proc/sys/net/netfilter/nf_conntrack_max");
    if (count >= 0 && max >= 0) printf("conntrack %ld %ld\n", count, max);
  }
  struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
  if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) { perror("netlink"); return 1; }
  unsigned int portid = mnl_socket_get_portid(nl);
  uint32_t seq = (uint32_t)time(NULL);
  static char buf[1 << 18];
  for (int a = arg; a < argc; a++) {
    const char *table = argv[a];
    if (strlen(table) > 64) { fprintf(stderr, "table name too long\n"); return 2; }
    struct nftnl_obj *o = nftnl_obj_alloc();
    nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, table);
    nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETOBJ, family, NLM_F_DUMP, ++seq);
    nftnl_obj_nlmsg_build_payload(nlh, o);
    nftnl_obj_free(o);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) { perror("send"); return 1; }
    for (;;) {
      int ret = mnl_socket_recvfrom(nl, buf, sizeof buf);
      if (ret < 0) { perror("recv"); return 1; }
      ret = mnl_cb_run(buf, ret, seq, portid, print_counter, (void *)table);
      if (ret == MNL_CB_STOP) break;
      if (ret < 0) {
        if (errno == ENOENT) break; // no such table: nothing to print
        perror("dump");
        return 1;
      }
    }
  }
  mnl_socket_close(nl);
  return fflush(stdout) == 0 ? 0 : 1;
}
