#!/usr/bin/env bash
# Resident memory of `tusk up`'s world process (API server + simulated world) with N
# clusters of 3 instances reconciled by `tusk run` in another process, as the scale bench
# runs them. Prints the world's VmRSS every 30 s for MINUTES minutes.
#
#   fake-apiserver/scripts/world-rss.sh TUSK_BINARY CLUSTERS MINUTES
#
# Needs kubectl and python3. Everything listens on 127.0.0.1 only.
set -euo pipefail
tusk=$1 clusters=$2 minutes=$3
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'kill $world $operator 2>/dev/null || true; rm -rf "$dir"' EXIT
"$tusk" up --no-operator --port 0 --nodes $((clusters / 4 + 1)) --kubeconfig "$dir/kc" \
    >"$dir/world.log" 2>&1 &
world=$!
operator=
for _ in $(seq 120); do [ -s "$dir/kc" ] && break; sleep 0.5; done
export KUBECONFIG=$dir/kc
# deploy/cr.yaml as the scale bench shapes it: 3 instances, 1 pgBouncer, no backup schedules.
kubectl create --dry-run=client -o json -f "$repo/deploy/cr.yaml" | python3 -c '
import json, sys
cr = json.load(sys.stdin)
cr["spec"]["instances"][0]["replicas"] = 3
cr["spec"]["proxy"]["pgBouncer"]["replicas"] = 1
for r in cr["spec"].get("backups", {}).get("pgbackrest", {}).get("repos", []):
    r.pop("schedules", None)
items = []
for i in range(int(sys.argv[1])):
    c = json.loads(json.dumps(cr))
    c["metadata"] = {"name": "rss-%04d" % i, "namespace": "default"}
    items.append(c)
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)
' "$clusters" >"$dir/crs.json"
# (--validate=false: builds before /openapi/v2 existed cannot validate a List client-side)
kubectl apply --server-side --validate=false --field-manager=rss -f "$dir/crs.json" >/dev/null
"$tusk" run --all-namespaces --workers 8 --kubeconfig "$dir/kc" --http-address 127.0.0.1:0 \
    >"$dir/operator.log" 2>&1 &
operator=$!
start=$(date +%s)
while :; do
    t=$(($(date +%s) - start))
    rss=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$world/status)
    hwm=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$world/status)
    ready=$(kubectl get perconapgclusters -o jsonpath='{range .items[*]}{.status.state}{"\n"}{end}' 2>/dev/null | grep -c '^ready$' || true)
    objects=$(kubectl get events -A --no-headers 2>/dev/null | wc -l)
    echo "t=${t}s world RSS ${rss} MiB (peak ${hwm} MiB), ${ready}/${clusters} ready, ${objects} events"
    [ "$t" -ge $((minutes * 60)) ] && break
    sleep 30
done
