#!/usr/bin/python3
"""A small Azure AD token service for the credential tests.

Azure AD cannot run here, so this stands in for it (and for IMDS and the
App Service identity endpoint) on 127.0.0.1. It answers as the real
services do, including their error bodies:

  POST /{tenant}/oauth2/v2.0/token   client_credentials with client_secret
                                     or with client_assertion (workload
                                     identity)
  GET  /metadata/identity/oauth2/token   IMDS; needs "Metadata: true"
  GET  /msi/token                     IDENTITY_ENDPOINT; needs
                                     X-IDENTITY-HEADER
  GET  /_seen                         what it saw (JSON list), for asserts
  GET  /_whoami                       whether a bearer token it issued came

Usage: token_server.py --port-file F --tenant T --client-id C
       --secret S --assertion A --identity-header H [--expires-in N]
The port it listens on is written to F once it is ready. Tokens are
"tok-<flow>-<n>-<random hex>"; every token handed out is also listed in
/_seen so that a test can grep its output for them.
"""
import argparse
import json
import os
import secrets
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
SEEN = []
TOKENS = []
LOCK = threading.Lock()


def trace():
    return "Trace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: 2026-11-25 12:00:00Z" % (
        secrets.token_hex(8), secrets.token_hex(8))


def aad_error(code, error, text):
    return {
        "error": error,
        "error_description": "AADSTS%d: %s\r\n%s" % (code, text, trace()),
        "error_codes": [code],
        "timestamp": "2026-11-25 12:00:00Z",
        "trace_id": secrets.token_hex(8),
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def token(self, flow, resource_key, resource, as_string):
        with LOCK:
            n = len(TOKENS) + 1
            tok = "tok-%s-%d-%s" % (flow, n, secrets.token_hex(12))
            TOKENS.append(tok)
        body = {"access_token": tok, "token_type": "Bearer"}
        if as_string:
            body["expires_in"] = str(ARGS.expires_in)
            body["expires_on"] = "0"
        else:
            body["expires_in"] = ARGS.expires_in
            body["ext_expires_in"] = ARGS.expires_in
        body[resource_key] = resource
        return body

    def record(self, what, **kw):
        kw["what"] = what
        kw["request_id"] = self.headers.get("x-ms-client-request-id", "")
        with LOCK:
            SEEN.append(kw)

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/_seen":
            with LOCK:
                self.send_json(200, {"seen": SEEN, "tokens": TOKENS})
            return
        if u.path == "/_whoami":
            # For the ARM client's test: which bearer token came, if any.
            auth = self.headers.get("Authorization") or ""
            tok = auth[7:] if auth.startswith("Bearer ") else ""
            with LOCK:
                issued = tok in TOKENS
            self.send_json(200, {"authorization": bool(auth),
                                 "issued_here": issued})
            return
        if u.path == "/metadata/identity/oauth2/token":
            self.record("imds", resource=q.get("resource"),
                        client_id=q.get("client_id"),
                        api_version=q.get("api-version"),
                        metadata=self.headers.get("Metadata"))
            if self.headers.get("Metadata") != "true":
                self.send_json(400, {
                    "error": "invalid_request",
                    "error_description": "Required metadata header not specified"})
                return
            if not q.get("resource"):
                self.send_json(400, {
                    "error": "invalid_request",
                    "error_description": "Required audience parameter not specified"})
                return
            if q.get("client_id") and q.get("client_id") != ARGS.client_id:
                self.send_json(400, {
                    "error": "invalid_request",
                    "error_description": "Identity not found"})
                return
            self.send_json(200, self.token("imds", "resource",
                                           q["resource"], True))
            return
        if u.path == "/msi/token":
            hdr = self.headers.get("X-IDENTITY-HEADER")
            self.record("identity_endpoint", resource=q.get("resource"),
                        api_version=q.get("api-version"),
                        header_ok=hdr == ARGS.identity_header)
            if hdr != ARGS.identity_header:
                self.send_json(401, {
                    "statusCode": 401,
                    "message": "Unauthorized request, please check the X-IDENTITY-HEADER"})
                return
            body = self.token("msi", "resource", q.get("resource", ""), True)
            self.send_json(200, body)
            return
        self.send_json(404, {"error": "not_found"})

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode()
        form = dict(urllib.parse.parse_qsl(raw))
        parts = u.path.strip("/").split("/")
        if len(parts) != 4 or parts[1:] != ["oauth2", "v2.0", "token"]:
            self.send_json(404, {"error": "not_found"})
            return
        tenant = parts[0]
        flow = "assertion" if "client_assertion" in form else "secret"
        self.record("token", tenant=tenant, flow=flow,
                    grant_type=form.get("grant_type"),
                    client_id=form.get("client_id"),
                    scope=form.get("scope"),
                    content_type=self.headers.get("Content-Type"),
                    assertion_type=form.get("client_assertion_type"))
        if tenant != ARGS.tenant:
            self.send_json(400, aad_error(
                90002, "invalid_request",
                "Tenant '%s' not found. Check to make sure you have the "
                "correct tenant ID and are signing into the correct cloud."
                % tenant))
            return
        if form.get("grant_type") != "client_credentials":
            self.send_json(400, aad_error(
                70003, "unsupported_grant_type",
                "The app requested an unsupported grant type."))
            return
        if form.get("client_id") != ARGS.client_id:
            self.send_json(400, aad_error(
                700016, "unauthorized_client",
                "Application with identifier '%s' was not found in the "
                "directory." % form.get("client_id")))
            return
        if not form.get("scope"):
            self.send_json(400, aad_error(
                90014, "invalid_request",
                "The required field 'scope' is missing."))
            return
        if flow == "secret":
            if form.get("client_secret") != ARGS.secret:
                self.send_json(401, aad_error(
                    7000215, "invalid_client",
                    "Invalid client secret provided. Ensure the secret "
                    "being sent in the request is the client secret value, "
                    "not the client secret ID, for a secret added to app "
                    "'%s'." % ARGS.client_id))
                return
        else:
            if (form.get("client_assertion_type") !=
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
                self.send_json(400, aad_error(
                    700023, "invalid_request",
                    "Invalid client assertion type."))
                return
            if form.get("client_assertion") != ARGS.assertion:
                self.send_json(400, aad_error(
                    700213, "invalid_client",
                    "No matching federated identity record found for "
                    "presented assertion subject."))
                return
        self.send_json(200, self.token(flow, "scope", form["scope"], False))


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--assertion", required=True)
    p.add_argument("--identity-header", required=True)
    p.add_argument("--expires-in", type=int, default=3600)
    ARGS = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, ARGS.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
