#!/bin/sh
# Writes the files docker-compose.yml hands to the services as secrets, under deploy/secrets/
# (not in git). Existing files are kept: run it again after deleting one to replace it.
# The folder is the operator's alone (0700); the files are readable by the containers' users.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 0700 secrets

random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

write() {  # name value
    if [ ! -e "secrets/$1" ]; then
        printf '%s' "$2" >"secrets/$1"
        chmod 0444 "secrets/$1"
        echo "wrote deploy/secrets/$1"
    fi
}

write secret_key "$(random)$(random)"
write postgres_password "$(random)"
write database_url "postgres://topdown:$(cat secrets/postgres_password)@postgres:5432/topdown"
write redis_password "$(random)"
write redis_url "redis://:$(cat secrets/redis_password)@redis:6379/0"
write metrics_token "$(random)"
write flower_basic_auth "admin:$(random)"
