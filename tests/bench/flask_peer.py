"""The peer for score_bench.sh: gunicorn + Flask serving the same score.py
the way Azure's inference server (azureml-inference-server-http) does:
one Flask app per worker process, init() once when the worker loads it,
run() per request on POST /score, the answer JSON-encoded.

    SCORE_DIR=code AZUREML_MODEL_DIR=model gunicorn -w N \
        --chdir tests/bench flask_peer:app
"""
import importlib.util
import json
import os
import sys

from flask import Flask, Response, request

code_dir = os.environ["SCORE_DIR"]
script = os.environ.get("SCORE_SCRIPT", "score.py")
sys.path.insert(0, code_dir)
spec = importlib.util.spec_from_file_location(
    "score", os.path.join(code_dir, script))
score = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score)
score.init()

app = Flask(__name__)


@app.route("/score", methods=["POST"])
def run():
    try:
        out = score.run(request.get_data(as_text=True))
    except Exception as e:
        return Response(str(e), status=500, mimetype="text/plain")
    return Response(json.dumps(out), status=200, mimetype="application/json")
