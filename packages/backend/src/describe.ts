import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import { activeBackend } from './init.js';
import type { NativeKernelStatus } from './kernels/native.js';
import { MISSING_KERNELS, NATIVE_KERNELS, REPLACED_KERNELS, nativeCustomKernels, wasmKernelState } from './kernels/register.js';
import { tf } from './tf.js';

/** Facts about the wasm backend, part of `describeBackend`'s result. */
export interface WasmDescription {
  /** Version of `@tensorflow/tfjs-backend-wasm`. */
  version: string;
  /** Whether the runtime supports wasm SIMD (the SIMD binary is then the one loaded). */
  simd: boolean;
  /** Whether the runtime supports wasm threads (false under Node, which lacks the browser worker setup). */
  multithreadSupported: boolean;
  /** Threads XNNPACK uses. */
  threads: number;
  /** The wasm binary loaded, following from `simd` and `multithreadSupported`. */
  binary: string;
  /** Whether moebench's replacement kernels are registered (false with the stock switch). */
  replacementKernels: boolean;
  /** Kernel names moebench replaces when `replacementKernels` is true. */
  replacedKernels: string[];
  /** Kernel names moebench adds because the stock wasm backend lacks them (always registered). */
  addedKernels: string[];
  /** Native OpenBLAS kernels: whether they run, and whether the addon loaded (with its facts or the reason). */
  nativeKernels: NativeKernelStatus & {
    /** Whether the matrix products listed in `kernels` run natively now. */
    active: boolean;
    /**
     * Whether moebench's fused native kernels are registered now. It is false when the fused
     * switch or the native kernels are off, and `kernels` then lists the matrix products alone.
     */
    fusedActive: boolean;
    /**
     * Kernel names the native addon serves when active: the replaced tfjs matrix products, then
     * moebench's own fused kernels while they are registered.
     */
    kernels: string[];
  };
}

/** Facts about the machine and runtime, part of `describeBackend`'s result. */
export interface HostDescription {
  /** CPU model as the OS reports it, e.g. `AMD EPYC 7B13`. */
  cpuModel: string;
  /** Logical CPU cores (`os.availableParallelism()`). */
  cpuCores: number;
  /** Total memory in GiB, rounded to 0.1. */
  memoryGiB: number;
  /** `process.platform`-`process.arch`, e.g. `linux-x64`. */
  platform: string;
  /** Node version, e.g. `v20.19.1`. */
  node: string;
}

/** The result of `describeBackend`: a plain JSON-serialisable object for run manifests. */
export interface BackendDescription {
  /** The active tfjs backend (`wasm`, `cpu`, `tensorflow`), or null before `initBackend`. */
  backend: string | null;
  /** Version of `@tensorflow/tfjs-core`. */
  tfjsVersion: string;
  /** Present when the backend is `wasm`. */
  wasm?: WasmDescription;
  /** Present when the backend is `tensorflow`: the package that loaded and its version. */
  native?: { package: string; version: string };
  /** GPU names from `nvidia-smi`, present when the backend is tfjs-node-gpu and `nvidia-smi` lists any. */
  gpus?: string[];
  /** Reason `auto` did not take `tensorflow`, present when it did not. */
  autoFallbackReason?: string;
  /** Facts about the machine and runtime. */
  host: HostDescription;
}

const require = createRequire(import.meta.url);

/**
 * Describes the active backend and the machine for a run manifest. The result has the backend name,
 * tfjs version, wasm SIMD and thread facts and whether the replacement kernels are on, CPU model
 * and cores, GPUs (tfjs-node-gpu only) and Node version. Call it after `initBackend`. Before that,
 * `backend` is null and only the host facts are filled in.
 */
export async function describeBackend(): Promise<BackendDescription> {
  const info = activeBackend();
  const description: BackendDescription = {
    backend: info?.name ?? null,
    tfjsVersion: tf.version_core,
    host: describeHost(),
  };
  if (info?.autoFallbackReason !== undefined) description.autoFallbackReason = info.autoFallbackReason;

  if (info?.name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    const multithreadSupported = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
    const kernelState = wasmKernelState();
    const replacementKernels = kernelState.replacements;
    description.wasm = {
      version: wasm.version_wasm,
      simd,
      multithreadSupported,
      threads: wasm.getThreadsCount(),
      binary: `tfjs-backend-wasm${multithreadSupported ? '-threaded' : ''}${simd ? '-simd' : ''}.wasm`,
      replacementKernels,
      replacedKernels: replacementKernels ? [...REPLACED_KERNELS] : [],
      addedKernels: MISSING_KERNELS.map((config) => config.kernelName),
      nativeKernels: {
        active: kernelState.native,
        fusedActive: kernelState.fused,
        kernels: [...NATIVE_KERNELS, ...(kernelState.fused ? nativeCustomKernels() : [])],
        ...kernelState.nativeStatus,
      },
    };
  }

  if (info?.name === 'tensorflow' && info.nativePackage !== undefined) {
    const packageJson = require(`${info.nativePackage}/package.json`) as { version: string };
    description.native = { package: info.nativePackage, version: packageJson.version };
    if (info.nativePackage.endsWith('-gpu')) {
      const gpus = listGpus();
      if (gpus.length > 0) description.gpus = gpus;
    }
  }
  return description;
}

function describeHost(): HostDescription {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
  };
}

function listGpus(): string[] {
  try {
    const output = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 5000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return output.split('\n').map((line) => line.trim()).filter((line) => line.length > 0);
  } catch {
    // No driver or no nvidia-smi: the manifest then simply has no gpus field.
    return [];
  }
}
