#!/usr/bin/python3
"""Generates the plan benchmark's repository.

    gen_plan_repo.py DIR N

DIR becomes a git repository with three commits:
  root    the model, code and conda files the endpoints share, no endpoint
  full    N endpoints, endpoints/ep-NNNNN/endpoint.yml, each the canary
          flow's two-deployment endpoint (2021 shape: blue 90 / green 10)
  one     one of those files changed (blue scaled 2 -> 3)
and tags root, full, one. The repository is packed, as a clone is.
"""
import os
import subprocess
import sys

ENDPOINT = """$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json
name: {name}
type: online
auth_mode: key
traffic:
  blue: 90
  green: 10

deployments:
  #blue deployment
  - name: blue
    model:
      name: model-1
      version: 1
      local_path: ../../model-1/model/sklearn_regression_model.pkl
    code_configuration:
      code:
        local_path: ../../model-1/onlinescoring/
      scoring_script: score.py
    environment:
      name: env-model1
      version: 1
      path: .
      conda_file: file:../../model-1/environment/conda.yml
      docker:
        image: mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210301.v1
    instance_type: Standard_F2s_v2
    scale_settings:
      scale_type: manual
      instance_count: {blue_count}
      min_instances: 1
      max_instances: 2

  #green deployment
  - name: green
    model:
      name: model-2
      version: 1
      local_path: ../../model-2/model/sklearn_regression_model.pkl
    code_configuration:
      code:
        local_path: ../../model-2/onlinescoring/
      scoring_script: score.py
    environment:
      name: env-model2
      version: 1
      path: .
      conda_file: file:../../model-2/environment/conda.yml
      docker:
        image: mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210301.v1
    instance_type: Standard_F2s_v2
    scale_settings:
      scale_type: manual
      instance_count: 2
      min_instances: 1
      max_instances: 2
"""

CONDA = """name: model-env
channels:
  - conda-forge
dependencies:
  - python=3.7
  - numpy=1.21.2
  - pip=21.2.4
  - scikit-learn=0.24.2
  - scipy=1.7.1
  - pip:
    - azureml-defaults==1.38.0
    - inference-schema[numpy-support]==1.3.0
    - joblib==1.0.1
"""

SCORE = """import os
import logging
import json
import numpy
import joblib


def init():
    global model
    model_path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/sklearn_regression_model.pkl")
    model = joblib.load(model_path)


def run(raw_data):
    data = numpy.array(json.loads(raw_data)["data"])
    return model.predict(data).tolist()
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def git(repo, *args):
    subprocess.run(["git", "-C", repo] + list(args), check=True,
                   stdout=subprocess.DEVNULL)


def main():
    repo, n = sys.argv[1], int(sys.argv[2])
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    git(repo, "config", "user.name", "amlops-bench")
    git(repo, "config", "user.email", "bench@example.com")
    git(repo, "config", "commit.gpgsign", "false")
    # no background gc racing the repack below: one pack, as a clone has
    git(repo, "config", "gc.auto", "0")
    for m in ("model-1", "model-2"):
        write(f"{repo}/{m}/model/sklearn_regression_model.pkl",
              f"not a real pickle: {m}\n" * 64)
        write(f"{repo}/{m}/onlinescoring/score.py", SCORE)
        write(f"{repo}/{m}/environment/conda.yml", CONDA)
    git(repo, "add", "-A", ".")
    git(repo, "commit", "-q", "-m", "models")
    git(repo, "tag", "root")
    for i in range(n):
        write(f"{repo}/endpoints/ep-{i:05d}/endpoint.yml",
              ENDPOINT.format(name=f"ep-{i:05d}", blue_count=2))
    git(repo, "add", "-A", ".")
    git(repo, "commit", "-q", "-m", f"{n} endpoints")
    git(repo, "tag", "full")
    mid = n // 2
    write(f"{repo}/endpoints/ep-{mid:05d}/endpoint.yml",
          ENDPOINT.format(name=f"ep-{mid:05d}", blue_count=3))
    git(repo, "commit", "-q", "-a", "-m", f"scale ep-{mid:05d} blue to 3")
    git(repo, "tag", "one")
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune")


if __name__ == "__main__":
    main()
