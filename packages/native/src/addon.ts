import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The functions of the compiled addon (csrc/addon.cc). */
export interface NativeAddon {
  /**
   * For each batch entry i: `c[i*m*n ...] = op(A_i) op(B_i)`, with A_i starting at `a[offsetsA[i]]`
   * (`[m, k]` row-major, `[k, m]` when transposeA) and B_i at `b[offsetsB[i]]` (`[k, n]`, `[n, k]`
   * when transposeB).
   */
  gemm(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
    offsetsA: Int32Array,
    offsetsB: Int32Array,
  ): void;
  /** In place: `c[j] = activation(c[j] + bias[j % bias.length])`; an empty bias adds nothing. */
  epilogue(c: Float32Array, bias: Float32Array, activation: number, alpha: number): void;
  /** Sets OpenBLAS's thread count. */
  setThreads(threads: number): void;
  /** OpenBLAS's build string, thread count and threading model (0 sequential, 1 pthreads, 2 OpenMP). */
  info(): { config: string; threads: number; parallel: number };
}

/** Path of the addon that `scripts/install.mjs` builds, the same from src/ and from dist/. */
export const ADDON_PATH = fileURLToPath(new URL('../build/Release/moebench_native.node', import.meta.url));

/** The addon, or why it did not load. */
export type AddonLoad = { ok: true; addon: NativeAddon } | { ok: false; reason: string };

let load: AddonLoad | null = null;

/** Loads the addon once per process; a missing or broken build gives the reason instead. */
export function loadAddon(): AddonLoad {
  load ??= tryLoad();
  return load;
}

function tryLoad(): AddonLoad {
  try {
    const require = createRequire(import.meta.url);
    return { ok: true, addon: require(ADDON_PATH) as NativeAddon };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    const notBuilt = (error as { code?: string }).code === 'MODULE_NOT_FOUND';
    return {
      ok: false,
      reason: notBuilt
        ? `the addon is not built (no ${ADDON_PATH}; install OpenBLAS and a C++ compiler, then run ` +
          '`pnpm --filter @moebench/native run build:native`)'
        : `the addon failed to load: ${message}`,
    };
  }
}
