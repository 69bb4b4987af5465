#!/usr/bin/python3
"""Checks the executor's invariants (DESIGN.md section 3) over the record
an `amlops host` keeps of what was done to it: STATE_DIR/operations.log,
one JSON object a line (src/local/host.h):

  {"event":"request","method":"PUT","resource":"endpoint/E[/deployment/D]",
   "result":201,"operation":"ID","traffic":{...},"deployments":{D: state}}
  {"event":"operation","operation":"ID","status":"Succeeded",
   "resource":...,"traffic":{...},"deployments":{...}}

traffic and deployments are the endpoint's state right after the event.

Invariants checked:
  traffic-sum      every endpoint's traffic sums to 100, or is empty/all 0
  traffic-ready    a request that changes an endpoint's traffic routes a
                   share only to deployments in state Succeeded
  delete-traffic   a deployment is deleted only while it has no traffic
  one-at-a-time    no mutating request reaches an endpoint (or one of its
                   deployments) while an operation on it is in flight
  created-once     (--created-once) no resource is created (201) while it
                   already exists

Usage: invariants.py [--created-once] [--quiet] OPERATIONS.LOG
Prints one line per violation and exits 1 when there is any; else prints
a one-line summary and exits 0.
"""
import json
import sys


def endpoint_of(resource):
    parts = (resource or "").split("/")
    if len(parts) >= 2 and parts[0] == "endpoint":
        return parts[1]
    return None


def deployment_of(resource):
    parts = (resource or "").split("/")
    if len(parts) >= 4 and parts[2] == "deployment":
        return parts[3]
    return None


def active(traffic):
    return {k: v for k, v in (traffic or {}).items() if v}


def check(lines, created_once):
    bad = []
    inflight = {}  # endpoint -> operation id
    op_endpoint = {}  # operation id -> endpoint
    traffic = {}  # endpoint -> last traffic seen
    exists = set()  # resources that exist (created and not deleted)
    deleting = {}  # operation id -> resource being deleted
    nreq = nops = 0
    parallel = 0  # most endpoints with an operation in flight at once

    for no, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except ValueError as e:
            bad.append("line %d: not JSON (%s)" % (no, e))
            continue
        res = ev.get("resource")
        ep = endpoint_of(res)
        dep = deployment_of(res)
        t = ev.get("traffic") or {}
        states = ev.get("deployments") or {}
        where = "line %d (%s %s %s)" % (
            no, ev.get("event"), ev.get("method", ev.get("status", "")), res)

        total = sum(v for v in t.values() if isinstance(v, (int, float)))
        if t and total not in (0, 100):
            bad.append("%s: traffic-sum: %s sums to %s" %
                       (where, json.dumps(t, sort_keys=True), total))

        if ev.get("event") == "request":
            nreq += 1
            if ep is None:
                continue
            if ep in inflight:
                bad.append("%s: one-at-a-time: operation %s on endpoint "
                           "'%s' was still in flight" %
                           (where, inflight[ep], ep))
            result = ev.get("result") or 0
            accepted = 200 <= result < 300
            if accepted and ev.get("method") == "PUT" and dep is None:
                before = active(traffic.get(ep))
                after = active(t)
                if after != before:
                    for d in sorted(after):
                        if states.get(d) != "Succeeded":
                            bad.append(
                                "%s: traffic-ready: %d%% to '%s' while it "
                                "is %s" % (where, after[d], d,
                                           states.get(d, "missing")))
            if accepted and ev.get("method") == "DELETE" and dep:
                before = traffic.get(ep) or {}
                if before.get(dep) or t.get(dep):
                    bad.append("%s: delete-traffic: '%s' deleted with %s%% "
                               "of the traffic" %
                               (where, dep, before.get(dep) or t.get(dep)))
            if accepted and ev.get("method") == "PUT" and result == 201:
                if created_once and res in exists:
                    bad.append("%s: created-once: '%s' created again" %
                               (where, res))
                exists.add(res)
            op = ev.get("operation")
            if accepted and op:
                inflight[ep] = op
                op_endpoint[op] = ep
                parallel = max(parallel, len(inflight))
                if ev.get("method") == "DELETE":
                    deleting[op] = res
            if accepted:
                traffic[ep] = t
        elif ev.get("event") == "operation":
            nops += 1
            op = ev.get("operation")
            e = op_endpoint.get(op, ep)
            if e is not None and inflight.get(e) == op:
                del inflight[e]
            if op in deleting and ev.get("status") == "Succeeded":
                gone = deleting.pop(op)
                exists.discard(gone)
                if deployment_of(gone) is None:
                    for r in [r for r in exists
                              if r.startswith(gone + "/")]:
                        exists.discard(r)
            if e is not None:
                traffic[e] = t
    return bad, nreq, nops, parallel


def main(argv):
    created_once = "--created-once" in argv
    quiet = "--quiet" in argv
    files = [a for a in argv if not a.startswith("--")]
    if len(files) != 1:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 64
    with open(files[0]) as f:
        lines = f.readlines()
    bad, nreq, nops, parallel = check(lines, created_once)
    for b in bad:
        print("violation: " + b)
    if bad:
        return 1
    if not quiet:
        print("invariants: %d requests, %d operations, at most %d "
              "endpoints at once: traffic-sum traffic-ready delete-traffic "
              "one-at-a-time%s hold" %
              (nreq, nops, parallel, " created-once" if created_once else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
