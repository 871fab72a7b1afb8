"""Keras/TensorFlow CPU baseline for bench/native.ts: the same three workloads in TensorFlow's Python API,
on TensorFlow's default thread pools, compiled with tf.function as Keras compiles its train and predict steps
(the caption step also eagerly, op by op, which is how tfjs-node drives TensorFlow). The benchmark starts it
once and sends one workload name per line on stdin; each answer is a JSON line with that run's milliseconds,
so the benchmark can interleave Keras runs with its own and all of them see the same machine load.
Run it with a Python whose TensorFlow matches the native backend's (2.9.1), e.g. a venv made by
`python3.10 -m venv ~/.cache/captionrun/keras-tf-2.9.1` + `pip install tensorflow-cpu==2.9.1 'numpy<1.24'`.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# The shape of CAPTION_STEP in workloads.ts.
B, T, V, L, F, E, U, A = 32, 20, 5000, 64, 256, 256, 512, 512


def main():
    rng = np.random.default_rng(7)
    uniform = lambda shape, scale: tf.constant(rng.uniform(-scale, scale, shape).astype(np.float32))  # noqa: E731

    a, b = uniform([1024, 1024], 1), uniform([1024, 1024], 1)
    matmul = tf.function(lambda: tf.matmul(a, b))

    def weight(rows, cols):
        return tf.Variable(uniform([rows, cols], (6 / (rows + cols)) ** 0.5))

    embed, w1, w2, v = weight(V, E), weight(F, A), weight(U, A), weight(A, 1)
    wx, wh, w_out = weight(E + F, 3 * U), weight(U, 3 * U), weight(U, V)
    bx, b_out = tf.Variable(uniform([3 * U], 0.01)), tf.Variable(uniform([V], 0.01))
    variables = [embed, w1, w2, v, wx, wh, bx, w_out, b_out]
    features = uniform([B, L, F], 1)
    tokens = tf.constant(rng.integers(0, V, [B, T + 1]).astype(np.int32))
    optimizer = tf.keras.optimizers.Adam(1e-3)
    xent = tf.keras.losses.CategoricalCrossentropy(from_logits=True)

    def caption_step():
        with tf.GradientTape() as tape:
            keys = tf.reshape(tf.matmul(tf.reshape(features, [B * L, F]), w1), [B, L, A])
            h = tf.zeros([B, U])
            total = 0.0
            for t in range(T):
                score = tf.matmul(tf.reshape(tf.tanh(keys + tf.expand_dims(tf.matmul(h, w2), 1)), [B * L, A]), v)
                alpha = tf.nn.softmax(tf.reshape(score, [B, L]))
                context = tf.reduce_sum(tf.expand_dims(alpha, 2) * features, 1)
                x = tf.concat([tf.matmul(tf.one_hot(tokens[:, t], V), embed), context], 1)
                xz, xr, xn = tf.split(tf.matmul(x, wx) + bx, 3, 1)
                hz, hr, hn = tf.split(tf.matmul(h, wh), 3, 1)
                z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
                h = (1 - z) * h + z * tf.tanh(xn + r * hn)
                total += xent(tf.one_hot(tokens[:, t + 1], V), tf.matmul(h, w_out) + b_out)
            loss = total / T
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    inception = tf.keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(299, 299, 3))
    image = uniform([1, 299, 299, 3], 1)
    forward = tf.function(lambda: inception(image, training=False))

    caption_step_graph = tf.function(caption_step)
    workloads = {
        "matmul": lambda: matmul().numpy(),
        "caption_step": lambda: caption_step_graph().numpy(),
        "caption_step_eager": lambda: caption_step().numpy(),
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
