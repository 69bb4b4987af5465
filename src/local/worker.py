# amlops worker: runs one deployment's scoring script for `amlops host`.
#
# The host starts `python3 -c <this file>` with the code folder as its cwd,
# stdout/stderr on a pipe the host writes to the deployment's inference log,
# and one end of a stream socketpair on the fd named by AMLOPS_WORKER_FD.
#
# Frames, both ways: a 12-byte header of three little-endian u32 (type,
# request id, payload length), then the payload. Types:
#   1 READY        worker -> host  init() returned; empty payload
#   2 INIT_FAILED  worker -> host  the last line of init()'s traceback
#   3 REQUEST      host -> worker  u32 ctype length, ctype, raw body
#   4 RESPONSE     worker -> host  u32 status, u32 ctype length, ctype, body
#   5 ERROR        worker -> host  run() raised: the traceback's last line
# A frame longer than AMLOPS_WORKER_MAX_FRAME, or of another type, ends the
# worker (the host does the same to a worker that sends one).
#
# run(raw_data) gets a str for JSON and text/* bodies (and bodies without a
# content type) that are valid UTF-8, and bytes for anything else, like
# Azure's inference server, which hands run() the decoded text of the body.
# Its return value is answered like the inference server does: bytes or
# bytearray as application/octet-stream, a (body, status) tuple with that
# status, anything else JSON-encoded as application/json (so a str becomes a
# JSON string).
#
# Scripts written for Azure's raw HTTP mode work too when the azureml
# packages are not installed: a small stand-in for
# azureml.contrib.services.aml_request (AMLRequest, rawhttp) and
# aml_response (AMLResponse) is installed. A run() decorated with @rawhttp
# gets a request object (.data, .get_data(), .get_json(), .headers with the
# Content-Type, .method) and may return an AMLResponse.
import importlib.util
import json
import logging
import os
import socket
import struct
import sys
import traceback

READY, INIT_FAILED, REQUEST, RESPONSE, ERROR = 1, 2, 3, 4, 5
HDR = struct.Struct("<III")
U32 = struct.Struct("<I")
U32X2 = struct.Struct("<II")
JSON_CT = b"application/json"
BIN_CT = b"application/octet-stream"


def die_with_parent():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass


class AMLRequest(object):
    method = "POST"

    def __init__(self, data, content_type):
        self.data = data
        self.headers = {"Content-Type": content_type}
        self.args = {}
        self.content_type = content_type

    def get_data(self, cache=True, as_text=False, parse_form_data=False):
        return self.data.decode("utf-8") if as_text else self.data

    def get_json(self, force=False, silent=False, cache=True):
        return json.loads(self.data)


class AMLResponse(object):
    def __init__(self, response=None, status=None, headers=None,
                 mimetype=None, content_type=None, direct_passthrough=False,
                 json_str=False):
        self.response = response
        self.status_code = int(status or 200)
        self.headers = dict(headers or {})
        if json_str:
            content_type = "application/json"
        self.content_type = (content_type or mimetype or
                             "text/html; charset=utf-8")


def rawhttp(func):
    func._amlops_rawhttp = True
    return func


def install_azureml_stand_in():
    try:
        import azureml.contrib.services.aml_request  # noqa: F401
        return
    except Exception:
        pass
    import types
    names = ["azureml", "azureml.contrib", "azureml.contrib.services"]
    for n in names:
        m = sys.modules.get(n) or types.ModuleType(n)
        m.__path__ = []
        sys.modules[n] = m
    req = types.ModuleType("azureml.contrib.services.aml_request")
    req.AMLRequest = AMLRequest
    req.rawhttp = rawhttp
    resp = types.ModuleType("azureml.contrib.services.aml_response")
    resp.AMLResponse = AMLResponse
    sys.modules[req.__name__] = req
    sys.modules[resp.__name__] = resp
    sys.modules["azureml"].contrib = sys.modules["azureml.contrib"]
    sys.modules["azureml.contrib"].services = sys.modules[names[2]]
    sys.modules[names[2]].aml_request = req
    sys.modules[names[2]].aml_response = resp


