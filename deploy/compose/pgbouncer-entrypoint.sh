#!/bin/sh
# PgBouncer in transaction mode in front of the primary (database "twin") and the standby ("twin_ro"), as
# scripts/scale.py configures it natively. The roles' passwords come from the environment.
set -eu
dir=/tmp/pgbouncer
mkdir -p "$dir"
umask 077
printf '"twin_reader" "%s"\n"twin_auditor" "%s"\n' "$TWIN_READER_PASSWORD" "$TWIN_AUDITOR_PASSWORD" > "$dir/userlist.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
twin = host=db port=5432 dbname=twin
twin_ro = host=db-replica port=5432 dbname=twin
[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 400
default_pool_size = 20
query_wait_timeout = 3
server_connect_timeout = 2
server_login_retry = 1
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
INI
exec pgbouncer "$dir/pgbouncer.ini"
