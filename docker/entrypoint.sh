#!/bin/sh
# Runs the `streamrec` CLI with the given arguments.
#
# Commands that talk to Kafka first wait for it (`streamrec wait-kafka`: the same
# bounded backoff as the commands themselves, STREAMREC_KAFKA_WAIT_S in all, one
# log line per attempt), so a container started before its broker waits instead
# of failing, and one whose broker never comes exits 69 with a clear message.
#
# Faust binds its web server to STREAMREC_WEB_HOST and also advertises
# http://STREAMREC_WEB_HOST:STREAMREC_WEB_PORT to the group as this worker's
# canonical URL: another replica forwards a /state/<user>/ query for a partition
# it does not own there. Replicas of one compose service share a name, so each
# must advertise an address of its own: unless set, it is the container's IP.
set -eu
if [ -z "${STREAMREC_WEB_HOST:-}" ]; then
    STREAMREC_WEB_HOST="$(python -c 'import socket; print(socket.gethostbyname(socket.gethostname()))')"
    export STREAMREC_WEB_HOST
fi
case "${1:-}" in
    worker | trainer | produce | consume | forget) streamrec wait-kafka ;;
esac
exec streamrec "$@"
