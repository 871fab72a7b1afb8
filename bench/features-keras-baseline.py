# Baseline for `npm run bench -- features --keras PYTHON`: the encoders' forward passes in Keras on
# TensorFlow CPU (all cores), compiled with tf.function as Keras's predict step is, at the benchmark's batch
# sizes. Weights are random (weights=None): throughput does not depend on their values, and these machines
# cannot download Keras's pretrained files. Prints one JSON line: {"inceptionv3": {"1": images/s, ...}, ...}.
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

MODELS = {
    "inceptionv3": (tf.keras.applications.InceptionV3, 299),
    "densenet121": (tf.keras.applications.DenseNet121, 224),
}


def images_per_second(model, size, batch):
    images = tf.random.uniform([batch, size, size, 3], -1, 1, seed=1)
    forward = tf.function(lambda: model(images, training=False))
    forward().numpy()  # warm-up: tracing and first allocations, as the tfjs side's untimed pass
    start = time.perf_counter()
    forward().numpy()
    return batch / (time.perf_counter() - start)


def main(batches):
    out = {}
    for name, (build, size) in MODELS.items():
        model = build(weights=None, include_top=False, input_shape=(size, size, 3))
        out[name] = {str(b): images_per_second(model, size, b) for b in batches}
    print(json.dumps({"tensorflow": tf.__version__, "rates": out}))


if __name__ == "__main__":
    main([int(b) for b in sys.argv[1:]])
