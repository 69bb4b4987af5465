#!/usr/bin/python3
"""Train the sample models that manifests/ deploys, deterministically.

Two scikit-learn regressions on the diabetes data set that ships inside
scikit-learn (nothing is downloaded): regression-1 is a LinearRegression,
regression-2 a Ridge. Both take rows of 10 numbers, as Azure's own sample
does. Running this again with the same scikit-learn writes the same bytes.

    /usr/bin/python3 manifests/models/make_models.py
"""
import os
import pickle

from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge

HERE = os.path.dirname(os.path.abspath(__file__))


def save(model, name):
    path = os.path.join(HERE, name, "model", "sklearn_regression_model.pkl")
    with open(path, "wb") as f:
        # protocol pinned so that the bytes do not depend on the default
        pickle.dump(model, f, protocol=4)
    return path


def main():
    x, y = load_diabetes(return_X_y=True)
    print(save(LinearRegression().fit(x, y), "regression-1"))
    print(save(Ridge(alpha=0.5).fit(x, y), "regression-2"))


if __name__ == "__main__":
    main()
