#!/usr/bin/env bash
# Side-by-side benchmark (issue 3): the same loads against Kamailio (websocket
# module) + rtpengine (userspace) and against imsgate, in one run, on one
# machine, then docs/BENCHMARKS.md from the results.
#
#   sudo interop-tests/bench/sidebyside.sh              # defaults: 7-15 minutes on 2 cores
#   sudo BENCH_CALLS="20" BENCH_RAMP_MAX=200 BENCH_IDLE_CLIENTS=500 \
#        BENCH_DOC=/tmp/BENCHMARKS.md interop-tests/bench/sidebyside.sh   # a quick look
#
# Steps: (1) build cmd/imsgate and cmd/imsgate-load; (2) re-run itself in a new
# network namespace holding only lo (unshare -n), so every packet stays on
# 127.0.0.1 and no port clashes with anything else on the machine; (3) start
# the echo UAS (imsgate-load echo, 127.0.0.1:5080); (4) start rtpengine and
# Kamailio (WS on 127.0.0.1:8090), run the loads, stop them; (5) start imsgate
# (WS on 127.0.0.1:8080) with bench's own config, run the same loads, stop it;
# (6) write the report. Every process is started here, stopped by its pid and
# waited for; an EXIT trap stops whatever is still running.
#
# Sizes come from the environment (or --name=value flags, e.g. --calls="50 500"):
#   BENCH_CALLS="50 500"        concurrent calls of each "calls" run
#   BENCH_RATE=50               call attempts per second
#   BENCH_DURATION=30s          talk time of each call
#   BENCH_RAMP_START=100 BENCH_RAMP_STEP=100 BENCH_RAMP_MAX=1000 BENCH_RAMP_STEP_DURATION=15s
#   BENCH_IDLE_CLIENTS=5000 BENCH_IDLE_HOLD=30s
#   BENCH_SOURCES=127.0.0.1-127.0.0.8   client source addresses (calls, ramp, idle)
#   BENCH_SETUP_RATES="100 200" BENCH_SETUP_SECONDS=20 BENCH_SETUP_TALK=1s
#                               setup: short calls started at each rate for that long
#   BENCH_TESTS="calls ramp setup idle"  which loads to run
#   BENCH_GATEWAYS="peer imsgate"        which gateways to measure
#   BENCH_PEER_ICE=lite         lite (rtpengine ICE-lite, as imsgate) or full
#   BENCH_RTPE_THREADS=$(nproc) rtpengine worker threads
#   BENCH_KAM_SHM_MB=4096 BENCH_KAM_PKG_MB=64   Kamailio -m and -M (20,000 WS clients need ~1.7 GB shm)
#   BENCH_OUT=interop-tests/bench/out/<time>   results, logs, configs
#   BENCH_DOC=docs/BENCHMARKS.md                the report written at the end
#   BENCH_LOAD_BIN=             use this generator binary instead of building one
#   BENCH_REPEAT_REASON=        with a BENCH_OUT that holds a run: why loads are repeated into it
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=$ROOT/interop-tests/bench
export PATH="/usr/local/go/bin:$PATH"

for arg in "$@"; do
	case $arg in
	--*=*)
		name=${arg%%=*}
		name=BENCH_$(echo "${name#--}" | tr 'a-z-' 'A-Z_')
		export "$name=${arg#*=}"
		;;
	-h | --help)
		sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d'
		exit 0
		;;
	*)
		echo "sidebyside: unknown argument $arg (use --name=value)" >&2
		exit 2
		;;
	esac
done

