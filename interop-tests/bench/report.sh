#!/usr/bin/env bash
# Writes the side-by-side report (Markdown, on stdout) from one run of
# sidebyside.sh: report.sh OUT_DIR. Run it again on a kept OUT_DIR to
# regenerate the report without measuring again.
#
#   report.sh OUT_DIR                 the generated part, on stdout
#   report.sh --splice PART DOC       put PART between DOC's sidebyside markers,
#                                     keeping what people wrote around them
set -uo pipefail

BEGIN_MARK='<!-- sidebyside:begin (written by interop-tests/bench/sidebyside.sh; edit outside these markers) -->'
END_MARK='<!-- sidebyside:end -->'

# splice PART DOC: DOC keeps its text outside the markers; a DOC without
# markers (or none at all) becomes a title, the part, and a place for notes.
splice() {
	local part=$1 doc=$2 tmp
	tmp=$(mktemp "$doc.XXXXXX") || return 1
	if [ -f "$doc" ] && grep -qF '<!-- sidebyside:begin' "$doc"; then
		awk -v part="$part" -v begin="$BEGIN_MARK" '
			/^<!-- sidebyside:begin/ { print begin; while ((getline line < part) > 0) print line; skip = 1; next }
			/^<!-- sidebyside:end/ { skip = 0 }
			!skip' "$doc" >"$tmp"
	else
		{
			echo "# Benchmarks: imsgate beside Kamailio + rtpengine"
			echo
			echo "$BEGIN_MARK"
			cat "$part"
			echo "$END_MARK"
			echo
			echo "## What each change bought"
			echo
			echo "_Hand-written: the profile that justified each packet-path change and what it"
			echo "moved in the figures above. sidebyside.sh keeps this part when it rewrites the tables._"
		} >"$tmp"
	fi
	mv "$tmp" "$doc"
}

if [ "${1:-}" = --splice ]; then
	splice "${2:?usage: report.sh --splice PART DOC}" "${3:?usage: report.sh --splice PART DOC}"
	exit
fi

OUT=${1:?usage: report.sh OUT_DIR}
RES=$OUT/results
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH="/usr/local/go/bin:$PATH"
# shellcheck disable=SC1091
[ -f "$OUT/params.env" ] && . "$OUT/params.env"
LOAD=${BENCH_LOAD_BIN:-$OUT/bin/imsgate-load}
PEER=peer
OURS=imsgate

# j FILE FILTER: one value from a result file, "" when absent.
j() {
	[ -s "$1" ] || return 0
	jq -r "($2) | select(. != null)" "$1" 2>/dev/null
}

# or_none: stdin, or "none" when it is empty.
or_none() {
	local s
	s=$(cat)
	echo "${s:-none}"
}

# or_dash: stdin, or "–" when it is empty.
or_dash() {
	local s
	s=$(cat)
	echo "${s:-–}"
}

# failures FILE PATH: "reason ×count, ..." of a failures map.
failures() {
	j "$1" "$2 // {} | to_entries | map(\"\(.key) ×\(.value)\") | join(\", \")" | or_none
}

# num VALUE DIGITS: a number rounded, "–" when empty.
num() {
	[ -n "$1" ] || {
		echo "–"
		return
	}
	awk -v v="$1" -v d="$2" 'BEGIN{printf "%.*f", d, v}'
}

# ratio A B: A/B with two digits, "–" when either is missing or B is 0.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || b + 0 == 0) print "–"; else printf "%.2f", a / b }'
}

