# Baseline for `npm run bench -- train --keras`: the same decoder as trainer-image/model/decoder.ts (region
# projection, GRU or LSTM cell, Bahdanau attention, dropout, output projection, masked cross-entropy, Adam
# with clipping) written in Keras on TensorFlow CPU, timed per optimizer step in a compiled tf.function.
# Prints one JSON line: {"cell": ..., "ms_per_step": ..., "threads": ...}.
import json
import sys
import time

import tensorflow as tf

B, R, C, V, T = 32, 64, 2048, 5000, 20
E, H, A = 256, 512, 256


class Decoder(tf.keras.Model):
    def __init__(self, cell):
        super().__init__()
        self.proj = tf.keras.layers.Dense(E, activation="relu")
        self.embed = tf.keras.layers.Embedding(V, E)
        self.init_h = tf.keras.layers.Dense(H, activation="tanh")
        self.init_c = tf.keras.layers.Dense(H, activation="tanh")
        self.wf = tf.keras.layers.Dense(A)
        self.wh = tf.keras.layers.Dense(A, use_bias=False)
        self.v = tf.keras.layers.Dense(1, use_bias=False)
        self.cell_kind = cell
        self.cell = tf.keras.layers.GRUCell(H, reset_after=True) if cell == "gru" else tf.keras.layers.LSTMCell(H)
        self.drop = tf.keras.layers.Dropout(0.3)
        self.out = tf.keras.layers.Dense(V)

    def call(self, features, inputs, targets, mask, training=True):
        regions = self.proj(features)
        keys = self.wf(regions)
        mean = tf.reduce_mean(regions, axis=1)
        state = [self.init_h(mean)] + ([self.init_c(mean)] if self.cell_kind == "lstm" else [])
        loss = 0.0
        for t in range(T):
            score = self.v(tf.tanh(keys + self.wh(state[0])[:, None, :]))[..., 0]
            alpha = tf.nn.softmax(score)
            context = tf.reduce_sum(alpha[..., None] * regions, axis=1)
            x = tf.concat([self.embed(inputs[:, t]), context], axis=1)
            h, state = self.cell(x, state)
            state = state if isinstance(state, (list, tuple)) else [state]
            logits = self.out(self.drop(h, training=training))
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets[:, t], logits=logits)
            loss += tf.reduce_sum(nll * mask[:, t])
        return loss / tf.reduce_sum(mask)


def main(cell):
    model = Decoder(cell)
    opt = tf.keras.optimizers.Adam(1e-3, clipnorm=5.0)
    rng = tf.random.Generator.from_seed(1)
    features = rng.uniform((B, R, C))
    inputs = rng.uniform((B, T), 4, V, dtype=tf.int32)
    targets = rng.uniform((B, T), 4, V, dtype=tf.int32)
    mask = tf.ones((B, T))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = model(features, inputs, targets, mask)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step()
    step()
    n = 3
    start = time.perf_counter()
    for _ in range(n):
        step().numpy()
    ms = (time.perf_counter() - start) / n * 1000
    print(json.dumps({"cell": cell, "ms_per_step": ms, "threads": tf.config.threading.get_intra_op_parallelism_threads()}))


if __name__ == "__main__":
    main(sys.argv[1])
