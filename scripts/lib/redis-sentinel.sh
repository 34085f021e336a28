# Redis Sentinel for scripts/services.sh (`up --redis sentinel`): a master,
# one replica and three sentinels (quorum 2, service "videoclip") on free
# ports under .local/services/redis-sentinel/, all daemonized with pid files.
# The same layout as the tests' enqueue-cli/tests/support/sentinel.rs.
# Needs: $dir (services directory), log, free_port.

sentinel_dir() { echo "$dir/redis-sentinel"; }
sentinel_service=videoclip

# Is the process whose pid file is $1 alive?
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# A port remembered in $1, or a new free one written there.
remembered_port() {
  [ -f "$1" ] || free_port >"$1"
  cat "$1"
}

sentinel_running() { pid_alive "$(sentinel_dir)/master.pid"; }

start_redis_sentinel() {
  local d master replica port i
  d=$(sentinel_dir)
  mkdir -p "$d"
  master=$(remembered_port "$d/master.port")
  replica=$(remembered_port "$d/replica.port")
  for role in master replica; do
    pid_alive "$d/$role.pid" && continue
    port=$(cat "$d/$role.port")
    local extra=()
    [ "$role" = replica ] && extra=(--replicaof 127.0.0.1 "$master")
    redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --dbfilename "$role.rdb" \
      --save "" --appendonly no --daemonize yes --pidfile "$d/$role.pid" \
      --logfile "$d/$role.log" "${extra[@]}"
  done
  for i in 1 2 3; do
    pid_alive "$d/sentinel-$i.pid" && continue
    port=$(remembered_port "$d/sentinel-$i.port")
    # Sentinel rewrites its config file: a fresh one each start, monitoring
    # the master this script started.
    cat >"$d/sentinel-$i.conf" <<CONF
port $port
bind 127.0.0.1
dir $d
daemonize yes
pidfile $d/sentinel-$i.pid
logfile $d/sentinel-$i.log
sentinel monitor $sentinel_service 127.0.0.1 $master 2
sentinel down-after-milliseconds $sentinel_service 1000
sentinel failover-timeout $sentinel_service 10000
sentinel parallel-syncs $sentinel_service 1
CONF
    redis-server "$d/sentinel-$i.conf" --sentinel
  done
  # Ready when the replica is in sync and each sentinel knows the other two.
  local ready=0
  for _ in $(seq 1 300); do
    ready=1
    redis-cli -p "$replica" INFO replication 2>/dev/null | grep -q master_link_status:up || ready=0
    for i in 1 2 3; do
      redis-cli -p "$(cat "$d/sentinel-$i.port")" SENTINEL master "$sentinel_service" 2>/dev/null \
        | grep -A1 -x num-other-sentinels | tail -1 | grep -qx 2 || ready=0
    done
    [ "$ready" = 1 ] && break
    sleep 0.1
  done
  [ "$ready" = 1 ] || { log "the Sentinel deployment did not form in 30 s; see $d/*.log"; exit 1; }
  log "Redis Sentinel: master 127.0.0.1:$master, replica 127.0.0.1:$replica, $(sentinel_url)"
}

# REDIS_URL of the Sentinel deployment, in the common form.
sentinel_url() {
  local nodes
  nodes=$(for i in 1 2 3; do echo "127.0.0.1:$(cat "$(sentinel_dir)/sentinel-$i.port")"; done | paste -sd,)
  echo "redis-sentinel://$nodes/$sentinel_service/0"
}

stop_redis_sentinel() {
  local d pidfile stopped=0
  d=$(sentinel_dir)
  for pidfile in "$d"/*.pid; do
    pid_alive "$pidfile" || continue
    kill "$(cat "$pidfile")"
    stopped=1
  done
  [ "$stopped" = 1 ] && log "Redis Sentinel stopped"
  return 0
}

sentinel_status() {
  local d
  d=$(sentinel_dir)
  [ -d "$d" ] || return 0
  if sentinel_running || pid_alive "$d/replica.pid"; then
    echo "redis-sentinel: running; master now $(redis-cli -p "$(cat "$d/sentinel-1.port")" \
      SENTINEL get-master-addr-by-name "$sentinel_service" 2>/dev/null | paste -sd:)"
  else
    echo "redis-sentinel: stopped"
  fi
}