# lt A B / le A B: numeric comparisons that are false when a value is missing.
le() { awk -v a="$1" -v b="$2" 'BEGIN{ exit !(a != "" && b != "" && a + 0 <= b + 0) }'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN{ exit !(a != "" && b != "" && a + 0 > b + 0) }'; }

# Each call forwards 50 packets a second each way (G.711, 20 ms): 6,000 a
# minute through the gateway. CPU per call-minute over that is CPU per packet.
us_per_packet() {
	[ -n "$1" ] || return 0
	awk -v c="$1" 'BEGIN{printf "%.1f", c * 1e6 / 6000}'
}

calls_sizes=${BENCH_CALLS:-}
big=""
for n in $calls_sizes; do big=$n; done
for n in $calls_sizes; do [ "$n" = 500 ] && big=500; done

# row LABEL PEER_VALUE OURS_VALUE [DIGITS]: one table row with the ratio.
row() {
	local d=${4:-2}
	printf '| %s | %s | %s | %s |\n' "$1" "$(num "$2" "$d")" "$(num "$3" "$d")" "$(ratio "$3" "$2")"
}

calls_table() {
	local n=$1 p=$RES/$PEER-calls-$n.json o=$RES/$OURS-calls-$n.json c
	echo
	echo "### $n concurrent calls, ${BENCH_RATE:-?} calls/s, ${BENCH_DURATION:-?} each"
	echo
	notes $PEER "calls-$n"
	notes $OURS "calls-$n"
	echo
	echo "| | Kamailio + rtpengine | imsgate | imsgate / peer |"
	echo "|---|---:|---:|---:|"
	c=.calls
	row "calls attempted" "$(j "$p" "$c.attempted")" "$(j "$o" "$c.attempted")" 0
	row "calls ok" "$(j "$p" "$c.ok")" "$(j "$o" "$c.ok")" 0
	row "calls failed" "$(j "$p" "$c.failed")" "$(j "$o" "$c.failed")" 0
	row "calls up together (steady window)" "$(j "$p" "$c.held")" "$(j "$o" "$c.held")" 0
	row "INVITE→200 p50 (ms)" "$(j "$p" "$c.invite_to_200.p50_ms")" "$(j "$o" "$c.invite_to_200.p50_ms")"
	row "INVITE→200 p95 (ms)" "$(j "$p" "$c.invite_to_200.p95_ms")" "$(j "$o" "$c.invite_to_200.p95_ms")"
	row "INVITE→200 p99 (ms)" "$(j "$p" "$c.invite_to_200.p99_ms")" "$(j "$o" "$c.invite_to_200.p99_ms")"
	row "ICE connected→DTLS connected p50 (ms)" "$(j "$p" "$c.ice_to_dtls.p50_ms")" "$(j "$o" "$c.ice_to_dtls.p50_ms")"
	row "ICE connected→DTLS connected p99 (ms)" "$(j "$p" "$c.ice_to_dtls.p99_ms")" "$(j "$o" "$c.ice_to_dtls.p99_ms")"
	row "INVITE→first echoed packet p50 (ms)" "$(j "$p" "$c.invite_to_first_echo.p50_ms")" "$(j "$o" "$c.invite_to_first_echo.p50_ms")"
	row "INVITE→first echoed packet p99 (ms)" "$(j "$p" "$c.invite_to_first_echo.p99_ms")" "$(j "$o" "$c.invite_to_first_echo.p99_ms")"
	row "echo RTT p50 (ms)" "$(j "$p" "$c.echo_rtt.p50_ms")" "$(j "$o" "$c.echo_rtt.p50_ms")" 3
	row "echo RTT p99 (ms)" "$(j "$p" "$c.echo_rtt.p99_ms")" "$(j "$o" "$c.echo_rtt.p99_ms")" 3
	row "packet loss (%)" "$(j "$p" "$c.loss_pct")" "$(j "$o" "$c.loss_pct")" 3
	row "gateway CPU per call-minute (s)" "$(j "$p" "$c.gateway_cpu_s_per_call_minute")" "$(j "$o" "$c.gateway_cpu_s_per_call_minute")" 3
	row "gateway CPU per forwarded packet (µs)" "$(us_per_packet "$(j "$p" "$c.gateway_cpu_s_per_call_minute")")" \
		"$(us_per_packet "$(j "$o" "$c.gateway_cpu_s_per_call_minute")")" 1
	row "gateway RSS per call (KiB, summed VmRSS)" "$(j "$p" "$c.gateway_rss_per_call_kib")" "$(j "$o" "$c.gateway_rss_per_call_kib")" 1
	row "gateway PSS per call (KiB)" "$(pss_per_call $PEER "$n")" "$(pss_per_call $OURS "$n")" 1
	row "gateway CPU, whole run (s)" "$(j "$p" "$c.gateway.cpu_seconds")" "$(j "$o" "$c.gateway.cpu_seconds")"
	row "gateway peak RSS (MiB, summed VmHWM)" "$(j "$p" "$c.gateway.peak_rss_kib / 1024")" "$(j "$o" "$c.gateway.peak_rss_kib / 1024")" 1
	row "gateway processes" "$(j "$p" "$c.gateway.processes")" "$(j "$o" "$c.gateway.processes")" 0
	row "echo UAS CPU (s)" "$(j "$p" "$c.echo.cpu_seconds")" "$(j "$o" "$c.echo.cpu_seconds")"
	row "generator CPU (s)" "$(j "$p" "$c.generator.cpu_seconds")" "$(j "$o" "$c.generator.cpu_seconds")"
	row "generator peak RSS (MiB)" "$(j "$p" "$c.generator.peak_rss_kib / 1024")" "$(j "$o" "$c.generator.peak_rss_kib / 1024")" 1
	machine_rows "calls-$n"
	echo
	echo "CPU basis: peer $(j "$p" "$c.cpu_basis" | or_dash), imsgate $(j "$o" "$c.cpu_basis" | or_dash)" \
		"(\"steady\": only while every call was up). Failure reasons: peer $(failures "$p" "$c.failures");" \
		"imsgate $(failures "$o" "$c.failures")."
}

# setup_table: call setup rate, short calls started at each rate.
setup_table() {
	local r p o c=.calls
	echo
	echo "### Call setup rate: short calls (${BENCH_SETUP_TALK:-?} each) started for ${BENCH_SETUP_SECONDS:-?} s"
	echo
	echo "| calls/s | calls ok (peer / imsgate) | failed | INVITE→200 p50 ms | INVITE→200 p99 ms | gateway CPU per call (ms) | gateway CPU, whole run (s) |"
	echo "|---:|---|---|---|---|---|---|"
	for r in ${BENCH_SETUP_RATES:-}; do
		p=$RES/$PEER-setup-$r.json o=$RES/$OURS-setup-$r.json
		printf '| %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s |\n' "$r" \
			"$(j "$p" "$c.ok")" "$(j "$o" "$c.ok")" "$(j "$p" "$c.failed")" "$(j "$o" "$c.failed")" \
			"$(num "$(j "$p" "$c.invite_to_200.p50_ms")" 2)" "$(num "$(j "$o" "$c.invite_to_200.p50_ms")" 2)" \
			"$(num "$(j "$p" "$c.invite_to_200.p99_ms")" 2)" "$(num "$(j "$o" "$c.invite_to_200.p99_ms")" 2)" \
			"$(num "$(j "$p" "if $c.ok > 0 then $c.gateway.cpu_seconds * 1000 / $c.ok else null end")" 2)" \
			"$(num "$(j "$o" "if $c.ok > 0 then $c.gateway.cpu_seconds * 1000 / $c.ok else null end")" 2)" \
			"$(num "$(j "$p" "$c.gateway.cpu_seconds")" 2)" "$(num "$(j "$o" "$c.gateway.cpu_seconds")" 2)"
	done
	echo
	echo "Gateway CPU per call counts the whole run (setup, media for the talk time, teardown) over the calls that completed."
}

ramp_table() {
	local p=$RES/$PEER-ramp.json o=$RES/$OURS-ramp.json lv
	echo
	echo "### Ramp: ${BENCH_RAMP_START:-?} to ${BENCH_RAMP_MAX:-?} calls in steps of ${BENCH_RAMP_STEP:-?}, ${BENCH_RAMP_STEP_DURATION:-?} a step"
	echo
	notes $PEER ramp
	notes $OURS ramp
	echo
	echo "Last level held (loss ≤ 0.5 % and RTT p99 ≤ 50 ms): Kamailio + rtpengine **$(j "$p" .ramp.last_level_held | or_dash)**" \
		"(stopped by: $(j "$p" .ramp.stopped_by | or_dash)), imsgate **$(j "$o" .ramp.last_level_held | or_dash)**" \
		"(stopped by: $(j "$o" .ramp.stopped_by | or_dash))."
	echo
	echo "| calls | held (peer / imsgate) | INVITE→200 p50 ms (peer / imsgate) | ICE→DTLS p50 ms | RTT p99 ms | loss % | gateway CPU s per call-minute |"
	echo "|---:|---|---|---|---|---|---|"
	for lv in $( (j "$p" '.ramp.levels[].calls'; j "$o" '.ramp.levels[].calls') | sort -n | uniq); do
		local sel=".ramp.levels[] | select(.calls == $lv)"
		printf '| %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s |\n' "$lv" \
			"$(j "$p" "$sel | .held")" "$(j "$o" "$sel | .held")" \
			"$(num "$(j "$p" "$sel | .result.invite_to_200.p50_ms")" 2)" "$(num "$(j "$o" "$sel | .result.invite_to_200.p50_ms")" 2)" \
			"$(num "$(j "$p" "$sel | .result.ice_to_dtls.p50_ms")" 2)" "$(num "$(j "$o" "$sel | .result.ice_to_dtls.p50_ms")" 2)" \
			"$(num "$(j "$p" "$sel | .result.echo_rtt.p99_ms")" 2)" "$(num "$(j "$o" "$sel | .result.echo_rtt.p99_ms")" 2)" \
			"$(num "$(j "$p" "$sel | .result.loss_pct")" 3)" "$(num "$(j "$o" "$sel | .result.loss_pct")" 3)" \
			"$(num "$(j "$p" "$sel | .result.gateway_cpu_s_per_call_minute")" 3)" "$(num "$(j "$o" "$sel | .result.gateway_cpu_s_per_call_minute")" 3)"
	done
	echo
	echo "The whole machine was busy $(machine $PEER ramp busy | or_dash) of $(machine $PEER ramp total | or_dash) core-seconds" \
		"during the peer's ramp and $(machine $OURS ramp busy | or_dash) of $(machine $OURS ramp total | or_dash) during imsgate's" \
		"(gateway, echo and generator included)."
}

# machine GATEWAY LOAD FIELD: from the /proc/stat readings around a load, in
# core-seconds: "busy", "total" (cores × wall time) or "other" (busy minus
# the gateway, echo and generator CPU the generator counted).
machine() {
	local b a ours="" f=$RES/$1-$2.json sec=.calls
	b=$(cat "$RES/$1-$2.cpu-before" 2>/dev/null) a=$(cat "$RES/$1-$2.cpu-after" 2>/dev/null)
	[ -n "$b" ] && [ -n "$a" ] || return 0
	case $2 in ramp) sec="" ;; idle) sec=.idle ;; esac
	if [ -n "$sec" ]; then
		ours=$(j "$f" "[$sec.gateway.cpu_seconds, ($sec.echo.cpu_seconds // 0), $sec.generator.cpu_seconds] | add")
	fi
	awk -v b="$b" -v a="$a" -v hz="$(getconf CLK_TCK)" -v ours="$ours" -v what="$3" 'BEGIN{
		split(b, x, " "); split(a, y, " ")
		busy = (y[1] - x[1]) / hz; total = busy + (y[2] - x[2]) / hz
		if (what == "busy") printf "%.1f", busy
		else if (what == "total") printf "%.1f", total
		else if (what == "other" && ours != "") { v = busy - ours; printf "%.1f", (v < 0 ? 0 : v) } }'
}

