#!/bin/sh
# Run once by the postgis image when it creates the primary's data folder: let the standby (db-replica)
# stream from it as the owner role (a superuser in this image).
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
