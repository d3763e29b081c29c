#!/usr/bin/env bash
# Host firewall for a Shuyu sandbox network: sandboxes reach the hub API and the proxy on the
# host, and nothing else: no other port on the host (any of its addresses), no other container
# on their own network, nothing routed anywhere else.
#
#   shuyu-firewall.sh apply  --bridge IF --gateway IP --ports P[,P...]
#   shuyu-firewall.sh check  --bridge IF --gateway IP --ports P[,P...]   # exit 0 iff in place
#   shuyu-firewall.sh remove --bridge IF
#
# IF is the sandbox network's bridge interface (`docker network create --internal
# -o com.docker.network.bridge.name=IF …`), IP its gateway address (where the hub and the proxy
# are reached), P the allowed TCP ports (proxy, hub API). Rules, all keyed by IF:
#   IPv4 INPUT     -i IF -> chain SHUYU-IF: replies to connections the host opened, TCP to IP:P,
#                  then reject everything (TCP reset, ICMP otherwise)
#   IPv4 FORWARD   -i IF / -o IF dropped in DOCKER-USER (no container-to-container traffic, no
#                  routing out; Docker's --internal already drops the latter, this repeats it)
#   IPv6           everything from or to IF dropped (the bridge has a link-local address)
# `apply` is idempotent (it rebuilds the chain and never duplicates a jump); `remove` undoes it.
set -euo pipefail

say() { echo "shuyu-firewall: $*" >&2; }
die() { say "$*"; exit 2; }

verb=${1:-}; shift || true
case "$verb" in apply|check|remove) ;; *) die "usage: $0 apply|check|remove --bridge IF [--gateway IP --ports P,Q]" ;; esac
bridge="" gateway="" ports=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bridge) bridge=${2:-}; shift 2 ;;
    --gateway) gateway=${2:-}; shift 2 ;;
    --ports) ports=${2:-}; shift 2 ;;
    *) die "unknown argument '$1' (see the header of $0)" ;;
  esac
done
[[ "$bridge" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "--bridge must be an interface name (1-15 characters), got '$bridge'"
chain="SHUYU-$bridge"
if [ "$verb" != remove ]; then
  [[ "$gateway" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "--gateway must be an IPv4 address, got '$gateway'"
  [[ "$ports" =~ ^[0-9]{1,5}(,[0-9]{1,5}){0,14}$ ]] || die "--ports must be 1 to 15 comma-separated port numbers, got '$ports'"
  ports=$(tr , '\n' <<<"$ports" | sort -n -u | paste -sd,)  # one spelling for apply and check
fi
command -v iptables >/dev/null || die "iptables is missing (Debian: apt-get install iptables)"
forward_chain() { if iptables -n -L DOCKER-USER >/dev/null 2>&1; then echo DOCKER-USER; else echo FORWARD; fi; }
have_ip6() { command -v ip6tables >/dev/null && ip6tables -n -L INPUT >/dev/null 2>&1; }

# The chain's rules exactly as `iptables -S` prints them.
expected_chain() {
  cat <<RULES
-N $chain
-A $chain -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A $chain -d $gateway/32 -p tcp -m multiport --dports $ports -j ACCEPT
-A $chain -p tcp -j REJECT --reject-with tcp-reset
-A $chain -j REJECT --reject-with icmp-port-unreachable
RULES
}

ensure_rule() {  # tool table-chain rule... : add at the top unless present
  local tool=$1 chain_name=$2; shift 2
  "$tool" -C "$chain_name" "$@" 2>/dev/null || "$tool" -I "$chain_name" 1 "$@"
}

delete_rule() {  # tool chain rule... : delete every copy
  local tool=$1 chain_name=$2; shift 2
  while "$tool" -C "$chain_name" "$@" 2>/dev/null; do "$tool" -D "$chain_name" "$@"; done
}

apply() {
  iptables -N "$chain" 2>/dev/null || iptables -F "$chain"
  iptables -A "$chain" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
  iptables -A "$chain" -d "$gateway/32" -p tcp -m multiport --dports "$ports" -j ACCEPT
  iptables -A "$chain" -p tcp -j REJECT --reject-with tcp-reset
  iptables -A "$chain" -j REJECT --reject-with icmp-port-unreachable
  ensure_rule iptables INPUT -i "$bridge" -j "$chain"
  local fwd; fwd=$(forward_chain)
  ensure_rule iptables "$fwd" -i "$bridge" -j DROP
  ensure_rule iptables "$fwd" -o "$bridge" -j DROP
  if have_ip6; then
    ensure_rule ip6tables INPUT -i "$bridge" -j DROP
    ensure_rule ip6tables FORWARD -i "$bridge" -j DROP
    ensure_rule ip6tables FORWARD -o "$bridge" -j DROP
  fi
  say "applied: $bridge may reach $gateway:{$ports} only"
}

check() {
  local actual
  actual=$(iptables -S "$chain" 2>/dev/null) || { say "chain $chain is missing"; exit 1; }
  if [ "$actual" != "$(expected_chain)" ]; then
    say "chain $chain differs from the expected rules:"; echo "$actual" >&2; exit 1
  fi
  iptables -C INPUT -i "$bridge" -j "$chain" 2>/dev/null || { say "INPUT does not send $bridge to $chain"; exit 1; }
  local fwd; fwd=$(forward_chain)
  iptables -C "$fwd" -i "$bridge" -j DROP 2>/dev/null || { say "$fwd does not drop traffic from $bridge"; exit 1; }
  iptables -C "$fwd" -o "$bridge" -j DROP 2>/dev/null || { say "$fwd does not drop traffic to $bridge"; exit 1; }
  if have_ip6; then
    ip6tables -C INPUT -i "$bridge" -j DROP 2>/dev/null || { say "IPv6 INPUT from $bridge is not dropped"; exit 1; }
  fi
  say "in place for $bridge ($gateway:{$ports})"
}

remove() {
  delete_rule iptables INPUT -i "$bridge" -j "$chain"
  for fwd in DOCKER-USER FORWARD; do
    iptables -n -L "$fwd" >/dev/null 2>&1 || continue
    delete_rule iptables "$fwd" -i "$bridge" -j DROP
    delete_rule iptables "$fwd" -o "$bridge" -j DROP
  done
  if iptables -n -L "$chain" >/dev/null 2>&1; then
    iptables -F "$chain"; iptables -X "$chain"
  fi
  if have_ip6; then
    delete_rule ip6tables INPUT -i "$bridge" -j DROP
    delete_rule ip6tables FORWARD -i "$bridge" -j DROP
    delete_rule ip6tables FORWARD -o "$bridge" -j DROP
  fi
  say "removed the rules for $bridge"
}

case "$verb" in
  apply) apply ;;
  check) check ;;
  remove) remove ;;
  *) die "usage: $0 apply|check|remove --bridge IF [--gateway IP --ports P,Q]" ;;
esac
