#!/usr/bin/env bash
# Installs the system packages the tests talk to (real peers, not mocks) and
# makes sure the database servers the DB tests use are running:
# MariaDB on 127.0.0.1:3306 (root, no password) and PostgreSQL on
# 127.0.0.1:5432 (trust for local TCP). Idempotent: does nothing when
# everything is already there and up.
set -euo pipefail
need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
have_mysql_server() { command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 \
    || [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]; }
have_mysql_server || need+=(mariadb-server mariadb-client)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql postgresql-client)
fresh_mysql=0
fresh_pg=0
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        case " ${need[*]} " in *" mariadb-server "*) fresh_mysql=1 ;; esac
        case " ${need[*]} " in *" postgresql "*) fresh_pg=1 ;; esac
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "test-deps: missing ${need[*]} (run as root or install them)" >&2
    fi
fi

wait_for() {  # wait_for SECONDS CMD... : true once CMD succeeds
    local n=$1; shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
    return 1
}

mysql_up() { mysqladmin --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1 \
    || mysqladmin ping >/dev/null 2>&1; }
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }

if have_mysql_server && command -v mysqladmin >/dev/null 2>&1 && ! mysql_up; then
    if [ "$(id -u)" = 0 ]; then
        echo "test-deps: starting MariaDB" >&2
        service mariadb start >/dev/null 2>&1 || service mysql start >/dev/null 2>&1 \
            || systemctl start mariadb >/dev/null 2>&1 || true
        wait_for 30 mysql_up || echo "test-deps: MariaDB did not start (DB tests will skip)" >&2
    else
        echo "test-deps: MariaDB is not running (run as root to start it)" >&2
    fi
fi
if [ "$fresh_mysql" = 1 ] && mysql_up; then
    # a fresh install lets root in over the socket only; the tests connect over TCP
    mysql -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" || true
fi

if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_up; then
    if [ "$(id -u)" = 0 ]; then
        echo "test-deps: starting PostgreSQL" >&2
        started=0
        while read -r ver name _; do
            [ -n "$ver" ] || continue
            pg_ctlcluster "$ver" "$name" start >/dev/null 2>&1 && started=1
        done < <(pg_lsclusters -h 2>/dev/null || true)
        [ "$started" = 1 ] || service postgresql start >/dev/null 2>&1 || true
        wait_for 30 pg_up || echo "test-deps: PostgreSQL did not start (DB tests will skip)" >&2
    else
        echo "test-deps: PostgreSQL is not running (run as root to start it)" >&2
    fi
fi
if [ "$fresh_pg" = 1 ] && pg_up; then
    # a fresh install asks for passwords over TCP; the tests use trust on loopback
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
        [ -f "$hba" ] || continue
        grep -q '^host all all 127.0.0.1/32 trust' "$hba" \
            || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    done
    while read -r ver name _; do
        [ -n "$ver" ] && pg_ctlcluster "$ver" "$name" reload >/dev/null 2>&1 || true
    done < <(pg_lsclusters -h 2>/dev/null || true)
fi
