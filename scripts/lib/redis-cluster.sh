# Redis Cluster for scripts/services.sh (`up --redis cluster`): three
# masters (no replicas) on free ports under .local/services/redis-cluster/,
# daemonized with pid files, slots split by `redis-cli --cluster create`.
# The same layout as the tests' enqueue-cli/tests/support/cluster.rs.
# Needs: $dir, log, free_port, pid_alive and remembered_port
# (scripts/lib/redis-sentinel.sh).

cluster_dir() { echo "$dir/redis-cluster"; }

start_redis_cluster() {
  local d i port bus fresh=0 ok
  d=$(cluster_dir)
  mkdir -p "$d"
  for i in 1 2 3; do
    pid_alive "$d/node-$i.pid" && continue
    port=$(remembered_port "$d/node-$i.port")
    # The cluster bus needs a port of its own (default: port + 10000, which
    # may be past 65535 for a free port).
    bus=$(remembered_port "$d/node-$i.bus-port")
    # Without persistence a restarted node has no data: start it afresh.
    rm -f "$d/nodes-$i.conf"
    fresh=1
    redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --dbfilename "node-$i.rdb" \
      --cluster-enabled yes --cluster-config-file "nodes-$i.conf" --cluster-node-timeout 2000 --cluster-port "$bus" \
      --save "" --appendonly no --daemonize yes --pidfile "$d/node-$i.pid" \
      --logfile "$d/node-$i.log"
  done
  for i in 1 2 3; do
    port=$(cat "$d/node-$i.port")
    for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  if [ "$fresh" = 1 ]; then
    redis-cli --cluster create $(for i in 1 2 3; do echo "127.0.0.1:$(cat "$d/node-$i.port")"; done) \
      --cluster-replicas 0 --cluster-yes >"$d/create.log" 2>&1 \
      || { log "redis-cli --cluster create failed; see $d/create.log"; exit 1; }
  fi
  for _ in $(seq 1 300); do
    ok=1
    for i in 1 2 3; do
      redis-cli -p "$(cat "$d/node-$i.port")" CLUSTER INFO 2>/dev/null | grep -q cluster_state:ok || ok=0
    done
    [ "$ok" = 1 ] && break
    sleep 0.1
  done
  [ "$ok" = 1 ] || { log "the cluster did not reach cluster_state:ok in 30 s; see $d/*.log"; exit 1; }
  log "Redis Cluster: $(cluster_url)"
}

# REDIS_URL of the cluster, in the common form.
cluster_url() {
  local nodes
  nodes=$(for i in 1 2 3; do echo "127.0.0.1:$(cat "$(cluster_dir)/node-$i.port")"; done | paste -sd,)
  echo "redis-cluster://$nodes"
}

stop_redis_cluster() {
  local pidfile stopped=0
  for pidfile in "$(cluster_dir)"/*.pid; do
    pid_alive "$pidfile" || continue
    kill "$(cat "$pidfile")"
    stopped=1
  done
  [ "$stopped" = 1 ] && log "Redis Cluster stopped"
  return 0
}

cluster_status() {
  local d
  d=$(cluster_dir)
  [ -d "$d" ] || return 0
  if pid_alive "$d/node-1.pid"; then
    echo "redis-cluster: running; $(cluster_url)"
  else
    echo "redis-cluster: stopped"
  fi
}