# notes GATEWAY LOAD: why a result is missing or not to be trusted.
notes() {
	local f=$RES/$1-$2
	[ -s "$f.json" ] || echo "_No result from $1 for $2 (see run/$1-$2.log)._"
	[ -e "$f.failed" ] && echo "_The $1 $2 run exited with status $(cat "$f.failed") (see run/$1-$2.log)._"
	[ -e "$f.tainted" ] && echo "_**Tainted**: $(cat "$f.tainted"); the $1 $2 figures are not comparable._"
	return 0
}

# repeats: loads run again into the same directory, and why that is allowed.
repeats() {
	[ -s "$OUT/repeats.txt" ] || return 0
	echo
	echo "Some loads were run again into the same run directory (same binaries, same"
	echo "machine; each replaced only its own results), because the first attempt was spoilt:"
	echo
	sed 's/^/- /' "$OUT/repeats.txt"
}

# usable GATEWAY LOAD: the load has a result that neither failed nor was tainted.
usable() {
	[ -s "$RES/$1-$2.json" ] && [ ! -e "$RES/$1-$2.failed" ] && [ ! -e "$RES/$1-$2.tainted" ]
}

# run_problems: every load that failed or was tainted, as a list for the summary.
run_problems() {
	local f any=""
	for f in "$RES"/*.failed "$RES"/*.tainted; do
		[ -e "$f" ] || continue
		[ -n "$any" ] || printf '\n**Problems in this run** (figures from these loads are not comparable):\n\n'
		any=1
		case $f in
		*.failed) echo "- $(basename "${f%.failed}"): the generator exited with status $(cat "$f")" ;;
		*.tainted) echo "- $(basename "${f%.tainted}"): $(cat "$f")" ;;
		esac
	done
}

# machine_rows LOAD: how busy the whole machine was during each gateway's run.
machine_rows() {
	row "machine CPU busy during the run (core-s)" "$(machine $PEER "$1" busy)" "$(machine $OURS "$1" busy)" 1
	row "of which other processes on the machine (core-s)" "$(machine $PEER "$1" other)" "$(machine $OURS "$1" other)" 1
	row "machine CPU available (cores × wall s)" "$(machine $PEER "$1" total)" "$(machine $OURS "$1" total)" 1
}

# pss_per GATEWAY LOAD COUNT: (peak PSS during the load - PSS before it) /
# COUNT, in KiB; the script samples PSS each second around every load.
pss_per() {
	local before peak
	before=$(cat "$RES/$1-$2.pss-before" 2>/dev/null)
	peak=$(cat "$RES/$1-$2.pss-peak" 2>/dev/null)
	awk -v b="$before" -v p="$peak" -v u="$3" 'BEGIN{ if (b == "" || p == "" || u + 0 == 0) exit; printf "%.2f", (p - b) / u }'
}
pss_per_client() { pss_per "$1" idle "$(j "$RES/$1-idle.json" .idle.up)"; }
pss_per_call() { pss_per "$1" "calls-$2" "$(j "$RES/$1-calls-$2.json" .calls.held)"; }

idle_table() {
	local p=$RES/$PEER-idle.json o=$RES/$OURS-idle.json
	echo
	echo "### ${BENCH_IDLE_CLIENTS:-?} idle registered WebSocket clients, held ${BENCH_IDLE_HOLD:-?}"
	echo
	notes $PEER idle
	notes $OURS idle
	echo
	echo "| | Kamailio + rtpengine | imsgate | imsgate / peer |"
	echo "|---|---:|---:|---:|"
	row "clients up" "$(j "$p" .idle.up)" "$(j "$o" .idle.up)" 0
	row "clients failed" "$(j "$p" .idle.failed)" "$(j "$o" .idle.failed)" 0
	row "gateway RSS before (MiB, summed VmRSS)" "$(j "$p" ".idle.gateway_rss_before_kib / 1024")" "$(j "$o" ".idle.gateway_rss_before_kib / 1024")" 1
	row "gateway RSS at the end of the hold (MiB, summed VmRSS)" "$(j "$p" ".idle.gateway_rss_after_kib / 1024")" "$(j "$o" ".idle.gateway_rss_after_kib / 1024")" 1
	row "gateway RSS per client, end of the hold (KiB, summed VmRSS)" "$(j "$p" .idle.gateway_rss_per_client_kib)" "$(j "$o" .idle.gateway_rss_per_client_kib)" 2
	row "gateway RSS per client, peak (KiB, summed VmRSS)" "$(j "$p" .idle.gateway_rss_peak_per_client_kib)" "$(j "$o" .idle.gateway_rss_peak_per_client_kib)" 2
	row "gateway PSS per client, peak (KiB)" "$(pss_per_client $PEER)" "$(pss_per_client $OURS)" 2
	row "gateway open files" "$(j "$p" .idle.gateway_open_fds)" "$(j "$o" .idle.gateway_open_fds)" 0
	row "gateway CPU over the run (s)" "$(j "$p" .idle.gateway.cpu_seconds)" "$(j "$o" .idle.gateway.cpu_seconds)"
	row "generator CPU (s)" "$(j "$p" .idle.generator.cpu_seconds)" "$(j "$o" .idle.generator.cpu_seconds)"
	machine_rows idle
	echo
	echo "Failure reasons: peer $(failures "$p" .idle.failures); imsgate $(failures "$o" .idle.failures)."
}

# compare_out NAME: the generator's own comparison of one load, when it has one.
compare_out() {
	local name=$1 p=$RES/$PEER-$1.json o=$RES/$OURS-$1.json
	[ -s "$p" ] && [ -s "$o" ] && [ -x "$LOAD" ] || return 0
	if "$LOAD" compare -out "$RES/compare-$name.md" "$p" "$o" >"$RES/compare-$name.log" 2>&1 && [ -s "$RES/compare-$name.md" ]; then
		echo
		echo "#### \`imsgate-load compare\`: $name"
		echo
		cat "$RES/compare-$name.md"
	else
		echo
		echo "_\`imsgate-load compare\` failed for $name: $(tail -n 1 "$RES/compare-$name.log")_"
	fi
}

# command_line: the run's command with every size spelled out, to repeat it.
command_line() {
	local v line="sudo"
	for v in BENCH_CALLS BENCH_RATE BENCH_DURATION BENCH_RAMP_START BENCH_RAMP_STEP BENCH_RAMP_MAX \
		BENCH_RAMP_STEP_DURATION BENCH_SETUP_RATES BENCH_SETUP_SECONDS BENCH_SETUP_TALK \
		BENCH_IDLE_CLIENTS BENCH_IDLE_HOLD BENCH_SOURCES BENCH_TESTS \
		BENCH_GATEWAYS BENCH_PEER_ICE BENCH_RTPE_THREADS BENCH_KAM_SHM_MB BENCH_KAM_PKG_MB; do
		[ -n "${!v:-}" ] && line+=$(printf ' \\\n  %s="%s"' "$v" "${!v}")
	done
	printf '%s \\\n  interop-tests/bench/sidebyside.sh\n' "$line"
}

# --- the report -----------------------------------------------------------------
pkgver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "not installed"; }
cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
mem_total=$(awk '/^MemTotal/{printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l)
[ "$dirty" -gt 0 ] && commit="$commit + $dirty uncommitted files"
run_date=$(basename "$OUT")

P500=$RES/$PEER-calls-$big.json
O500=$RES/$OURS-calls-$big.json
pcpu=$(j "$P500" .calls.gateway_cpu_s_per_call_minute)
ocpu=$(j "$O500" .calls.gateway_cpu_s_per_call_minute)
pheld=$(usable $PEER ramp && j "$RES/$PEER-ramp.json" .ramp.last_level_held)
oheld=$(usable $OURS ramp && j "$RES/$OURS-ramp.json" .ramp.last_level_held)
pidle=$(usable $PEER idle && j "$RES/$PEER-idle.json" .idle.gateway_rss_per_client_kib)
oidle=$(usable $OURS idle && j "$RES/$OURS-idle.json" .idle.gateway_rss_per_client_kib)
pidle_pss=$(usable $PEER idle && pss_per_client $PEER)
oidle_pss=$(usable $OURS idle && pss_per_client $OURS)

cat <<EOF
Written by \`interop-tests/bench/sidebyside.sh\` (run $run_date): run the script again
rather than editing this part. The same load generator (\`cmd/imsgate-load\`), the same echo UAS
and the same machine, in one run, against the gateway operators run today for WebRTC
clients — Kamailio's websocket module in front, rtpengine for the media — and against
imsgate.

## Machine

| | |
|---|---|
| CPUs | $(nproc) × $cpu_model |
| memory | $mem_total |
| kernel | $(uname -r) |
| Go | $(go version 2>/dev/null | awk '{print $3}') |
| kamailio / kamailio-websocket-modules | $(pkgver kamailio) / $(pkgver kamailio-websocket-modules) (Debian) |
| rtpengine-daemon | $(pkgver rtpengine-daemon) (Debian), userspace only, $BENCH_RTPE_THREADS threads |
| imsgate | commit $commit |

Every process ran in one network namespace holding only \`lo\` (\`unshare -n\`), with
\`ulimit -n 20000\` for all of them; all traffic is on 127.0.0.0/8.

## The command

\`\`\`sh
$(command_line)
\`\`\`

(as root, from the repository root; every size is an environment variable or a
\`--name=value\` flag of the script, and these are the values this run used).
$(repeats)

Each load is one \`imsgate-load\` run; the exact command lines are in
\`results/*.cmd\` of the run directory. The peer is
\`interop-tests/bench/kamailio-ws.cfg\` (Kamailio with \`-m ${BENCH_KAM_SHM_MB:-1024} -M ${BENCH_KAM_PKG_MB:-64}\`, 4 UDP and 4 TCP
workers) driving rtpengine (\`--table=-1 --interface=127.0.0.1\`, ports 30000-39999);
imsgate runs the config the script writes (\`run/imsgate.yaml\`: WS 127.0.0.1:8080,
upstream sip:127.0.0.1:5080, media on 127.0.0.1, codecs PCMU, PCMA, telephone-event).
Both gateways answer the caller as ICE-lite (\`BENCH_PEER_ICE=$BENCH_PEER_ICE\` for the peer).
The echo behind both is \`imsgate-load echo -listen 127.0.0.1:5080\`.

## Summary

| | Kamailio + rtpengine | imsgate | imsgate / peer |
|---|---:|---:|---:|
$(row "concurrent calls held (ramp)" "$pheld" "$oheld" 0)
$(row "gateway CPU per call-minute at $big calls (s)" "$pcpu" "$ocpu" 3)
$(row "gateway CPU per forwarded packet at $big calls (µs)" "$(us_per_packet "$pcpu")" "$(us_per_packet "$ocpu")" 1)
$(row "INVITE→200 p50 at $big calls (ms)" "$(j "$P500" .calls.invite_to_200.p50_ms)" "$(j "$O500" .calls.invite_to_200.p50_ms)")
$(row "INVITE→200 p99 at $big calls (ms)" "$(j "$P500" .calls.invite_to_200.p99_ms)" "$(j "$O500" .calls.invite_to_200.p99_ms)")
$(row "ICE→DTLS connected p50 at $big calls (ms)" "$(j "$P500" .calls.ice_to_dtls.p50_ms)" "$(j "$O500" .calls.ice_to_dtls.p50_ms)")
$(row "echo RTT p99 at $big calls (ms)" "$(j "$P500" .calls.echo_rtt.p99_ms)" "$(j "$O500" .calls.echo_rtt.p99_ms)" 3)
$(row "packet loss at $big calls (%)" "$(j "$P500" .calls.loss_pct)" "$(j "$O500" .calls.loss_pct)" 3)
$(row "gateway memory per call at $big calls (KiB, PSS)" "$(pss_per_call $PEER "$big")" "$(pss_per_call $OURS "$big")" 1)
$(row "gateway memory per call at $big calls (KiB, summed VmRSS)" "$(j "$P500" .calls.gateway_rss_per_call_kib)" "$(j "$O500" .calls.gateway_rss_per_call_kib)" 1)
$(row "gateway memory per idle client (KiB, peak PSS)" "$pidle_pss" "$oidle_pss" 2)
$(row "gateway memory per idle client (KiB, summed VmRSS at the end of the hold)" "$pidle" "$oidle" 2)

A ratio below 1 favours imsgate for costs and delays, above 1 for calls held.
$(run_problems)

## Targets of issue 3, from these figures

EOF

verdict() { # verdict CONDITION_OK TEXT_IF_MET TEXT_IF_NOT TEXT_IF_UNKNOWN
	case $1 in
	yes) echo "- **met** — $2" ;;
	no) echo "- **not met** — $3" ;;
	*) echo "- **not measured** — $4" ;;
	esac
}
state() { # state A B CMP: yes/no/unknown
	if [ -z "$1" ] || [ -z "$2" ]; then echo unknown; elif "$3" "$1" "$2"; then echo yes; else echo no; fi
}

third=$(awk -v p="$pcpu" 'BEGIN{ if (p != "") printf "%.4f", p / 3 }')
ploss=$(j "$P500" .calls.loss_pct)
oloss=$(j "$O500" .calls.loss_pct)
if ! usable $PEER "calls-$big" || ! usable $OURS "calls-$big"; then
	echo "- **not measured** — CPU per call-minute at $big calls: a result is missing or spoilt (see Problems above)."
elif gt "$ploss" 0.5 || gt "$oloss" 0.5; then
	echo "- **not shown** — CPU per call-minute at $big calls: imsgate $(num "$ocpu" 3) s, the peer $(num "$pcpu" 3) s (ratio $(ratio "$ocpu" "$pcpu"); the target is ≤ 0.33), but loss was $(num "$oloss" 2) % (imsgate) and $(num "$ploss" 2) % (peer): a gateway that drops packets, or starves for CPU, spends less per call-minute, so the ratio says little until both carry the load."
else
verdict "$(state "$ocpu" "$third" le)" \
	"CPU per call-minute at $big calls: imsgate $(num "$ocpu" 3) s ≤ one third of the peer's $(num "$pcpu" 3) s (ratio $(ratio "$ocpu" "$pcpu"))." \
	"CPU per call-minute at $big calls: imsgate $(num "$ocpu" 3) s > one third of the peer's $(num "$pcpu" 3) s (ratio $(ratio "$ocpu" "$pcpu"); the target is 0.33)." \
	"CPU per call-minute at $big calls: a result is missing."
fi
cpu_other=""
for n in $calls_sizes; do
	[ "$n" = "$big" ] && continue
	usable $PEER "calls-$n" && usable $OURS "calls-$n" || continue
	pc=$(j "$RES/$PEER-calls-$n.json" .calls.gateway_cpu_s_per_call_minute)
	oc=$(j "$RES/$OURS-calls-$n.json" .calls.gateway_cpu_s_per_call_minute)
	cpu_other+=" at $n calls imsgate $(num "$oc" 3) s, the peer $(num "$pc" 3) s (ratio $(ratio "$oc" "$pc"), loss $(num "$(j "$RES/$OURS-calls-$n.json" .calls.loss_pct)" 2) % / $(num "$(j "$RES/$PEER-calls-$n.json" .calls.loss_pct)" 2) %);"
done
[ -n "$cpu_other" ] && echo "  Other sizes:${cpu_other%;}."

ramp_max=${BENCH_RAMP_MAX:-}
if [ -n "$pheld" ] && [ -n "$oheld" ] && [ "$pheld" = "$ramp_max" ] && [ "$oheld" = "$ramp_max" ]; then
	echo "- **not shown** — more concurrent calls than the peer: both held the ramp's top level ($ramp_max); raise BENCH_RAMP_MAX (the generator, the echo or the file limit may be what stops first — see their CPU in the tables)."
else
	verdict "$(state "$oheld" "$pheld" gt)" \
		"more concurrent calls than the peer within 0.5 % loss and 50 ms RTT p99: imsgate $oheld, peer $pheld." \
		"more concurrent calls than the peer: imsgate held $oheld, the peer $pheld." \
		"concurrent calls held: a ramp result is missing."
fi

setup_ok=unknown
setup_detail=""
for n in $calls_sizes; do
	pv=$(j "$RES/$PEER-calls-$n.json" .calls.invite_to_200.p50_ms)
	ov=$(j "$RES/$OURS-calls-$n.json" .calls.invite_to_200.p50_ms)
	pd=$(j "$RES/$PEER-calls-$n.json" .calls.ice_to_dtls.p50_ms)
	od=$(j "$RES/$OURS-calls-$n.json" .calls.ice_to_dtls.p50_ms)
	[ -n "$pv" ] && [ -n "$ov" ] && usable $PEER "calls-$n" && usable $OURS "calls-$n" || continue
	[ "$setup_ok" = unknown ] && setup_ok=yes
	le "$ov" "$pv" || setup_ok=no
	if [ -n "$pd" ] && [ -n "$od" ]; then le "$od" "$pd" || setup_ok=no; fi
	setup_detail+=" at $n calls INVITE→200 p50 $(num "$ov" 2) vs $(num "$pv" 2) ms, ICE→DTLS p50 $(num "$od" 2) vs $(num "$pd" 2) ms;"
done
for lv in $(usable $PEER ramp && usable $OURS ramp && j "$RES/$OURS-ramp.json" '.ramp.levels[].calls'); do
	sel=".ramp.levels[] | select(.calls == $lv) | .result"
	pv=$(j "$RES/$PEER-ramp.json" "$sel.invite_to_200.p50_ms")
	ov=$(j "$RES/$OURS-ramp.json" "$sel.invite_to_200.p50_ms")
	[ -n "$pv" ] && [ -n "$ov" ] || continue
	le "$ov" "$pv" || {
		setup_ok=no
		setup_detail+=" ramp level $lv INVITE→200 p50 $(num "$ov" 2) vs $(num "$pv" 2) ms;"
	}
done
verdict "$setup_ok" \
	"call setup no slower than the peer's at every load (imsgate vs peer):${setup_detail%;}." \
	"call setup no slower than the peer's at every load (imsgate vs peer):${setup_detail%;}." \
	"call setup: results are missing."

# imsgate is one process, so its RSS is its PSS; the figure at the end of the
# hold is the steady state (the peak holds garbage not yet collected).
oidle_steady=${oidle:-$oidle_pss}
verdict "$(state "$oidle_steady" 16 le)" \
	"idle registered WebSocket clients at ≤ 16 KiB each: imsgate $(num "$oidle" 2) KiB at the end of the hold ($(num "$oidle_pss" 2) KiB at the peak, PSS) with ${BENCH_IDLE_CLIENTS:-?} clients; the peer $(num "$pidle_pss" 2) KiB (peak PSS)." \
	"idle registered WebSocket clients at ≤ 16 KiB each: imsgate $(num "$oidle" 2) KiB at the end of the hold ($(num "$oidle_pss" 2) KiB at the peak, PSS) with ${BENCH_IDLE_CLIENTS:-?} clients; the peer $(num "$pidle_pss" 2) KiB (peak PSS)." \
	"idle clients: a result is missing or spoilt."
if [ "${BENCH_IDLE_CLIENTS:-0}" -lt 19000 ]; then
	echo "  The issue asks for this up to 19,000 clients; this run opened ${BENCH_IDLE_CLIENTS:-?} (\`BENCH_IDLE_CLIENTS=19000 BENCH_TESTS=idle\` for that figure)."
fi
echo "- **not measured here** — CPU per forwarded packet within 2× the floor: that is the \`go test -bench\` packet-path benchmark against the UDP+SRTP floor (docs/MEDIA-BENCH.md); the µs per packet above is whole-gateway CPU (SIP, ICE, DTLS, timers and Go runtime included) divided by packets forwarded."

cat <<'EOF'

## What each number means

- **calls attempted / ok / failed**: calls the generator started; a call is ok when it got its
  200 OK, ICE and DTLS connected, echoed packets came back, and the BYE was answered. Failure
  reasons are counted by kind.
- **calls up together (steady window)**: calls up at the same time between the last answer and
  the first BYE; the CPU and RSS per call are taken over that window ("steady" basis) so call
  setup and teardown do not blur them.
- **INVITE→200**: from sending the INVITE over the WebSocket to receiving its 200 OK: the
  gateway's SIP work both ways, its media allocation and SDP rewriting, and the echo UAS.
- **ICE connected→DTLS connected**: the DTLS handshake with the gateway's media side, after the
  caller's ICE check succeeded. The pion caller's own ICE check timer (about 200 ms) is left
  out, so this is the gateway's share of media setup.
- **INVITE→first echoed packet**: when the caller would first hear audio; includes that timer.
- **echo RTT**: each G.711 packet carries a sequence number and send time; the echo UAS sends it
  back; RTT = receive time − send time. It crosses the gateway twice each way (SRTP→RTP to the
  echo, RTP→SRTP back).
- **packet loss**: packets sent within each call's measuring window (500 ms after the answer to
  200 ms before the BYE) that never came back.
- **gateway CPU per call-minute**: user+system CPU seconds of the gateway (for the peer:
  Kamailio's main process and all its workers plus rtpengine), per minute of one call, over the
  steady window. Lower is better; it decides how many calls a core carries.
- **gateway CPU per forwarded packet**: CPU per call-minute ÷ 6,000 (a G.711 call at 20 ms
  forwards 50 packets a second each way). Everything the gateway does is in it, so it is above
  the packet-path benchmark's figure.
- **gateway memory per call**: growth of the gateway's memory with every call up, per call:
  PSS (below) sampled by the script, and the generator's summed VmRSS.
- **peak RSS (summed VmHWM)**: for a forking server (Kamailio) an upper bound: shared memory
  is counted once per worker.
- **idle clients, memory per client**: each client opens a WebSocket, registers, and stays idle.
  The generator reports the gateway's summed VmRSS at the end of the hold (after a Go
  gateway's garbage collector has caught up with the burst of registrations) and at its peak.
  PSS (proportional set size, from `/proc/PID/smaps_rollup` of the gateway and its
  descendants, sampled each second by the script) charges a shared page to each process that
  maps it in proportion, so Kamailio's shared memory counts once. (peak PSS − PSS before) ÷
  clients up. The summed-VmRSS figure from the generator counts shared pages once per worker
  and so overstates Kamailio.
- **generator and echo CPU**: if either is near the machine's cores × seconds, the run measured
  the generator, not the gateway.
- **ramp**: levels of concurrent calls from the start value up by the step; a level holds when
  loss ≤ 0.5 % and echo RTT p99 ≤ 50 ms; the ramp stops at the first level that does not.

## Details
EOF

for n in $calls_sizes; do
	calls_table "$n"
	compare_out "calls-$n"
done
ramp_table
compare_out ramp
[[ " ${BENCH_TESTS:-} " == *" setup "* ]] && setup_table
idle_table
compare_out idle

totals=$RES/peer-rtpengine-totals-calls.txt
[ -s "$totals" ] || totals=$RES/peer-rtpengine-totals.txt
if [ -s "$totals" ]; then
	echo
	echo "### rtpengine's own totals after the peer's calls and ramp"
	echo
	echo '```'
	grep -E '^ *Total' "$totals" | head -n 20
	echo '```'
fi
