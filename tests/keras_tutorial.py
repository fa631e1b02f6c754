"""The tutorial's networks and training step in Keras: the oracle for the `seed` preset.

Run in its own process by tests/test_keras_oracle.py (TensorFlow and PyTorch in one process
can fight over threads and allocators): `python keras_tutorial.py IN.npz OUT.npz`.

The networks follow the tutorial's description (ch. 17, "Implementing the generator and the
discriminator"), written here from that description:
- generator: z -> Dense(7*7*128, no bias) -> BatchNorm -> LeakyReLU -> reshape 7x7x128 ->
  5x5 transposed conv, stride 1 (128) -> two 5x5 stride-2 transposed convs halving the
  channels (64, 32) -> 5x5 transposed conv to 1 channel with tanh; all transposed convs
  padding="same" without bias, each but the last followed by BatchNorm and LeakyReLU.
- critic: 5x5 conv (64, stride 1) -> BatchNorm -> LeakyReLU -> two 5x5 stride-2 convs
  doubling the channels (128, 256), each with BatchNorm, LeakyReLU and Dropout(0.3) ->
  7x7 "valid" conv to one score per image.
Keras defaults everywhere else (LeakyReLU 0.3, BatchNorm momentum 0.99 and epsilon 1e-3,
Adam epsilon 1e-7). Dropout's random masks are given by the caller, so that both frameworks
drop the same units; a mask is used by each training-mode critic call, in call order.

IN.npz holds the initial weights (Keras layout, "g.LAYER.SLOT" / "c.LAYER.SLOT"), the
per-step inputs z (K, B, 20), real (K, B, 28, 28, 1), alpha (K, B), the dropout masks
(calls, B, H, W, C) per dropout layer, and an Adam check (w0, grads). OUT.npz: see main().
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402
from keras import layers  # noqa: E402

LAMBDA_GP = 10.0
LEARNING_RATE = 2e-4


class GivenDropout(layers.Layer):
    """Inverted dropout at `rate` whose keep-masks come from a queue, one per training call."""

    def __init__(self, rate: float, masks: list, **kwargs):
        super().__init__(**kwargs)
        # A function, not the list: Keras would track (and copy) a list attribute.
        self.rate, self.next_mask = rate, lambda: masks.pop(0)

    def call(self, x, training=False):
        if not training:
            return x
        return x * tf.constant(self.next_mask(), x.dtype) / (1.0 - self.rate)


def make_generator(z_size: int = 20, n_filters: int = 128, n_blocks: int = 2) -> keras.Model:
    side = 28 // 2 ** n_blocks
    stack = [keras.Input((z_size,)), layers.Dense(side * side * n_filters, use_bias=False),
             layers.BatchNormalization(), layers.LeakyReLU(),
             layers.Reshape((side, side, n_filters))]
    widths = [n_filters] + [n_filters // 2 ** (i + 1) for i in range(n_blocks)]
    strides = [1] + [2] * n_blocks
    for width, stride in zip(widths, strides):
        stack += [layers.Conv2DTranspose(width, 5, stride, padding="same", use_bias=False),
                  layers.BatchNormalization(), layers.LeakyReLU()]
    stack.append(layers.Conv2DTranspose(1, 5, 1, padding="same", use_bias=False,
                                        activation="tanh"))
    return keras.Sequential(stack)


def make_critic(masks: list[list], n_filters: int = 64, n_blocks: int = 2) -> keras.Model:
    stack = [keras.Input((28, 28, 1)), layers.Conv2D(n_filters, 5, 1, padding="same"),
             layers.BatchNormalization(), layers.LeakyReLU()]
    for i in range(n_blocks):
        stack += [layers.Conv2D(n_filters * 2 ** (i + 1), 5, 2, padding="same"),
                  layers.BatchNormalization(), layers.LeakyReLU(), GivenDropout(0.3, masks[i])]
    side = 28 // 2 ** n_blocks
    stack += [layers.Conv2D(1, side, 1, padding="valid"), layers.Reshape((1,))]
    return keras.Sequential(stack)


def weighted(model: keras.Model) -> list:
    return [layer for layer in model.layers if layer.weights]


def set_weights(model: keras.Model, prefix: str, arrays) -> None:
    for i, layer in enumerate(weighted(model)):
        layer.set_weights([arrays[f"{prefix}.{i}.{j}"] for j in range(len(layer.weights))])


def get_weights(model: keras.Model, prefix: str, tag: str) -> dict:
    return {f"{tag}.{prefix}.{i}.{j}": w for i, layer in enumerate(weighted(model))
            for j, w in enumerate(layer.get_weights())}


def per_layer(model: keras.Model, prefix: str, tag: str, grads) -> dict:
    """Gradients keyed like the weights: a layer's trainable weights come first in Keras."""
    out, k = {}, 0
    for i, layer in enumerate(weighted(model)):
        for j in range(len(layer.trainable_weights)):
            out[f"{tag}.{prefix}.{i}.{j}"] = grads[k].numpy()
            k += 1
    return out


