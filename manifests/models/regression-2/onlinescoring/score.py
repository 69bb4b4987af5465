"""Scores rows of 10 numbers with the scikit-learn regression in
AZUREML_MODEL_DIR, the way Azure ML's own sample does."""
import json
import logging
import os
import pickle

model = None


def init():
    global model
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"],
                        "model", "sklearn_regression_model.pkl")
    with open(path, "rb") as f:
        model = pickle.load(f)
    logging.info("regression-2: loaded %s", path)


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return [round(v, 4) for v in model.predict(rows).tolist()]
