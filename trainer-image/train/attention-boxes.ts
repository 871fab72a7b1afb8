// How much of a word's attention falls inside an object's box: each region of the encoder map covers one
// cell of a rows x cols grid over the image, and contributes its weight times the fraction of its cell
// that lies inside the box. Uniform attention scores exactly the box's share of the image, so the ratio
// between the two measures how much better than chance the decoder looks at what it names.
import type { Box } from '../data/dataset.js';

export function massInBox(alpha: ArrayLike<number>, grid: { rows: number; cols: number }, box: Box): number {
  const [x0, y0, x1, y1] = box;
  let mass = 0;
  for (let r = 0; r < grid.rows; r++) {
    for (let c = 0; c < grid.cols; c++) {
      const cx0 = c / grid.cols;
      const cx1 = (c + 1) / grid.cols;
      const cy0 = r / grid.rows;
      const cy1 = (r + 1) / grid.rows;
      const overlap = Math.max(0, Math.min(x1, cx1) - Math.max(x0, cx0)) * Math.max(0, Math.min(y1, cy1) - Math.max(y0, cy0));
      mass += (alpha[r * grid.cols + c] ?? 0) * (overlap * grid.rows * grid.cols);
    }
  }
  return mass;
}

export function boxShare(box: Box): number {
  const clamp = (v: number): number => Math.min(1, Math.max(0, v));
  return (clamp(box[2]) - clamp(box[0])) * (clamp(box[3]) - clamp(box[1]));
}
