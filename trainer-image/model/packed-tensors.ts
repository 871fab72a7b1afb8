// Tensors as one flat little-endian float32 file, in a given order: how decoder weights and optimizer moments
// are stored in checkpoints and in a run's outputs.
import { tf } from '../backend.js';
import { parameterShapes, type Decoder } from './decoder.js';

/** A decoder's parameters, packed in parameterShapes order (checkpoints, outputs, the gang's initial broadcast). */
export function packParameters(decoder: Decoder): Uint8Array {
  return packTensors(parameterShapes(decoder.cfg).map(([n]) => decoder.params.get(n) as tf.Tensor));
}

export function packTensors(tensors: tf.Tensor[]): Uint8Array {
  const total = tensors.reduce((n, t) => n + t.size, 0);
  const out = new Float32Array(total);
  let offset = 0;
  for (const t of tensors) {
    out.set(t.dataSync() as Float32Array, offset);
    offset += t.size;
  }
  return new Uint8Array(out.buffer);
}

export function unpackTensors(data: Uint8Array, shapes: [string, number[]][]): Map<string, Float32Array> {
  const total = shapes.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
  if (data.byteLength !== total * 4) throw new Error(`tensor file holds ${data.byteLength} bytes, the model needs ${total * 4}`);
  // Copy: the loaded bytes may sit at an offset that is not a multiple of 4.
  const floats = new Float32Array(data.slice().buffer);
  const out = new Map<string, Float32Array>();
  let offset = 0;
  for (const [name, shape] of shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    out.set(name, floats.slice(offset, offset + size));
    offset += size;
  }
  return out;
}