def last_line(exc):
    lines = traceback.format_exception_only(type(exc), exc)
    text = "".join(lines).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def encode(ret):
    status = 200
    if isinstance(ret, AMLResponse):
        body = ret.response
        if body is None:
            body = b""
        elif isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, (bytes, bytearray)):
            body = b"".join(x if isinstance(x, bytes) else
                            str(x).encode("utf-8") for x in body)
        return ret.status_code, ret.content_type.encode(), bytes(body)
    if isinstance(ret, tuple) and len(ret) == 2 and isinstance(ret[1], int):
        ret, status = ret
    if isinstance(ret, (bytes, bytearray)):
        return status, BIN_CT, bytes(ret)
    return status, JSON_CT, json.dumps(ret).encode()


def is_text(ct):
    if not ct:
        return True
    ct = ct.split(b";", 1)[0].strip().lower()
    return ct.startswith(b"text/") or ct == JSON_CT or ct.endswith(b"+json")


def main():
    fd = int(os.environ.pop("AMLOPS_WORKER_FD"))
    maxframe = int(os.environ.pop("AMLOPS_WORKER_MAX_FRAME", str(64 << 20)))
    die_with_parent()
    sock = socket.socket(fileno=fd)
    rfile = sock.makefile("rb", buffering=1 << 16)
    send = sock.sendall

    def frame(ftype, rid, payload):
        send(HDR.pack(ftype, rid, len(payload)) + payload)

    code_dir = os.getcwd()
    script = os.environ.get("AZUREML_ENTRY_SCRIPT", "score.py")
    sys.path.insert(0, code_dir)
    sys.argv = [script]
    install_azureml_stand_in()
    # As Azure's inference server: the script's INFO logs reach the log.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: "
                               "%(message)s")
    try:
        path = os.path.join(code_dir, script)
        name = os.path.splitext(os.path.basename(script))[0] or "score"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError("cannot load scoring script '%s'" % script)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        run = getattr(mod, "run", None)
        if not callable(run):
            raise AttributeError("scoring script '%s' has no run()" % script)
        init = getattr(mod, "init", None)
        if callable(init):
            init()
    except BaseException as e:
        traceback.print_exc()
        sys.stderr.flush()
        frame(INIT_FAILED, 0, last_line(e).encode("utf-8", "replace"))
        os._exit(1)
    sys.stdout.flush()
    raw = getattr(run, "_amlops_rawhttp", False)
    frame(READY, 0, b"")

    read = rfile.read
    while True:
        hdr = read(12)
        if len(hdr) < 12:
            os._exit(0)
        ftype, rid, n = HDR.unpack(hdr)
        if ftype != REQUEST or n > maxframe or n < 4:
            sys.stderr.write("amlops worker: bad frame type=%d len=%d\n"
                             % (ftype, n))
            os._exit(2)
        payload = read(n)
        if len(payload) < n:
            os._exit(0)
        (ctlen,) = U32.unpack_from(payload)
        if ctlen > n - 4:
            sys.stderr.write("amlops worker: bad content type length\n")
            os._exit(2)
        ct = payload[4:4 + ctlen]
        body = payload[4 + ctlen:]
        if raw:
            body = AMLRequest(body, ct.decode("latin-1"))
        elif is_text(ct):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError:
                pass
        try:
            status, rct, out = encode(run(body))
        except Exception as e:
            traceback.print_exc()
            sys.stderr.flush()
            frame(ERROR, rid, last_line(e).encode("utf-8", "replace"))
            continue
        send(HDR.pack(RESPONSE, rid, 8 + len(rct) + len(out)) +
             U32X2.pack(status, len(rct)) + rct + out)


main()
