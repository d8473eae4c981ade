import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { describeBackend, initBackend, NATIVE_KERNELS, nativeCustomKernels, tf } from '../src/index.js';

describe('describeBackend', () => {
  it('describes wasm facts and kernels', async () => {
    await initBackend('wasm', { stockKernels: false });
    const description = await describeBackend();
    expect(description.backend).toBe('wasm');
    expect(description.tfjsVersion).toBe(tf.version_core);
    expect(description.wasm).toMatchObject({
      version: '4.22.0',
      replacementKernels: true,
      replacedKernels: ['BatchMatMul', '_FusedMatMul', 'Sum', 'GatherV2', 'Identity', 'Slice', 'SplitV', 'Unpack', 'StridedSlice'],
      addedKernels: ['UnsortedSegmentSum'],
    });
    const wasm = description.wasm!;
    expect(wasm.threads).toBeGreaterThanOrEqual(1);
    expect(wasm.binary).toBe(
      `tfjs-backend-wasm${wasm.multithreadSupported ? '-threaded' : ''}${wasm.simd ? '-simd' : ''}.wasm`,
    );
    expect(description.native).toBeUndefined();
  });

  it('reports the native kernels and their BLAS facts', async () => {
    const info = await initBackend('wasm', { stockKernels: false, nativeKernels: true, fusedKernels: true });
    const { wasm } = await describeBackend();
    const native = wasm!.nativeKernels;
    expect(native.active).toBe(info.nativeKernels);
    if (native.available) {
      // The replaced tfjs kernels first, then moebench's own fused kernels.
      expect(native.kernels.slice(0, 2)).toEqual(['BatchMatMul', '_FusedMatMul']);
      expect(native.kernels).toEqual([...NATIVE_KERNELS, ...nativeCustomKernels()]);
      expect(native.kernels).toEqual(expect.arrayContaining(['MoebenchGelu', 'MoebenchLayerNorm', 'MoebenchAdamW', 'MoebenchSoftmaxCrossEntropy']));
      expect(native.active).toBe(true);
      expect(native.threads).toBeGreaterThanOrEqual(1);
      expect(native.blasConfig).toMatch(/OpenBLAS/);
    } else {
      expect(native.kernels).toEqual(['BatchMatMul', '_FusedMatMul']);
      expect(native.active).toBe(false);
      expect(native.reason).toMatch(/build-native/);
    }

    await initBackend('wasm', { stockKernels: false, nativeKernels: false });
    expect((await describeBackend()).wasm!.nativeKernels.active).toBe(false);
  });

  it('reports the stock switch', async () => {
    await initBackend('wasm', { stockKernels: true });
    const { wasm } = await describeBackend();
    expect(wasm?.replacementKernels).toBe(false);
    expect(wasm?.replacedKernels).toEqual([]);
    expect(wasm?.addedKernels).toEqual(['UnsortedSegmentSum']);
    await initBackend('wasm', { stockKernels: false });
  });

  it('describes cpu and the host', async () => {
    await initBackend('cpu');
    const description = await describeBackend();
    expect(description.backend).toBe('cpu');
    expect(description.wasm).toBeUndefined();
    expect(description.host).toEqual({
      cpuModel: os.cpus()[0].model.trim(),
      cpuCores: os.availableParallelism(),
      memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      platform: `${process.platform}-${process.arch}`,
      node: process.version,
    });
  });

  it('is a plain JSON object', async () => {
    await initBackend('wasm');
    const description = await describeBackend();
    expect(JSON.parse(JSON.stringify(description))).toEqual(description);
  });
});