def tutorial_step(gen, critic, g_opt, d_opt, z, real, alpha):
    """One step as the tutorial takes it: both losses from one generator forward, both
    gradients before either update; the penalty's critic call gets no `training` flag."""
    with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
        fake = gen(z, training=True)
        d_real = critic(real, training=True)
        d_fake = critic(fake, training=True)
        g_loss = -tf.reduce_mean(d_fake)
        d_loss_real, d_loss_fake = -tf.reduce_mean(d_real), tf.reduce_mean(d_fake)
        with tf.GradientTape() as gp_tape:
            between = alpha[:, None, None, None] * real + (1.0 - alpha[:, None, None, None]) * fake
            gp_tape.watch(between)
            d_between = critic(between)
        slope = gp_tape.gradient(d_between, between)
        norms = tf.sqrt(tf.reduce_sum(tf.square(slope), axis=[1, 2, 3]))
        gp = tf.reduce_mean(tf.square(norms - 1.0))
        d_loss = d_loss_real + d_loss_fake + LAMBDA_GP * gp
    d_grads = d_tape.gradient(d_loss, critic.trainable_variables)
    g_grads = g_tape.gradient(g_loss, gen.trainable_variables)
    d_opt.apply_gradients(zip(d_grads, critic.trainable_variables))
    g_opt.apply_gradients(zip(g_grads, gen.trainable_variables))
    losses = [g_loss, d_loss, d_loss_real, d_loss_fake, gp]
    return np.array([float(v) for v in losses]), d_grads, g_grads


def adam_check(w0: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Keras's Adam on one variable fed the given gradients: the value after each step."""
    var = tf.Variable(w0)
    opt = keras.optimizers.Adam(LEARNING_RATE)
    values = []
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
        values.append(var.numpy().copy())
    return np.stack(values)


def main(src: str, dst: str) -> None:
    data = dict(np.load(src))
    masks = [list(data["mask.0"].astype(np.float32)), list(data["mask.1"].astype(np.float32))]
    gen, critic = make_generator(), make_critic(masks)
    set_weights(gen, "g", data)
    set_weights(critic, "c", data)
    out = {"forward.g_train": gen(data["z"][0], training=True).numpy(),
           "forward.g_infer": gen(data["z"][0], training=False).numpy(),
           "forward.c_train": critic(data["real"][0], training=True).numpy(),
           "forward.c_infer": critic(data["real"][0], training=False).numpy()}
    set_weights(gen, "g", data)  # undo the moving-statistics update of the training call
    set_weights(critic, "c", data)
    g_opt, d_opt = keras.optimizers.Adam(LEARNING_RATE), keras.optimizers.Adam(LEARNING_RATE)
    losses = []
    for k in range(len(data["z"])):
        row, d_grads, g_grads = tutorial_step(gen, critic, g_opt, d_opt, data["z"][k],
                                              data["real"][k], data["alpha"][k])
        losses.append(row)
        if k == 0:
            out.update(per_layer(critic, "c", "grad", d_grads))
            out.update(per_layer(gen, "g", "grad", g_grads))
            out.update(get_weights(critic, "c", "step1"))
            out.update(get_weights(gen, "g", "step1"))
    out.update(get_weights(critic, "c", "final"))
    out.update(get_weights(gen, "g", "final"))
    out["losses"] = np.stack(losses)
    out["adam"] = adam_check(data["adam.w0"], data["adam.grads"])
    left = [len(m) for m in masks]
    if left != [0, 0]:
        raise SystemExit(f"dropout masks left unused: {left} (the call order differs)")
    np.savez(dst, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
