#!/usr/bin/env bash
# Start the services the tests use (PostgreSQL, Redis, RabbitMQ) unless they already listen on loopback.
#
# Why: CI runs on a fresh machine where these daemons are installed but not necessarily running, and the
# tests that need them fail (never skip) without them. One line per service says what was found or done.
# A service whose software is not installed is reported and left out; one that fails to start or does not
# answer in time makes the script exit 1 once every service has been tried.
set -uo pipefail

failed=0

listening() {  # listening PORT: does something accept TCP connections on 127.0.0.1:PORT?
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ensure NAME PORT SECONDS PROGRAM COMMAND...: run COMMAND if PROGRAM exists and PORT is closed, wait for PORT.
ensure() {
    local name=$1 port=$2 seconds=$3 program=$4
    shift 4
    if listening "$port"; then
        echo "$name: already listening on 127.0.0.1:$port"
        return
    fi
    if ! command -v "$program" >/dev/null 2>&1; then
        echo "$name: not installed ($program not found), not started"
        return
    fi
    local output status
    output=$("$@" 2>&1)
    status=$?
    if (( status != 0 )); then
        output=${output//$'\n'/ }
        echo "$name: FAILED to start (exit status $status): ${output:0:500}"
        failed=1
        return
    fi
    local waited=0
    until listening "$port"; do
        if (( waited >= seconds )); then
            echo "$name: FAILED, nothing listening on 127.0.0.1:$port after ${seconds}s"
            failed=1
            return
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "$name: started, listening on 127.0.0.1:$port after ${waited}s"
}

start_postgresql() {
    local version
    version=$(ls /etc/postgresql 2>/dev/null) || true
    if [[ -z $version ]]; then
        echo "no cluster under /etc/postgresql" >&2
        return 1
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

start_redis() {
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

ensure postgresql 5432 60 pg_ctlcluster start_postgresql
ensure redis 6379 30 redis-server start_redis
ensure rabbitmq 5672 120 rabbitmq-server rabbitmq-server -detached

exit "$failed"
