#!/bin/sh
# The worker container's entrypoint (docs/deployment.md, "The sandbox in a container").
#
# As root with CAP_SYS_ADMIN, it delegates the container's cgroup (v2) to the sandbox: Docker
# mounts the container's own cgroup read-only, and cgroup v2 lets a group hand controllers to
# its children only while no process sits in it. So: remount it read-write, move ourselves into
# worker/, enable memory, pids and cpu for the children, and name jobs/ as the parent of every
# job's group (TOPDOWN_CGROUP_PARENT). Jobs then get a kernel-enforced memory and process cap.
# Where any step fails the worker still starts; the sandbox falls back to rlimits and says so
# in each result's warnings. Anything else (beat, a shell) runs unchanged.
set -eu

cgroup=/sys/fs/cgroup
if [ "$(id -u)" = 0 ] && [ -f "$cgroup/cgroup.controllers" ] && [ -z "${TOPDOWN_CGROUP_PARENT:-}" ]; then
    if [ ! -w "$cgroup/cgroup.procs" ]; then
        mount -o remount,rw "$cgroup" 2>/dev/null ||
            echo "worker-entrypoint: cannot remount $cgroup read-write: jobs get rlimits, not cgroups" >&2
    fi
    if mkdir -p "$cgroup/worker" "$cgroup/jobs" 2>/dev/null; then
        while read -r pid; do
            echo "$pid" >"$cgroup/worker/cgroup.procs" 2>/dev/null || true
        done <"$cgroup/cgroup.procs"
        for controller in memory pids cpu; do
            echo "+$controller" >"$cgroup/cgroup.subtree_control" 2>/dev/null ||
                echo "worker-entrypoint: cannot enable the $controller controller" >&2
        done
        export TOPDOWN_CGROUP_PARENT="$cgroup/jobs"
    fi
fi
exec "$@"