export BENCH_CALLS=${BENCH_CALLS:-"50 500"}
export BENCH_RATE=${BENCH_RATE:-50}
export BENCH_DURATION=${BENCH_DURATION:-30s}
export BENCH_RAMP_START=${BENCH_RAMP_START:-100}
export BENCH_RAMP_STEP=${BENCH_RAMP_STEP:-100}
export BENCH_RAMP_MAX=${BENCH_RAMP_MAX:-1000}
export BENCH_RAMP_STEP_DURATION=${BENCH_RAMP_STEP_DURATION:-15s}
export BENCH_IDLE_CLIENTS=${BENCH_IDLE_CLIENTS:-5000}
export BENCH_IDLE_HOLD=${BENCH_IDLE_HOLD:-30s}
export BENCH_SOURCES=${BENCH_SOURCES:-127.0.0.1-127.0.0.8}
export BENCH_SETUP_RATES=${BENCH_SETUP_RATES:-"100 200"}
export BENCH_SETUP_SECONDS=${BENCH_SETUP_SECONDS:-20}
export BENCH_SETUP_TALK=${BENCH_SETUP_TALK:-1s}
export BENCH_TESTS=${BENCH_TESTS:-"calls ramp setup idle"}
export BENCH_GATEWAYS=${BENCH_GATEWAYS:-"peer imsgate"}
export BENCH_PEER_ICE=${BENCH_PEER_ICE:-lite}
export BENCH_RTPE_THREADS=${BENCH_RTPE_THREADS:-$(nproc)}
export BENCH_KAM_SHM_MB=${BENCH_KAM_SHM_MB:-4096}
export BENCH_KAM_PKG_MB=${BENCH_KAM_PKG_MB:-64}
export BENCH_OUT=${BENCH_OUT:-$BENCH_DIR/out/$(date -u +%Y%m%dT%H%M%SZ)}
export BENCH_DOC=${BENCH_DOC:-$ROOT/docs/BENCHMARKS.md}
export BENCH_LOAD_BIN=${BENCH_LOAD_BIN:-}

log() { printf '%s sidebyside: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
	log "FAIL: $*"
	exit 1
}

# --- (1) build, outside the namespace ------------------------------------------
if [ -z "${BENCH_IN_NETNS:-}" ]; then
	[ "$(id -u)" = 0 ] || die "run as root: unshare -n needs it"
	for tool in kamailio rtpengine unshare ip ss jq go; do
		command -v $tool >/dev/null || die "$tool not found (apt-get install kamailio kamailio-websocket-modules rtpengine-daemon iproute2 util-linux jq)"
	done
	mkdir -p "$BENCH_OUT/bin" || die "mkdir $BENCH_OUT"
	BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
	log "results in $BENCH_OUT"
	# The generator runs as bench-load, not imsgate-load: on a shared machine,
	# other runs that clean up their own generators by name (pkill -f
	# imsgate-load) ended this run's echo UAS three times.
	if [ -s "$BENCH_OUT/params.env" ] && [ -x "$BENCH_OUT/bin/imsgate" ]; then
		log "(1) repeating into $BENCH_OUT: reusing its binaries"
	else
		log "(1) building cmd/imsgate and cmd/imsgate-load"
		(cd "$ROOT" && go build -o "$BENCH_OUT/bin/imsgate" ./cmd/imsgate) || die "build cmd/imsgate"
		if [ -z "$BENCH_LOAD_BIN" ]; then
			(cd "$ROOT" && go build -o "$BENCH_OUT/bin/bench-load" ./cmd/imsgate-load) || die "build cmd/imsgate-load"
		fi
	fi
	BENCH_LOAD_BIN=${BENCH_LOAD_BIN:-$BENCH_OUT/bin/bench-load}
	[ -x "$BENCH_LOAD_BIN" ] || die "no generator at $BENCH_LOAD_BIN"
	export BENCH_OUT BENCH_LOAD_BIN BENCH_IN_NETNS=1
	# A second run into the same BENCH_OUT (e.g. BENCH_GATEWAYS=peer
	# BENCH_TESTS=ramp to repeat one load) replaces those results only; the
	# report keeps the first run's parameters and lists the repeats.
	if [ -s "$BENCH_OUT/params.env" ]; then
		echo "$(date -u +%H:%M:%S) repeated: BENCH_GATEWAYS=\"$BENCH_GATEWAYS\" BENCH_TESTS=\"$BENCH_TESTS\"${BENCH_REPEAT_REASON:+: $BENCH_REPEAT_REASON}" >>"$BENCH_OUT/repeats.txt"
	else
		for v in ${!BENCH_@}; do printf '%s=%q\n' "$v" "${!v}"; done >"$BENCH_OUT/params.env"
	fi
	log "(2) entering a new network namespace (unshare -n)"
	exec unshare --net -- "$BASH" "${BASH_SOURCE[0]}"
fi

