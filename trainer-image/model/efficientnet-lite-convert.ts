// Moves the PyTorch EfficientNet-Lite1 state dict (EfficientNet-PyTorch's parameter names) into the tfjs
// layers model of efficientnet-lite.ts: each tfjs weight names its PyTorch source, and tensors change from
// PyTorch's layouts to TensorFlow's: conv kernels (out, in, h, w) -> (h, w, in, out), depthwise kernels
// (channels, 1, k, k) -> (k, k, channels, 1), the dense kernel (out, in) -> (in, out). Batch norm's
// weight/bias/running_mean/running_var become gamma/beta/moving_mean/moving_variance. Every float tensor of
// the checkpoint must be used exactly once and every model weight set, so a renamed or missing parameter fails
// the conversion instead of leaving zeros.
import { InvalidInputError } from '../../lib/errors.js';
import { tf } from '../backend.js';
import type { StateDict } from './torch-legacy-checkpoint.js';

const BN_WEIGHTS: Record<string, string> = { gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var' };

/** The PyTorch module a tfjs layer's weights come from. */
function torchModule(layer: string): string {
  const fixed: Record<string, string> = { stem_conv: '_conv_stem', stem_bn: '_bn0', top_conv: '_conv_head', top_bn: '_bn1', predictions: '_fc' };
  if (fixed[layer] !== undefined) return fixed[layer];
  const m = /^block(\d+)_(expand_conv|expand_bn|dwconv|bn|project_conv|project_bn)$/.exec(layer);
  if (m === null) throw new Error(`EfficientNet-Lite1 layer ${layer} has no PyTorch counterpart`);
  const part: Record<string, string> = { expand_conv: '_expand_conv', expand_bn: '_bn0', dwconv: '_depthwise_conv', bn: '_bn1', project_conv: '_project_conv', project_bn: '_bn2' };
  return `_blocks.${m[1]}.${part[m[2] as string]}`;
}

/** Sets every weight of `model` (built by buildEfficientNetLite1) from the PyTorch state dict read from `file`. */
export function setWeightsFromTorch(model: tf.LayersModel, state: StateDict, file: string): void {
  const used = new Set<string>();
  // tidy frees the intermediate tensors, and all of them when a weight does not fit.
  const values = tf.tidy(() =>
    model.weights.map((w) => {
      const [layer, weight] = w.originalName.split('/').slice(-2) as [string, string];
      const key = `${torchModule(layer)}.${BN_WEIGHTS[weight] ?? (weight === 'bias' ? 'bias' : 'weight')}`;
      const t = state.get(key);
      if (t === undefined || t.dtype !== 'float32') throw new InvalidInputError(`checkpoint has no float tensor ${key} for ${w.originalName}`, { file });
      used.add(key);
      const source = tf.tensor(t.values as Float32Array, t.shape, 'float32');
      const perm = weight === 'depthwise_kernel' ? [2, 3, 0, 1] : weight === 'kernel' ? (t.shape.length === 4 ? [2, 3, 1, 0] : [1, 0]) : undefined;
      const value = perm === undefined ? source : tf.transpose(source, perm);
      if (value.shape.join('x') !== w.shape.join('x')) {
        throw new InvalidInputError(`${key} [${t.shape.join(', ')}] does not fit ${w.originalName} [${w.shape.join(', ')}]: not an EfficientNet-Lite1 checkpoint`, { file });
      }
      return value;
    }),
  );
  const unused = [...state.entries()].filter(([k, t]) => t.dtype === 'float32' && !used.has(k)).map(([k]) => k);
  if (unused.length > 0) {
    tf.dispose(values);
    throw new InvalidInputError(`checkpoint tensors the model does not use: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', ...' : ''}`, { file });
  }
  model.setWeights(values);
  tf.dispose(values);
}
