// The wasm backend's BatchMatMul runs XNNPACK only for untransposed operands; with transposeA or transposeB
// set it falls back to a plain loop that is about 10x slower (tfjs 4.22: a [640,512]^T x [640,5000] product
// takes 1.35 s against 0.15 s for an explicit transpose and then XNNPACK). Every matmul's gradient is a
// transposed matmul, so training on wasm spent most of its time there. This re-registers the kernel to
// transpose explicitly and then multiply untransposed, choosing the cheaper of two equal forms:
//   op(A) op(B)            transposing whichever of A, B is flagged, or
//   (op(B)^T op(A)^T)^T    transposing the unflagged ones and the product,
// so that dz Wh^T (a small gradient times a large weight) moves the small matrices, not the weight.
import type * as tfTypes from '@tensorflow/tfjs';

type Tf = typeof tfTypes;
type Info = tfTypes.TensorInfo;

interface DisposingBackend {
  disposeData: (dataId: object) => void;
}

let installed = false;

const size = (shape: number[]): number => shape.reduce((n, d) => n * d, 1);

export function routeTransposedMatMulsThroughXnnpack(tf: Tf): void {
  const matmul = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (installed || !matmul || !transpose) return;
  installed = true;
  const untransposed = matmul.kernelFunc;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    ...matmul,
    kernelFunc: (args) => {
      const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
      if (!transposeA && !transposeB) return untransposed(args);
      const { a, b } = args.inputs as { a: Info; b: Info };
      const temporaries: Info[] = [];
      const flip = (x: Info): Info => {
        const perm = x.shape.map((_, i) => i);
        perm.splice(-2, 2, x.shape.length - 1, x.shape.length - 2);
        const t = transpose.kernelFunc({ inputs: { x }, backend: args.backend, attrs: { perm } }) as Info;
        temporaries.push(t);
        return t;
      };
      const multiply = (left: Info, right: Info): Info =>
        untransposed({ ...args, inputs: { a: left, b: right }, attrs: { ...args.attrs, transposeA: false, transposeB: false } }) as Info;
      const rows = a.shape[a.shape.length - (transposeA ? 1 : 2)] as number;
      const cols = b.shape[b.shape.length - (transposeB ? 2 : 1)] as number;
      const batch = Math.max(size(a.shape.slice(0, -2)), size(b.shape.slice(0, -2)));
      const direct = (transposeA ? size(a.shape) : 0) + (transposeB ? size(b.shape) : 0);
      const swapped = (transposeA ? 0 : size(a.shape)) + (transposeB ? 0 : size(b.shape)) + batch * rows * cols;
      let out: Info;
      if (direct <= swapped) {
        out = multiply(transposeA ? flip(a) : a, transposeB ? flip(b) : b);
      } else {
        const product = multiply(transposeB ? b : flip(b), transposeA ? a : flip(a));
        out = flip(product);
        temporaries.splice(temporaries.indexOf(out), 1, product);
      }
      const backend = args.backend as unknown as DisposingBackend;
      for (const t of temporaries) backend.disposeData(t.dataId);
      return out;
    },
  });
}