# --- (2) inside the namespace: only lo ------------------------------------------
ip link set lo up || die "ip link set lo up"
links=$(ip -o link show | wc -l)
[ "$links" = 1 ] || die "the namespace has $links links, want only lo"
# Ephemeral ports above every configured media range (imsgate 10000,
# 20000-29999; rtpengine 30000-39999), so a client socket never takes a
# gateway's port. Both sysctls are per namespace.
sysctl -qw net.ipv4.ip_local_port_range="40000 65535" || die "sysctl ip_local_port_range"
sysctl -qw net.core.somaxconn=8192 || log "sysctl somaxconn refused; keeping the default"
# One file per WebSocket client and per media socket, for both gateways and the
# generator; 20000 is this machine's hard limit.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || die "ulimit -n"
log "open files limit $(ulimit -n)"

BIN=$BENCH_OUT/bin
LOAD=$BENCH_LOAD_BIN
RUN=$BENCH_OUT/run
RES=$BENCH_OUT/results
mkdir -p "$RUN" "$RES"

# Processes started here, so cleanup can stop them in reverse order.
declare -a STARTED=()

# stop_pid PID NAME: SIGTERM, wait up to 20 s, then SIGKILL; always reaped,
# then whatever is left of its process group (setsid made the pgid its pid).
stop_pid() {
	local pid=$1 name=$2 i
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 200; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "$name ($pid) still running after 20 s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null
		fi
	fi
	wait "$pid" 2>/dev/null
	if pgrep -g "$pid" >/dev/null 2>&1; then
		kill -TERM -- "-$pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			pgrep -g "$pid" >/dev/null 2>&1 || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null
	fi
	log "stopped $name ($pid)"
	forget "$pid"
}

cleanup() {
	local rc=$? i entry
	trap - EXIT INT TERM
	for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
		entry=${STARTED[i]}
		stop_pid "${entry%%:*}" "${entry#*:}"
	done
	exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# Daemons start under setsid: each leads its own session and process group,
# so a signal a daemon sends to its group (Kamailio does on shutdown) never
# reaches this script or another daemon. setsid execs in place: $! is the daemon.

# started PID NAME: remember a process for cleanup; forget PID once it is reaped.
started() { STARTED+=("$1:$2"); }
forget() {
	local kept=() entry
	for entry in "${STARTED[@]}"; do
		[ "${entry%%:*}" = "$1" ] || kept+=("$entry")
	done
	STARTED=("${kept[@]}")
}

# wait_listen PROTO PORT NAME PID: until something listens there (10 s).
wait_listen() {
	local proto=$1 port=$2 name=$3 pid=$4 i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || die "$name exited at start (see $RUN/$name.log)"
		if [ "$proto" = tcp ]; then
			ss -Hltn "sport = :$port" | grep -q . && return 0
		else
			ss -Hlun "sport = :$port" | grep -q . && return 0
		fi
		sleep 0.1
	done
	die "$name does not listen on $proto $port after 10 s (see $RUN/$name.log)"
}

seconds() { # 30s, 2m, 1m30s, 45 -> seconds
	local d=$1 s=0
	[[ $d =~ ^[0-9]+$ ]] && {
		echo "$d"
		return
	}
	[[ $d =~ ([0-9]+)h ]] && s=$((s + BASH_REMATCH[1] * 3600))
	[[ $d =~ ([0-9]+)m([^s]|$) ]] && s=$((s + BASH_REMATCH[1] * 60))
	[[ $d =~ ([0-9]+)s ]] && s=$((s + BASH_REMATCH[1]))
	echo "$s"
}

# --- (3) the echo UAS behind both gateways --------------------------------------
ECHO_PID=
start_echo() {
	log "(3) starting the echo UAS on 127.0.0.1:5080"
	local ready_before
	ready_before=$(grep -c '^ready' "$RUN/echo.log" 2>/dev/null)
	ready_before=${ready_before:-0}
	setsid "$LOAD" echo -listen 127.0.0.1:5080 -media-ip 127.0.0.1 >>"$RUN/echo.log" 2>&1 &
	ECHO_PID=$!
	started "$ECHO_PID" echo
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c '^ready' "$RUN/echo.log")" -gt "$ready_before" ] && return 0
		kill -0 "$ECHO_PID" 2>/dev/null || die "echo exited at start (see $RUN/echo.log)"
		sleep 0.1
	done
	die "echo not ready after 10 s (see $RUN/echo.log)"
}

