"""Keras/TensorFlow CPU baseline for bench/native.ts: the same workloads in TensorFlow's Python API, on
TensorFlow's default thread pools, compiled with tf.function as Keras compiles its predict step. The benchmark starts it
once and sends one workload name per line on stdin; each answer is a JSON line with that run's milliseconds,
so the benchmark can interleave Keras runs with its own and all of them see the same machine load.
Run it with a Python whose TensorFlow matches the native backend's (2.21.0), e.g. a venv made by
`python3 -m venv ~/.cache/captionrun/keras-tf-2.21.0` + `pip install tensorflow-cpu==2.21.0`.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main():
    rng = np.random.default_rng(7)
    uniform = lambda shape, scale: tf.constant(rng.uniform(-scale, scale, shape).astype(np.float32))  # noqa: E731

    a, b = uniform([1024, 1024], 1), uniform([1024, 1024], 1)
    matmul = tf.function(lambda: tf.matmul(a, b))

    inception = tf.keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(299, 299, 3))
    image = uniform([1, 299, 299, 3], 1)
    forward = tf.function(lambda: inception(image, training=False))

    workloads = {
        "matmul": lambda: matmul().numpy(),
        "inception": lambda: forward().numpy(),
    }
    print(json.dumps({"tensorflow": tf.__version__}), flush=True)
    for line in sys.stdin:
        run = workloads[line.strip()]
        start = time.perf_counter()
        run()
        print(json.dumps({"ms": (time.perf_counter() - start) * 1000}), flush=True)


if __name__ == "__main__":
    main()
