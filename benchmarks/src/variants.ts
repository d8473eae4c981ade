/** The backend configurations a case can be measured on. */
export const VARIANT_NAMES = ['wasm-native', 'wasm-blas', 'wasm', 'wasm-stock', 'cpu', 'tensorflow'] as const;

/** A variant name. */
export type VariantName = (typeof VARIANT_NAMES)[number];

/**
 * Variants a case runs on when it does not list its own. Stock wasm and cpu take seconds to
 * minutes per step on layer-sized cases (a full run with every case on them took over 20 minutes),
 * so a case opts into them by listing them, as the dense FFN does.
 */
export const DEFAULT_CASE_VARIANTS: readonly VariantName[] = ['wasm-native', 'wasm', 'tensorflow'];

/** Backend settings and time budget of a variant. */
export interface Variant {
  name: VariantName;
  /** The backend `initBackend` gets. */
  backend: 'wasm' | 'cpu' | 'tensorflow';
  /** For wasm: keep the stock kernels (no moebench replacements). */
  stockKernels: boolean;
  /** For wasm: run matrix products through the native OpenBLAS kernels (skipped when not built). */
  nativeKernels: boolean;
  /**
   * For wasm with `nativeKernels`: register moebench's fused native kernels too (GELU, layer norm,
   * softmax, AdamW, the sum of squares, softmax cross-entropy). False leaves the ops on their
   * composite paths over the native matrix products.
   */
  fusedKernels: boolean;
  /** tinybench time budget per case in ms (it also runs at least `iterations` steps). */
  timeMs: number;
  /** Minimum measured steps per case. */
  iterations: number;
  /**
   * Whether one unmeasured warm-up step runs first. Off for the variants that take seconds per
   * step, where the JIT's first-call cost is small against the step and the extra step is not.
   */
  warmup: boolean;
  /** Description of the variant, for the table's legend. */
  label: string;
}

/**
 * The variants. Budgets keep a case to about 3-20 s per variant: the stock wasm and cpu backends
 * take seconds per step at the dense FFN's size, so they run two steps and no warm-up. A case that
 * is slower still on them should list its `variants` without them.
 */
export const VARIANTS: Record<VariantName, Variant> = {
  'wasm-native': {
    name: 'wasm-native',
    backend: 'wasm',
    stockKernels: false,
    nativeKernels: true,
    fusedKernels: true,
    timeMs: 3000,
    iterations: 5,
    warmup: true,
    label: 'wasm with moebench kernels, matrix products in native OpenBLAS',
  },
  'wasm-blas': {
    name: 'wasm-blas',
    backend: 'wasm',
    stockKernels: false,
    nativeKernels: true,
    fusedKernels: false,
    timeMs: 3000,
    iterations: 5,
    warmup: true,
    label: 'wasm-native without the fused native kernels: matrix products in OpenBLAS, other ops composite',
  },
  wasm: {
    name: 'wasm',
    backend: 'wasm',
    stockKernels: false,
    nativeKernels: false,
    fusedKernels: false,
    timeMs: 3000,
    iterations: 5,
    warmup: true,
    label: 'wasm with moebench kernels (XNNPACK)',
  },
  'wasm-stock': {
    name: 'wasm-stock',
    backend: 'wasm',
    stockKernels: true,
    nativeKernels: false,
    fusedKernels: false,
    timeMs: 0,
    iterations: 2,
    warmup: false,
    label: 'wasm with stock kernels',
  },
  cpu: {
    name: 'cpu',
    backend: 'cpu',
    stockKernels: false,
    nativeKernels: false,
    fusedKernels: false,
    timeMs: 0,
    iterations: 2,
    warmup: false,
    label: 'tfjs cpu backend',
  },
  tensorflow: {
    name: 'tensorflow',
    backend: 'tensorflow',
    stockKernels: false,
    nativeKernels: false,
    fusedKernels: false,
    timeMs: 3000,
    iterations: 5,
    warmup: true,
    label: 'tfjs-node (libtensorflow), when it loads',
  },
};

/**
 * The kernel sets `pnpm bench --peer` compares with PyTorch: the wasm backend with the native
 * OpenBLAS matrix products and fused kernels, with the native matrix products alone, with
 * moebench's wasm replacements only, with the stock kernels, and the cpu backend.
 */
export const PEER_VARIANTS = ['wasm-native', 'wasm-blas', 'wasm', 'wasm-stock', 'cpu'] as const satisfies readonly VariantName[];

/** A variant `pnpm bench --peer` can run. */
export type PeerVariant = (typeof PEER_VARIANTS)[number];

/** Variants `pnpm bench --peer` runs when `--variants` is not given: all but cpu, which takes minutes per step. */
export const DEFAULT_PEER_VARIANTS: readonly PeerVariant[] = ['wasm-native', 'wasm', 'wasm-stock'];