# ensure_echo: restart the echo UAS if it has gone (something outside this
# script once ended it mid-run); the load that saw it go is marked tainted.
ensure_echo() {
	kill -0 "$ECHO_PID" 2>/dev/null && return 0
	wait "$ECHO_PID" 2>/dev/null
	log "the echo UAS ($ECHO_PID) exited with status $?; restarting it (see $RUN/echo.log)"
	forget "$ECHO_PID"
	start_echo
}

# machine_cpu: "busy idle" jiffies of the whole machine (/proc/stat), so the
# report can say how much CPU other work on the machine took during a load.
machine_cpu() {
	awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit}' /proc/stat
}

# --- the loads, the same for both gateways --------------------------------------
# pss_kib PID...: proportional set size of the pids and their descendants. PSS
# charges a page shared by n processes 1/n to each, so Kamailio's shared
# memory (mapped into every worker) counts once; summed VmRSS counts it once
# per worker.
pss_kib() {
	local pids=" $* " all pid
	# cat, not awk on the files: a process gone between the glob and the read
	# would end awk (mawk) with nothing printed.
	all=$(cat /proc/[0-9]*/stat 2>/dev/null | awk -v roots="$pids" '
		BEGIN{n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1}
		{ppid[$1] = $4}
		END{changed = 1; while (changed) {changed = 0; for (p in ppid) if (!(p in keep) && (ppid[p] in keep)) {keep[p] = 1; changed = 1}}
		for (p in keep) print p}')
	for pid in $all; do
		awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null
	done | awk '{s += $1} END{print s + 0}'
}

# sample_pss OUTFILE SECONDS PID...: peak PSS, sampled each second (bounded).
sample_pss() {
	local out=$1 secs=$2 peak=0 v i
	shift 2
	for ((i = 0; i < secs; i++)); do
		v=$(pss_kib "$@")
		((v > peak)) && peak=$v
		echo "$peak" >"$out"
		sleep 1
	done
}

# run_load GATEWAY NAME TIMEOUT_S ARGS...: one generator run, bounded, with
# the gateway's PSS sampled before and during it (GW_PIDS).
run_load() {
	local gw=$1 name=$2 limit=$3 rc pid sampler
	shift 3
	rm -f "$RES/$gw-$name".{json,failed,tainted,pss-peak}
	ensure_echo
	local echo_before=$ECHO_PID
	# calls and ramp also report the echo's CPU (the pid may be new after a restart)
	case $1 in calls | ramp) set -- "$@" -echo-pids "$ECHO_PID" ;; esac
	log "$gw: imsgate-load $name: $*"
	echo "imsgate-load $*" >"$RES/$gw-$name.cmd"
	machine_cpu >"$RES/$gw-$name.cpu-before"
	pss_kib ${GW_PIDS//,/ } >"$RES/$gw-$name.pss-before"
	sample_pss "$RES/$gw-$name.pss-peak" "$limit" ${GW_PIDS//,/ } &
	sampler=$!
	started "$sampler" pss-sampler
	timeout --kill-after=10 "$limit" "$LOAD" "$@" -json "$RES/$gw-$name.json" >"$RUN/$gw-$name.log" 2>&1 &
	pid=$!
	started "$pid" "load-$name"
	wait "$pid"
	rc=$?
	forget "$pid"
	machine_cpu >"$RES/$gw-$name.cpu-after"
	stop_pid "$sampler" pss-sampler
	if ! kill -0 "$echo_before" 2>/dev/null; then
		echo "the echo UAS ($echo_before) exited during this load" >"$RES/$gw-$name.tainted"
		log "$gw: $name: the echo UAS exited during the load; its figures are marked tainted"
	fi
	tail -n 15 "$RUN/$gw-$name.log" | sed "s/^/    /" >&2
	if [ $rc -ne 0 ]; then
		log "$gw: $name exited with $rc (log $RUN/$gw-$name.log)"
		echo "$rc" >"$RES/$gw-$name.failed"
	fi
	return 0
}

# run_loads GATEWAY: every load of BENCH_TESTS against one gateway: calls
# and ramp against one gateway process, idle against a fresh one.
run_loads() {
	local gw=$1 dur_s step_s hold_s n levels common
	dur_s=$(seconds "$BENCH_DURATION")
	if [[ " $BENCH_TESTS " == *" calls "* || " $BENCH_TESTS " == *" ramp "* || " $BENCH_TESTS " == *" setup "* ]]; then
		"start_$gw"
		# -register: imsgate relays a browser's INVITE only once it has
		# registered (passthrough mode); the echo answers REGISTER 200.
		common=(-ws "$GW_URL" -target sip:echo@imsgate.test -domain imsgate.test -register -rate "$BENCH_RATE"
			-gateway-pids "$GW_PIDS" -sources "$BENCH_SOURCES" -label "$GW_LABEL")
		if [[ " $BENCH_TESTS " == *" calls "* ]]; then
			for n in $BENCH_CALLS; do
				run_load "$gw" "calls-$n" $((dur_s + n / BENCH_RATE + 120)) \
					calls "${common[@]}" -calls "$n" -duration "$BENCH_DURATION"
				settle
			done
		fi
		if [[ " $BENCH_TESTS " == *" ramp "* ]]; then
			step_s=$(seconds "$BENCH_RAMP_STEP_DURATION")
			levels=$(((BENCH_RAMP_MAX - BENCH_RAMP_START) / BENCH_RAMP_STEP + 1))
			run_load "$gw" ramp $((levels * (step_s + BENCH_RAMP_MAX / BENCH_RATE + 30) + 120)) \
				ramp "${common[@]}" -start "$BENCH_RAMP_START" \
				-step "$BENCH_RAMP_STEP" -max "$BENCH_RAMP_MAX" -step-duration "$BENCH_RAMP_STEP_DURATION"
			settle
		fi
		if [[ " $BENCH_TESTS " == *" setup "* ]]; then
			# Call setup rate: short calls started at each rate; the figures
			# are completed calls, INVITE→200 and CPU per call.
			# (a later -rate wins over the one in common).
			local r
			for r in $BENCH_SETUP_RATES; do
				run_load "$gw" "setup-$r" $((BENCH_SETUP_SECONDS + 120)) \
					calls "${common[@]}" -rate "$r" -calls $((r * BENCH_SETUP_SECONDS)) -duration "$BENCH_SETUP_TALK"
				settle
			done
		fi
		stop_gateway "$gw" calls
	fi
	if [[ " $BENCH_TESTS " == *" idle "* ]]; then
		"start_$gw"
		hold_s=$(seconds "$BENCH_IDLE_HOLD")
		run_load "$gw" idle $((hold_s + BENCH_IDLE_CLIENTS / 50 + 120)) \
			idle -ws "$GW_URL" -domain imsgate.test -clients "$BENCH_IDLE_CLIENTS" -hold "$BENCH_IDLE_HOLD" \
			-register -sources "$BENCH_SOURCES" -gateway-pids "$GW_PIDS" -label "$GW_LABEL"
		stop_gateway "$gw" idle
	fi
}

# settle: a pause between loads so the gateway has ended the last calls and
# closed the last sockets before the next load measures it.
settle() {
	sleep 5
}

# --- (4) the peer: rtpengine + Kamailio -----------------------------------------
# start_peer / start_imsgate set GW_PIDS (what the generator measures) and
# GW_URL; stop_gateway stops them. run_loads starts a fresh gateway for the
# idle test: a process that has just carried calls keeps the memory they
# freed and hands it to new clients, which hides what a client costs.
start_peer() {
	local ice_def=() rpid kpid
	[ "$BENCH_PEER_ICE" = lite ] && ice_def=(-A WITH_ICE_LITE)
	log "(4) starting rtpengine (userspace, $BENCH_RTPE_THREADS threads)"
	# --config-file=none: Debian's /etc/rtpengine/rtpengine.conf asks for the
	# kernel module (table = 0) and every interface. --table=-1: userspace only.
	setsid rtpengine --config-file=none --foreground --log-stderr --table=-1 \
		--interface=127.0.0.1 --listen-ng=127.0.0.1:2223 --listen-cli=127.0.0.1:2224 \
		--port-min=30000 --port-max=39999 --num-threads="$BENCH_RTPE_THREADS" \
		--delete-delay=0 --timeout=60 --log-level=4 \
		--pidfile="$RUN/rtpengine.pid" >>"$RUN/rtpengine.log" 2>&1 &
	rpid=$!
	started "$rpid" rtpengine
	wait_listen udp 2223 rtpengine "$rpid"

	log "(4) starting Kamailio (WS on 127.0.0.1:8090, ICE $BENCH_PEER_ICE)"
	# -m/-M: shared and private memory in MB. Each WebSocket connection takes
	# about 85 KB of shared memory (a 64 KiB frame buffer in wsconn_add, the
	# TCP read buffer, the connection): the defaults (64, 8) run out before
	# 1,000 clients and 1024 before 13,000. Pages count only once touched.
	setsid kamailio -f "$BENCH_DIR/kamailio-ws.cfg" "${ice_def[@]}" -DD -E \
		-m "$BENCH_KAM_SHM_MB" -M "$BENCH_KAM_PKG_MB" \
		-Y "$RUN" -P "$RUN/kamailio.pid" -w "$RUN" >>"$RUN/kamailio.log" 2>&1 &
	kpid=$!
	started "$kpid" kamailio
	wait_listen tcp 8090 kamailio "$kpid"
	wait_listen udp 5060 kamailio "$kpid"
	echo "kamailio $kpid rtpengine $rpid" >>"$RES/peer.pids"
	GW_PIDS=$kpid,$rpid
	GW_URL=ws://127.0.0.1:8090/
	GW_LABEL=kamailio+rtpengine
}

# rtpe_cli CMD: rtpengine's CLI (a line over TCP; the Debian package has no rtpengine-ctl).
rtpe_cli() {
	timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2224 && printf "%s\n" "$1" >&3 && cat <&3' _ "$1" 2>/dev/null
}

# --- (5) imsgate ----------------------------------------------------------------
start_imsgate() {
	local gpid
	cat >"$RUN/imsgate.yaml" <<-EOF
		# imsgate for the side-by-side benchmark (written by sidebyside.sh)
		log:
		  level: ${BENCH_IMSGATE_LOG_LEVEL:-warn}
		  format: console
		ws:
		  listen: 127.0.0.1:8080
		sip:
		  listen: 127.0.0.1:5070
		upstream:
		  proxy: sip:127.0.0.1:5080;transport=udp
		  domain: imsgate.test
		media:
		  public_ip: 127.0.0.1
		  webrtc_port: 10000
		  rtp_ports: "20000-29999"
		  codecs: [PCMU, PCMA, telephone-event]
	EOF
	"$BIN/imsgate" -check -config "$RUN/imsgate.yaml" >/dev/null || die "imsgate -check $RUN/imsgate.yaml"
	log "(5) starting imsgate (WS on 127.0.0.1:8080)"
	setsid "$BIN/imsgate" -config "$RUN/imsgate.yaml" >>"$RUN/imsgate.log" 2>&1 &
	gpid=$!
	started "$gpid" imsgate
	wait_listen tcp 8080 imsgate "$gpid"
	wait_listen udp 10000 imsgate "$gpid"
	echo "imsgate $gpid" >>"$RES/imsgate.pids"
	GW_PIDS=$gpid
	GW_URL=ws://127.0.0.1:8080/
	GW_LABEL=imsgate
}

# stop_gateway GATEWAY [STAGE]: stops what start_GATEWAY started (GW_PIDS, in
# order); for the peer, keeps rtpengine's own totals of that STAGE first.
stop_gateway() {
	local pid
	[ "$1" = peer ] && [ -n "${2:-}" ] && rtpe_cli "list totals" >"$RES/peer-rtpengine-totals-$2.txt"
	for pid in ${GW_PIDS//,/ }; do
		stop_pid "$pid" "$1 ($(cat "/proc/$pid/comm" 2>/dev/null || echo gone))"
	done
	GW_PIDS=
}

start_echo
for gw in $BENCH_GATEWAYS; do
	case $gw in
	peer | imsgate) run_loads "$gw" ;;
	*) die "unknown gateway $gw in BENCH_GATEWAYS" ;;
	esac
done
stop_pid "$ECHO_PID" echo

# --- (6) the report -------------------------------------------------------------
log "(6) writing $BENCH_DOC"
"$BENCH_DIR/report.sh" "$BENCH_OUT" >"$BENCH_OUT/report.md" || die "report.sh"
"$BENCH_DIR/report.sh" --splice "$BENCH_OUT/report.md" "$BENCH_DOC" || die "write $BENCH_DOC"
log "done: $BENCH_DOC (results in $BENCH_OUT)"
