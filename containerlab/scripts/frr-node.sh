#!/bin/sh
# frr-node.sh CONFDIR RUNDIR: runs FRR (zebra, staticd, bgpd) as a lab
# node's cmd, the same way in a container and under evpnlab.
#
# Every path is explicit: under evpnlab the nodes share the host's
# filesystem, so FRR's defaults (/etc/frr, /run/frr) would be shared by all
# nodes and by an FRR on the host. CONFDIR holds zebra.conf, staticd.conf
# and bgpd.conf; RUNDIR (the node's own directory, a bind) gets copies of
# them, the PID files, logs and the vty sockets:
#   vtysh --vty_socket RUNDIR -c 'show bgp l2vpn evpn summary'
# zebra and staticd run in the background, bgpd in the foreground as the
# node's main process. The daemons run as the frr user, so the copies and
# RUNDIR belong to frr.
set -eu
conf=$1
run=$2
mkdir -p "$run"
for d in zebra staticd bgpd; do
	cp "$conf/$d.conf" "$run/$d.conf"
	rm -f "$run/$d.pid"
done
chown -R frr:frr "$run"
chmod 755 "$run"
start() { # daemon, extra flags...
	d=$1
	shift
	/usr/lib/frr/"$d" -f "$run/$d.conf" -i "$run/$d.pid" -z "$run/zserv.api" \
		--vty_socket "$run" -u frr -g frr -P 0 --log "file:$run/$d.log" "$@"
}
start zebra -d
# staticd and bgpd connect to zebra's API socket: wait for it (10 s).
i=0
while [ ! -S "$run/zserv.api" ]; do
	i=$((i + 1))
	if [ "$i" -gt 100 ]; then
		echo "frr-node: zebra did not create $run/zserv.api; see $run/zebra.log" >&2
		exit 1
	fi
	sleep 0.1
done
start staticd -d
exec /usr/lib/frr/bgpd -f "$run/bgpd.conf" -i "$run/bgpd.pid" -z "$run/zserv.api" \
	--vty_socket "$run" -u frr -g frr -P 0 --log "file:$run/bgpd.log"
